// Residual block h + mixer(RMSNorm(h)) (see block.h). Not the mixer math.
#include "block.h"

#include "ops/elementwise.h"
#include "ops/rmsnorm.h"
#include "tensor_util.h"

namespace strata::model {

Block::Block(const BlockConfig& config, const ModelConfig& model, const LayerPlace& place, ParamStore& params, Rng& rng)
    : kind_(config.kind), place_(place), eps_(static_cast<float>(model.norm_eps)) {
  norm_ = &params.add(place.prefix + "norm.weight", {model.d_model}, "norm", place.layer, false);
  init_constant(*norm_, 1.0f);
  mixer_ = make_mixer(config, model, place, params, rng);
}

Tensor Block::forward(StepContext& ctx, const Tensor& h, MixerCache* cache, Profiler* profiler) {
  LayerProfile* row = profiler ? &profiler->row(place_.label, place_.layer, block_kind_name(kind_)) : nullptr;
  if (profiler) profiler->set_active(row, false);
  const size_t bytes_before = ctx.acts->bytes();
  Tensor out;
  {
    ScopedTimer timer(row ? &row->fwd_ms : nullptr, ctx.backend);
    const int64_t M = h.rows(), D = h.cols();
    h_ = h;
    xn_ = alloc_out(*ctx.acts, place_.label + ".norm", {M, D});
    rstd_ = alloc_out(*ctx.acts, place_.label + ".norm.rstd", {M});
    RmsNormFwd nf;
    nf.y = xn_;
    nf.rstd = rstd_;
    nf.x = h;
    nf.w = norm_->value;
    nf.eps = eps_;
    rmsnorm_forward(*ctx.backend, nf);
    Tensor m = mixer_->forward(ctx, xn_, cache);
    out = alloc_out(*ctx.acts, place_.label + ".residual", {M, D});
    add(*ctx.backend, AddArgs{out, h, m});
  }
  if (row) {
    row->act_bytes = static_cast<double>(ctx.acts->bytes() - bytes_before);
    row->calls++;
    profiler->set_active(nullptr, false);
  }
  return out;
}

Tensor Block::backward(StepContext& ctx, const Tensor& dh, Profiler* profiler) {
  LayerProfile* row = profiler ? &profiler->row(place_.label, place_.layer, block_kind_name(kind_)) : nullptr;
  if (profiler) profiler->set_active(row, true);
  Tensor din;
  {
    ScopedTimer timer(row ? &row->bwd_ms : nullptr, ctx.backend);
    Tensor dxn = mixer_->backward(ctx, dh);
    // The input gradient is dh (the residual path) plus the norm's; it is summed in place in dh,
    // which nothing reads after this block (see block.h).
    din = dh;
    din.name = place_.label + ".residual.grad";
    RmsNormBwd nb;
    nb.dx = din;
    nb.dw = norm_->grad;
    nb.dy = dxn;
    nb.x = h_;
    nb.w = norm_->value;
    nb.rstd = rstd_;
    nb.accumulate = true;
    rmsnorm_backward(*ctx.backend, nb);
  }
  if (profiler) profiler->set_active(nullptr, false);
  return din;
}

Tensor Block::step(StepContext& ctx, const Tensor& h, MixerCache& cache) {
  const int64_t M = h.rows(), D = h.cols();
  Tensor xn = alloc_out(*ctx.acts, place_.label + ".step.norm", {M, D});
  Tensor rstd = alloc_out(*ctx.acts, place_.label + ".step.norm.rstd", {M});
  RmsNormFwd nf;
  nf.y = xn;
  nf.rstd = rstd;
  nf.x = h;
  nf.w = norm_->value;
  nf.eps = eps_;
  rmsnorm_forward(*ctx.backend, nf);
  Tensor m = mixer_->step(ctx, xn, cache);
  Tensor out = alloc_out(*ctx.acts, place_.label + ".step.residual", {M, D});
  add(*ctx.backend, AddArgs{out, h, m});
  return out;
}

}  // namespace strata::model
