// Mixture-of-Experts mixer (Nemotron 3 MoE and LatentMoE), forward and backward side by side:
//   logits = gate(x); top-k routing (sigmoid or softmax scores; expert bias used only to choose);
//   [x_l = fc1_latent_proj(x)]; routed experts down(act(up(x_l))) combined with the top-k weights
//   (renormalized, times routed_scaling); [y = fc2_latent_proj(y_l)]; + shared experts(x).
// Load balancing: the aux-loss-free rule b_e += rate * sign(mean_load - load_e) applied after each
// optimizer step from the loads counted since the previous one, and/or the Switch-style aux loss.
// Parameters (HF names, prefix ...mixer.): gate.weight [E, D], gate.e_score_correction_bias [E],
// experts.{e}.up_proj.weight [F, I] and experts.{e}.down_proj.weight [I, F] (held as (E, F, I) and
// (E, I, F)), shared_experts.up_proj/down_proj (width shared_experts * shared_ffn),
// fc1_latent_proj.weight [l, D], fc2_latent_proj.weight [D, l]. Not the block norm/residual.
#include <cmath>
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
    load_accum_.assign(static_cast<size_t>(E), 0.0f);
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

    logits_ = alloc(A, n + ".router.logits", {M, E});
    linear_forward(be, logits_, x, gate_->value, Tensor(), place_.role("moe.router"), place_.layer);
    scores_ = alloc(A, n + ".router.scores", {M, E});
    topk_index_ = alloc_i32(A, n + ".router.topk_index", {M, K});
    topk_weight_ = alloc(A, n + ".router.topk_weight", {M, K});
    load_ = alloc(A, n + ".router.load", {E});
    Tensor aux = alloc(A, n + ".router.aux_loss", {1});
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

    offsets_t_ = alloc_i32(A, n + ".plan.offsets", {E + 1});
    row_token_ = alloc_i32(A, n + ".plan.row_token", {R});
    slot_row_ = alloc_i32(A, n + ".plan.slot_row", {M, K});
    MoeRoutingPlan plan;
    plan.expert_offsets = offsets_t_;
    plan.row_token = row_token_;
    plan.slot_row = slot_row_;
    plan.topk_index = topk_index_;
    plan.experts = E;
    moe_routing_plan(be, plan);
    // The one wait of the layer: the per-expert GEMMs need the row ranges on the host. The aux loss
    // and the expert loads (already computed) come along in the same wait.
    offsets_ = moe_offsets_on_host(be, offsets_t_);
    aux_loss_ = download_values(be, aux)[0];
    if (ctx.count_expert_load) {
      const std::vector<float> load = download_values(be, load_);
      for (int64_t e = 0; e < E; e++) load_accum_[static_cast<size_t>(e)] += load[static_cast<size_t>(e)];
    }

    xin_ = x;
    if (latent_down_) {
      xin_ = alloc(A, n + ".latent_down", {M, I});
      linear_forward(be, xin_, x, latent_down_->value, Tensor(), place_.role("moe.latent_down"), place_.layer);
    }
    routed_ = alloc(A, n + ".routed", {R, I});
    MoePermuteFwd pf;
    pf.routed = routed_;
    pf.x = xin_;
    pf.row_token = row_token_;
    moe_permute_forward(be, pf);

    h_ = alloc(A, n + ".experts.up_proj", {R, up_cols});
    moe_expert_linear_forward(be, h_, routed_, up_->value, Tensor(), offsets_, place_.role("moe.expert_fc1"),
                              place_.layer);
    a_ = alloc(A, n + ".experts." + activation_name(c_.activation), {R, F});
    ActivationFwd af;
    af.kind = activation_kind(c_.activation);
    af.y = a_;
    af.x = h_;
    activation_forward(be, af);
    expert_out_ = alloc(A, n + ".experts.down_proj", {R, I});
    moe_expert_linear_forward(be, expert_out_, a_, down_->value, Tensor(), offsets_, place_.role("moe.expert_fc2"),
                              place_.layer);

    ylat_ = alloc(A, n + ".combine", {M, I});
    MoeUnpermuteFwd uf;
    uf.y = ylat_;
    uf.routed = expert_out_;
    uf.topk_weight = topk_weight_;
    uf.slot_row = slot_row_;
    moe_unpermute_forward(be, uf);

    Tensor out = ylat_;
    if (latent_up_) {
      out = alloc(A, n + ".latent_up", {M, d_model_});
      linear_forward(be, out, ylat_, latent_up_->value, Tensor(), place_.role("moe.latent_up"), place_.layer);
    }
    if (shared_) {
      Tensor s = shared_->forward(be, A, n + ".shared_experts", x);
      Tensor sum = alloc(A, n + ".out", {M, d_model_});
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

    Tensor dx = alloc(A, n + ".input.grad", {M, d_model_});
    bool dx_written = false;
    if (shared_) {
      shared_->backward(be, A, n + ".shared_experts", dout, dx, false);
      dx_written = true;
    }
    Tensor dylat = dout;
    if (latent_up_) {
      dylat = alloc(A, n + ".combine.grad", {M, I});
      linear_backward(be, dylat, latent_up_->grad, Tensor(), dout, ylat_, latent_up_->value,
                      place_.role("moe.latent_up"), place_.layer);
    }
    Tensor dexpert_out = alloc(A, n + ".experts.down_proj.grad", {R, I});
    Tensor dtopk_weight = alloc(A, n + ".router.topk_weight.grad", {M, K});
    MoeUnpermuteBwd ub;
    ub.drouted = dexpert_out;
    ub.dtopk_weight = dtopk_weight;
    ub.dy = dylat;
    ub.routed = expert_out_;
    ub.topk_weight = topk_weight_;
    ub.slot_row = slot_row_;
    moe_unpermute_backward(be, ub);

    Tensor da = alloc(A, n + ".experts.act.grad", {R, F});
    moe_expert_linear_backward(be, da, down_->grad, Tensor(), dexpert_out, a_, down_->value, offsets_,
                               place_.role("moe.expert_fc2"), place_.layer);
    Tensor dh = alloc(A, n + ".experts.up_proj.grad", {R, up_cols});
    ActivationBwd ab;
    ab.kind = activation_kind(c_.activation);
    ab.dx = dh;
    ab.dy = da;
    ab.x = h_;
    activation_backward(be, ab);
    Tensor drouted = alloc(A, n + ".routed.grad", {R, I});
    moe_expert_linear_backward(be, drouted, up_->grad, Tensor(), dh, routed_, up_->value, offsets_,
                               place_.role("moe.expert_fc1"), place_.layer);
    Tensor dxin = alloc(A, n + ".expert_input.grad", {M, I});
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

    Tensor dlogits = alloc(A, n + ".router.logits.grad", {M, E});
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

  double aux_loss() const override { return aux_loss_; }

  void update_expert_bias() override {
    if (c_.router.expert_bias && c_.router.bias_update_rate > 0) {
      // A rule on E values: applied on a host copy of the bias, written back.
      Backend& be = *bias_->backend;
      std::vector<float> bias = download_values(be, bias_->value);
      Tensor host_bias(bias.data(), {static_cast<int64_t>(bias.size())}, bias_->name);
      Tensor load(load_accum_.data(), {static_cast<int64_t>(load_accum_.size())}, place_.label + ".load_accum");
      moe_update_expert_bias(host_bias, load, static_cast<float>(c_.router.bias_update_rate));
      upload_values(be, bias_->value, bias);
    }
    std::fill(load_accum_.begin(), load_accum_.end(), 0.0f);
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
  std::vector<float> load_accum_;
  double aux_loss_ = 0;
  // saved by forward
  Tensor x_, logits_, scores_, topk_weight_, load_, xin_, routed_, h_, a_, expert_out_, ylat_;
  TensorI32 topk_index_, offsets_t_, row_token_, slot_row_;
  std::vector<int32_t> offsets_;
};

}  // namespace

std::unique_ptr<Mixer> make_moe_mixer(const BlockConfig& block, const ModelConfig& model, const LayerPlace& place,
                                      ParamStore& params, Rng& rng) {
  return std::make_unique<MoeMixer>(block.moe, model, place, params, rng);
}

}  // namespace strata::model
