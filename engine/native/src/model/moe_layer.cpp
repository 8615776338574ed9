// Mixture-of-Experts mixer (Nemotron 3 MoE and LatentMoE), forward and backward side by side:
//   logits = gate(x); top-k routing (sigmoid or softmax scores; expert bias used only to choose);
//   [x_l = fc1_latent_proj(x)]; routed experts down(act(up(x_l))) combined with the top-k weights
//   (renormalized, times routed_scaling); [y = fc2_latent_proj(y_l)]; + shared experts(x).
// Load balancing: the aux-loss-free rule b_e += rate * sign(mean_load - load_e) applied after each
// optimizer step from the loads counted since the previous one, and/or the Switch-style aux loss.
// The forward never waits for the device: routing, the routing plan and the grouped expert GEMMs
// all read their inputs where the previous op wrote them (ops/moe.h).
// Parameters (HF names, prefix ...mixer.): gate.weight [E, D], gate.e_score_correction_bias [E],
// experts.{e}.up_proj.weight [F, I] and experts.{e}.down_proj.weight [I, F] (held as (E, F, I) and
// (E, I, F)), shared_experts.up_proj/down_proj (width shared_experts * shared_ffn),
// fc1_latent_proj.weight [l, D], fc2_latent_proj.weight [D, l]. Not the block norm/residual.
#include <cmath>
#include <memory>
#include <optional>

#include "core/error.h"
#include "layer.h"
#include "mlp_layer.h"
#include "ops/activation.h"
#include "ops/elementwise.h"
#include "ops/linear.h"
#include "ops/moe.h"
#include "tensor_util.h"

namespace strata::model {

namespace {

class MoeMixer final : public Mixer {
 public:
  MoeMixer(const MoeConfig& c, const ModelConfig& model, const LayerPlace& place, ParamStore& params, Rng& rng)
      : c_(c), d_model_(model.d_model), place_(place) {
    STRATA_CHECK(!c.bias, place.label, ": MoE linear biases (bias: true) are not supported by the native engine");
    const std::string p = place.prefix + "mixer.";
    const int L = place.layer;
    const int64_t E = c.experts, I = c.latent > 0 ? c.latent : model.d_model;
    const int64_t up_rows = c.activation == Activation::Swiglu ? 2 * int64_t{c.expert_ffn} : c.expert_ffn;
    gate_ = &params.add(p + "gate.weight", {E, d_model_}, place.role("moe.router"), L);
    bias_ = &params.add(p + "gate.e_score_correction_bias", {E}, "moe.expert_bias", L, false, false);
    if (c.latent > 0) {
      latent_down_ = &params.add(p + "fc1_latent_proj.weight", {I, d_model_}, place.role("moe.latent_down"), L);
      latent_up_ = &params.add(p + "fc2_latent_proj.weight", {d_model_, I}, place.role("moe.latent_up"), L);
    }
    up_ = &params.add(p + "experts.up_proj", {E, up_rows, I}, place.role("moe.expert_fc1"), L);
    down_ = &params.add(p + "experts.down_proj", {E, I, c.expert_ffn}, place.role("moe.expert_fc2"), L);
    up_->split_experts = true;
    down_->split_experts = true;
    init_normal(*gate_, rng, model.init_std);
    if (latent_down_) {
      init_normal(*latent_down_, rng, model.init_std);
      init_normal(*latent_up_, rng, model.init_std);
    }
    init_normal(*up_, rng, model.init_std);
    init_normal(*down_, rng, model.init_std);
    if (c.shared_experts > 0) {
      shared_.emplace(p + "shared_experts.", model.d_model, int64_t{c.shared_experts} * c.shared_ffn, c.activation,
                      c.bias, model.init_std, place.role("moe.shared_fc1"), place.role("moe.shared_fc2"), L, params,
                      rng);
    }
    load_arena_ = std::make_unique<Arena>(*bias_->backend);
    load_accum_ = load_arena_->tensor(place.label + ".load_accum", {E});
  }

  BlockKind kind() const override { return BlockKind::Moe; }

  Tensor forward(StepContext& ctx, const Tensor& x, MixerCache*) override {
    Backend& be = *ctx.backend;
    Arena& A = *ctx.acts;
    const int64_t M = x.rows(), E = c_.experts, K = c_.top_k, R = M * K;
    const int64_t I = c_.latent > 0 ? c_.latent : d_model_;
    const int64_t F = c_.expert_ffn, up_cols = c_.activation == Activation::Swiglu ? 2 * F : F;
    const std::string& n = place_.label;
    x_ = x;

    logits_ = alloc_out(A, n + ".router.logits", {M, E});
    linear_forward(be, logits_, x, gate_->value, Tensor(), place_.role("moe.router"), place_.layer);
    scores_ = alloc_out(A, n + ".router.scores", {M, E});
    topk_index_ = alloc_i32(A, n + ".router.topk_index", {M, K}, Arena::Fill::Overwritten);
    topk_weight_ = alloc_out(A, n + ".router.topk_weight", {M, K});
    load_ = alloc_out(A, n + ".router.load", {E});
    Tensor aux = alloc_out(A, n + ".router.aux_loss", {1});
    MoeRouterFwd rf;
    rf.scores = scores_;
    rf.topk_index = topk_index_;
    rf.topk_weight = topk_weight_;
    rf.expert_load = load_;
    rf.aux_loss = aux;
    rf.logits = logits_;
    if (c_.router.expert_bias) rf.expert_bias = bias_->value;
    rf.params = router_params();
    moe_router_forward(be, rf);

    offsets_ = alloc_i32(A, n + ".plan.offsets", {E + 1}, Arena::Fill::Overwritten);
    row_token_ = alloc_i32(A, n + ".plan.row_token", {R}, Arena::Fill::Overwritten);
    slot_row_ = alloc_i32(A, n + ".plan.slot_row", {M, K}, Arena::Fill::Overwritten);
    MoeRoutingPlan plan;
    plan.expert_offsets = offsets_;
    plan.row_token = row_token_;
    plan.slot_row = slot_row_;
    plan.topk_index = topk_index_;
    plan.experts = E;
    moe_routing_plan(be, plan);
    // Nothing waits here: the expert GEMMs read the row ranges where the plan wrote them, the aux
    // loss is read when asked for (aux_loss()), the loads add up where they are.
    aux_ = aux;
    if (ctx.count_expert_load) add(be, AddArgs{load_accum_, load_accum_, load_});

    xin_ = x;
    if (latent_down_) {
      xin_ = alloc_out(A, n + ".latent_down", {M, I});
      linear_forward(be, xin_, x, latent_down_->value, Tensor(), place_.role("moe.latent_down"), place_.layer);
    }
    routed_ = alloc_out(A, n + ".routed", {R, I});
    MoePermuteFwd pf;
    pf.routed = routed_;
    pf.x = xin_;
    pf.row_token = row_token_;
    moe_permute_forward(be, pf);

    h_ = alloc_out(A, n + ".experts.up_proj", {R, up_cols});
    moe_expert_linear_forward(be, h_, routed_, up_->value, offsets_, place_.role("moe.expert_fc1"), place_.layer);
    a_ = alloc_out(A, n + ".experts." + activation_name(c_.activation), {R, F});
    ActivationFwd af;
    af.kind = activation_kind(c_.activation);
    af.y = a_;
    af.x = h_;
    activation_forward(be, af);
    expert_out_ = alloc_out(A, n + ".experts.down_proj", {R, I});
    moe_expert_linear_forward(be, expert_out_, a_, down_->value, offsets_, place_.role("moe.expert_fc2"),
                              place_.layer);

    ylat_ = alloc_out(A, n + ".combine", {M, I});
    MoeUnpermuteFwd uf;
    uf.y = ylat_;
    uf.routed = expert_out_;
    uf.topk_weight = topk_weight_;
    uf.slot_row = slot_row_;
    moe_unpermute_forward(be, uf);

    Tensor out = ylat_;
    if (latent_up_) {
      out = alloc_out(A, n + ".latent_up", {M, d_model_});
      linear_forward(be, out, ylat_, latent_up_->value, Tensor(), place_.role("moe.latent_up"), place_.layer);
    }
    if (shared_) {
      Tensor s = shared_->forward(be, A, n + ".shared_experts", x);
      Tensor sum = alloc_out(A, n + ".out", {M, d_model_});
      add(be, AddArgs{sum, out, s});
      out = sum;
    }
    return out;
  }

  Tensor backward(StepContext& ctx, const Tensor& dout) override {
    Backend& be = *ctx.backend;
    Arena& A = *ctx.acts;
    const int64_t M = dout.rows(), E = c_.experts, K = c_.top_k, R = M * K;
    const int64_t I = c_.latent > 0 ? c_.latent : d_model_;
    const int64_t F = c_.expert_ffn, up_cols = c_.activation == Activation::Swiglu ? 2 * F : F;
    const std::string& n = place_.label;

    Tensor dx = alloc_out(A, n + ".input.grad", {M, d_model_});
    bool dx_written = false;
    if (shared_) {
      shared_->backward(be, A, n + ".shared_experts", dout, dx, false);
      dx_written = true;
    }
    Tensor dylat = dout;
    if (latent_up_) {
      dylat = alloc_out(A, n + ".combine.grad", {M, I});
      linear_backward(be, dylat, latent_up_->grad, Tensor(), dout, ylat_, latent_up_->value,
                      place_.role("moe.latent_up"), place_.layer);
    }
    Tensor dexpert_out = alloc_out(A, n + ".experts.down_proj.grad", {R, I});
    Tensor dtopk_weight = alloc_out(A, n + ".router.topk_weight.grad", {M, K});
    MoeUnpermuteBwd ub;
    ub.drouted = dexpert_out;
    ub.dtopk_weight = dtopk_weight;
    ub.dy = dylat;
    ub.routed = expert_out_;
    ub.topk_weight = topk_weight_;
    ub.slot_row = slot_row_;
    moe_unpermute_backward(be, ub);

    Tensor da = alloc_out(A, n + ".experts.act.grad", {R, F});
    moe_expert_linear_backward(be, da, down_->grad, dexpert_out, a_, down_->value, offsets_,
                               place_.role("moe.expert_fc2"), place_.layer);
    Tensor dh = alloc_out(A, n + ".experts.up_proj.grad", {R, up_cols});
    ActivationBwd ab;
    ab.kind = activation_kind(c_.activation);
    ab.dx = dh;
    ab.dy = da;
    ab.x = h_;
    activation_backward(be, ab);
    Tensor drouted = alloc_out(A, n + ".routed.grad", {R, I});
    moe_expert_linear_backward(be, drouted, up_->grad, dh, routed_, up_->value, offsets_,
                               place_.role("moe.expert_fc1"), place_.layer);
    Tensor dxin = alloc_out(A, n + ".expert_input.grad", {M, I});
    MoePermuteBwd pb;
    pb.dx = dxin;
    pb.drouted = drouted;
    pb.slot_row = slot_row_;
    moe_permute_backward(be, pb);

    if (latent_down_) {
      linear_backward(be, dx, latent_down_->grad, Tensor(), dxin, x_, latent_down_->value,
                      place_.role("moe.latent_down"), place_.layer, dx_written);
    } else if (dx_written) {
      add_into(be, dx, dxin);
    } else {
      copy_tensor(be, dx, dxin);
    }

    Tensor dlogits = alloc_out(A, n + ".router.logits.grad", {M, E});
    MoeRouterBwd rb;
    rb.dlogits = dlogits;
    rb.dtopk_weight = dtopk_weight;
    rb.scores = scores_;
    rb.topk_index = topk_index_;
    rb.expert_load = load_;
    rb.daux_loss = ctx.loss_scale;
    rb.params = router_params();
    moe_router_backward(be, rb);
    linear_backward(be, dx, gate_->grad, Tensor(), dlogits, x_, gate_->value, place_.role("moe.router"),
                    place_.layer, true);
    return dx;
  }

  // Read from the last forward's activations (the caller asks right after forward): one wait,
  // only when the loss is on.
  double aux_loss() const override {
    if (c_.router.aux_loss_coeff <= 0 || !aux_.defined()) return 0;
    return download_values(*bias_->backend, aux_)[0];
  }

  void update_expert_bias() override {
    Backend& be = *bias_->backend;
    if (c_.router.expert_bias && c_.router.bias_update_rate > 0) {
      // A rule on E values: applied on host copies of the bias and the loads, the bias written back.
      std::vector<float> bias = download_values(be, bias_->value);
      std::vector<float> loads = download_values(be, load_accum_);
      Tensor host_bias(bias.data(), {static_cast<int64_t>(bias.size())}, bias_->name);
      Tensor load(loads.data(), {static_cast<int64_t>(loads.size())}, load_accum_.name);
      moe_update_expert_bias(host_bias, load, static_cast<float>(c_.router.bias_update_rate));
      upload_values(be, bias_->value, bias);
    }
    be.fill_zero(load_accum_.data, static_cast<std::size_t>(load_accum_.numel()) * sizeof(float));
  }

 private:
  RouterParams router_params() const {
    RouterParams rp;
    rp.type = c_.router.sigmoid ? RouterType::Sigmoid : RouterType::Softmax;
    rp.top_k = c_.top_k;
    rp.norm_topk = c_.router.norm_topk;
    rp.routed_scaling = static_cast<float>(c_.router.routed_scaling);
    rp.aux_loss_coeff = static_cast<float>(c_.router.aux_loss_coeff);
    return rp;
  }

  MoeConfig c_;
  int64_t d_model_;
  LayerPlace place_;
  Param *gate_ = nullptr, *bias_ = nullptr, *latent_down_ = nullptr, *latent_up_ = nullptr, *up_ = nullptr,
        *down_ = nullptr;
  std::optional<DenseFfn> shared_;
  std::unique_ptr<Arena> load_arena_;  // holds load_accum_ on the model's backend
  Tensor load_accum_;                  // (E) expert loads since the last bias update
  // saved by forward
  Tensor x_, logits_, scores_, topk_weight_, load_, aux_, xin_, routed_, h_, a_, expert_out_, ylat_;
  TensorI32 topk_index_, offsets_, row_token_, slot_row_;
};

}  // namespace

std::unique_ptr<Mixer> make_moe_mixer(const BlockConfig& block, const ModelConfig& model, const LayerPlace& place,
                                      ParamStore& params, Rng& rng) {
  return std::make_unique<MoeMixer>(block.moe, model, place, params, rng);
}

}  // namespace strata::model
