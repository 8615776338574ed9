// Dense MLP mixer (Nemotron's `-` layers and the shared-expert shape): out = down(act(up(x))),
// act relu2 | gelu | swiglu (swiglu: up_proj produces [gate | up], 2F rows), forward and backward
// side by side. Parameters: ...mixer.up_proj.weight [F or 2F, D], ...mixer.down_proj.weight [D, F]
// (+ biases with `bias`). Also exports the same computation as a helper the MoE layer uses for
// its shared experts. Not the block norm/residual.
#include "mlp_layer.h"

#include "core/error.h"
#include "ops/activation.h"
#include "ops/linear.h"
#include "tensor_util.h"

namespace strata::model {

ActivationKind activation_kind(Activation a) {
  switch (a) {
    case Activation::Relu2: return ActivationKind::Relu2;
    case Activation::Gelu: return ActivationKind::Gelu;
    case Activation::Swiglu: return ActivationKind::Swiglu;
  }
  return ActivationKind::Relu2;
}

DenseFfn::DenseFfn(const std::string& prefix, int64_t d_model, int64_t ffn, Activation act, bool bias, double init_std,
                   const char* role_fc1, const char* role_fc2, int layer, ParamStore& params, Rng& rng)
    : d_model_(d_model), ffn_(ffn), act_(act), role_fc1_(role_fc1), role_fc2_(role_fc2), layer_(layer) {
  const int64_t up_rows = act == Activation::Swiglu ? 2 * ffn : ffn;
  up_ = &params.add(prefix + "up_proj.weight", {up_rows, d_model}, role_fc1, layer);
  down_ = &params.add(prefix + "down_proj.weight", {d_model, ffn}, role_fc2, layer);
  if (bias) {
    up_b_ = &params.add(prefix + "up_proj.bias", {up_rows}, "bias", layer, false);
    down_b_ = &params.add(prefix + "down_proj.bias", {d_model}, "bias", layer, false);
  }
  init_normal(*up_, rng, init_std);
  init_normal(*down_, rng, init_std);
}

Tensor DenseFfn::forward(Backend& be, Arena& A, const std::string& label, const Tensor& x) {
  const int64_t M = x.rows();
  const int64_t up_cols = act_ == Activation::Swiglu ? 2 * ffn_ : ffn_;
  x_ = x;
  h_ = alloc_out(A, label + ".up_proj", {M, up_cols});
  linear_forward(be, h_, x, up_->value, up_b_ ? up_b_->value : Tensor(), role_fc1_, layer_);
  a_ = alloc_out(A, label + "." + activation_name(act_), {M, ffn_});
  ActivationFwd af;
  af.kind = activation_kind(act_);
  af.y = a_;
  af.x = h_;
  activation_forward(be, af);
  Tensor out = alloc_out(A, label + ".down_proj", {M, d_model_});
  linear_forward(be, out, a_, down_->value, down_b_ ? down_b_->value : Tensor(), role_fc2_, layer_);
  return out;
}

void DenseFfn::backward(Backend& be, Arena& A, const std::string& label, const Tensor& dout, const Tensor& dx,
                        bool accumulate_dx) {
  const int64_t M = dout.rows();
  const int64_t up_cols = act_ == Activation::Swiglu ? 2 * ffn_ : ffn_;
  Tensor da = alloc_out(A, label + "." + activation_name(act_) + ".grad", {M, ffn_});
  linear_backward(be, da, down_->grad, down_b_ ? down_b_->grad : Tensor(), dout, a_, down_->value, role_fc2_, layer_);
  Tensor dh = alloc_out(A, label + ".up_proj.grad", {M, up_cols});
  ActivationBwd ab;
  ab.kind = activation_kind(act_);
  ab.dx = dh;
  ab.dy = da;
  ab.x = h_;
  activation_backward(be, ab);
  linear_backward(be, dx, up_->grad, up_b_ ? up_b_->grad : Tensor(), dh, x_, up_->value, role_fc1_, layer_,
                  accumulate_dx);
}

namespace {

class MlpMixer final : public Mixer {
 public:
  MlpMixer(const MlpConfig& c, const ModelConfig& model, const LayerPlace& place, ParamStore& params, Rng& rng)
      : place_(place),
        ffn_(place.prefix + "mixer.", model.d_model, c.ffn, c.activation, c.bias, model.init_std,
             place.role("mlp.fc1"), place.role("mlp.fc2"), place.layer, params, rng) {}

  BlockKind kind() const override { return BlockKind::Mlp; }

  Tensor forward(StepContext& ctx, const Tensor& x, MixerCache*) override {
    return ffn_.forward(*ctx.backend, *ctx.acts, place_.label, x);
  }

  Tensor backward(StepContext& ctx, const Tensor& dout) override {
    Tensor dx = alloc_out(*ctx.acts, place_.label + ".input.grad", {dout.rows(), dout.cols()});
    ffn_.backward(*ctx.backend, *ctx.acts, place_.label, dout, dx, false);
    return dx;
  }

 private:
  LayerPlace place_;
  DenseFfn ffn_;
};

}  // namespace

std::unique_ptr<Mixer> make_mlp_mixer(const BlockConfig& block, const ModelConfig& model, const LayerPlace& place,
                                      ParamStore& params, Rng& rng) {
  return std::make_unique<MlpMixer>(block.mlp, model, place, params, rng);
}

}  // namespace strata::model
