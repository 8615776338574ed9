// Mamba-2 mixer (HF nemotron_h / mamba_ssm parameterization), forward and backward side by side,
// plus prefill into and token-by-token steps against a constant-size decode cache (several tokens
// per step for speculative verification, with the states around each token kept for a rewind).
//   zxbcdt = in_proj(x) split [z | xBC | dt];  xBC = SiLU(conv1d(xBC));  split xBC [x | B | C]
//   y = SSD(x, dt, A, B, C, D);  g = gated grouped RMSNorm(y, z);  out = out_proj(g)
// Parameters (prefix backbone.layers.{i}.mixer.): in_proj.weight [2Di+2GN+H, D], conv1d.weight
// [Di+2GN, 1, K], conv1d.bias, dt_bias [H], A_log [H], D [H], norm.weight [Di], out_proj.weight
// [D, Di] (+ in_proj.bias / out_proj.bias when `bias`). Not the residual block or its norm (block.h).
// z and xBC are read in place from the in_proj output (row pitch 2Di+2GN+H) and their gradients
// written in place into in_proj's output gradient; the conv writes the SSD's x, B, C as separate
// tensors (and reads their gradients from there); dt_raw is copied out for the SSD.
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "layer.h"
#include "ops/conv1d.h"
#include "ops/elementwise.h"
#include "ops/gated_rmsnorm.h"
#include "ops/linear.h"
#include "ops/ssd.h"
#include "tensor_util.h"

namespace strata::model {

namespace {

class Mamba2Mixer final : public Mixer {
 public:
  Mamba2Mixer(const Mamba2Config& c, const ModelConfig& model, const LayerPlace& place, ParamStore& params, Rng& rng)
      : c_(c), d_model_(model.d_model), eps_(static_cast<float>(model.norm_eps)), place_(place) {
    const std::string p = place.prefix + "mixer.";
    const int L = place.layer;
    const int64_t Di = c.d_inner(), C = c.conv_dim(), H = c.heads;
    in_proj_ = &params.add(p + "in_proj.weight", {c.in_proj_dim(), d_model_}, place.role("mamba.in_proj"), L);
    if (c.bias) in_proj_b_ = &params.add(p + "in_proj.bias", {c.in_proj_dim()}, "bias", L, false);
    conv_w_ = &params.add(p + "conv1d.weight", {C, 1, c.conv_kernel}, "mamba.conv1d", L, false);
    if (c.conv_bias) conv_b_ = &params.add(p + "conv1d.bias", {C}, "bias", L, false);
    dt_bias_ = &params.add(p + "dt_bias", {H}, "mamba.dt_bias", L, false);
    a_log_ = &params.add(p + "A_log", {H}, "mamba.A_log", L, false);
    d_ = &params.add(p + "D", {H}, "mamba.D", L, false);
    norm_ = &params.add(p + "norm.weight", {Di}, "norm", L, false);
    out_proj_ = &params.add(p + "out_proj.weight", {d_model_, Di}, place.role("mamba.out_proj"), L);
    if (c.bias) out_proj_b_ = &params.add(p + "out_proj.bias", {d_model_}, "bias", L, false);

    init_normal(*in_proj_, rng, model.init_std);
    double bound = 1.0 / std::sqrt(static_cast<double>(c.conv_kernel));  // PyTorch Conv1d default, fan_in = K
    init_uniform(*conv_w_, rng, -bound, bound);
    if (conv_b_) init_uniform(*conv_b_, rng, -bound, bound);
    std::vector<float> dt_bias(static_cast<size_t>(H)), a_log(static_cast<size_t>(H));
    for (int64_t h = 0; h < H; h++) {
      double u = rng.uniform();
      double dt = std::exp(u * (std::log(c.dt_max) - std::log(c.dt_min)) + std::log(c.dt_min));
      dt = std::max(dt, c.dt_init_floor);
      dt_bias[static_cast<size_t>(h)] = static_cast<float>(dt + std::log(-std::expm1(-dt)));  // inverse softplus
      a_log[static_cast<size_t>(h)] = static_cast<float>(std::log(rng.uniform(1.0, 16.0)));
    }
    init_values(*dt_bias_, dt_bias);
    init_values(*a_log_, a_log);
    init_constant(*d_, 1.0f);
    init_constant(*norm_, 1.0f);
    init_normal(*out_proj_, rng, model.init_std);
  }

  BlockKind kind() const override { return BlockKind::Mamba2; }

  Tensor forward(StepContext& ctx, const Tensor& x, MixerCache* cache) override {
    Backend& be = *ctx.backend;
    Arena& A = *ctx.acts;
    const int64_t B = ctx.batch, T = ctx.time, M = B * T;
    const int64_t Di = c_.d_inner(), C = c_.conv_dim(), H = c_.heads, P = c_.head_dim, G = c_.groups, N = c_.d_state;
    const std::string& n = place_.label;
    x_ = x;
    const int64_t W = c_.in_proj_dim();
    zxbcdt_ = alloc_out(A, n + ".in_proj", {M, W});
    linear_forward(be, zxbcdt_, x, in_proj_->value, bias_of(in_proj_b_), place_.role("mamba.in_proj"), place_.layer);
    z_ = Tensor(zxbcdt_.data, {M, Di}, n + ".z");                // rows W apart
    xbc_raw_ = Tensor(zxbcdt_.data + Di, {B, T, C}, n + ".xbc_raw");  // rows W apart
    dt_raw_ = alloc_out(A, n + ".dt_raw", {B, T, H});  // the SSD reads dt_raw contiguous
    copy_columns(be, view(dt_raw_, {M, H}), zxbcdt_, Di + C);

    xs_ = alloc_out(A, n + ".x", {B, T, H, P});
    bs_ = alloc_out(A, n + ".B", {B, T, G, N});
    cs_ = alloc_out(A, n + ".C", {B, T, G, N});
    Conv1dFwd conv;  // xBC = SiLU(conv1d(xBC)) split into [x | B | C]
    conv.y_parts[0] = view(xs_, {B, T, Di});
    conv.y_parts[0].name = n + ".conv";  // the op's profile label
    conv.y_parts[1] = view(bs_, {B, T, G * N});
    conv.y_parts[2] = view(cs_, {B, T, G * N});
    conv.x = xbc_raw_;
    conv.w = conv_weight();
    conv.bias = bias_of(conv_b_);
    conv.silu = true;
    conv.x_ld = W;
    conv1d_forward(be, conv);

    const int64_t chunks = ssd_num_chunks(T, c_.chunk);
    y_ = alloc_out(A, n + ".ssd", {B, T, H, P});
    dt_ = alloc_out(A, n + ".dt", {B, T, H});
    chunk_states_ = alloc_out(A, n + ".chunk_states", {B * chunks, H, P, N});
    SsdFwd s;
    s.y = y_;
    s.dt = dt_;
    s.chunk_states = chunk_states_;
    if (cache) s.final_state = cache->ssm_state;
    s.x = xs_;
    s.dt_raw = dt_raw_;
    s.dt_bias = dt_bias_->value;
    s.a_log = a_log_->value;
    s.b = bs_;
    s.c = cs_;
    s.d = d_->value;
    s.params = ssd_params();
    ssd_forward(be, s);

    gated_ = alloc_out(A, n + ".gated_norm", {M, Di});
    rstd_ = alloc_out(A, n + ".gated_norm.rstd", {M, G});
    Tensor out = gate_and_project(be, A, n, view(y_, {M, Di}), z_, W, gated_, rstd_);

    if (cache) save_conv_state(be, *cache, B, T, C);
    return out;
  }

  Tensor backward(StepContext& ctx, const Tensor& dout) override {
    Backend& be = *ctx.backend;
    Arena& A = *ctx.acts;
    const int64_t B = ctx.batch, T = ctx.time, M = B * T;
    const int64_t Di = c_.d_inner(), C = c_.conv_dim(), H = c_.heads, P = c_.head_dim, G = c_.groups, N = c_.d_state;
    const std::string& n = place_.label;

    Tensor dgated = alloc_out(A, n + ".gated_norm.grad", {M, Di});
    linear_backward(be, dgated, out_proj_->grad, bias_grad_of(out_proj_b_), dout, gated_, out_proj_->value,
                    place_.role("mamba.out_proj"), place_.layer);

    // in_proj's output gradient [dz | dxBC | ddt_raw]: dz and dxBC are written in place (rows W apart)
    const int64_t W = c_.in_proj_dim();
    Tensor dzxbcdt = alloc_out(A, n + ".in_proj.grad", {M, W});
    Tensor dy = alloc_out(A, n + ".ssd.grad", {B, T, H, P});
    GatedRmsNormBwd gb;
    gb.dy = view(dy, {M, Di});
    gb.dz = Tensor(dzxbcdt.data, {M, Di}, n + ".z.grad");
    gb.dw = norm_->grad;
    gb.dout = dgated;
    gb.y = view(y_, {M, Di});
    gb.z = z_;
    gb.w = norm_->value;
    gb.rstd = rstd_;
    gb.groups = G;
    gb.norm_before_gate = c_.norm_before_gate;
    gb.z_ld = W;
    gb.dz_ld = W;
    gated_rmsnorm_backward(be, gb);

    Tensor dxs = alloc_out(A, n + ".x.grad", {B, T, H, P});
    Tensor ddt_raw = alloc_out(A, n + ".dt_raw.grad", {B, T, H});
    Tensor dbs = alloc_out(A, n + ".B.grad", {B, T, G, N});
    Tensor dcs = alloc_out(A, n + ".C.grad", {B, T, G, N});
    SsdBwd s;
    s.dx = dxs;
    s.ddt_raw = ddt_raw;
    s.ddt_bias = dt_bias_->grad;
    s.da_log = a_log_->grad;
    s.db = dbs;
    s.dc = dcs;
    s.dd = d_->grad;
    s.dy = dy;
    s.x = xs_;
    s.dt_raw = dt_raw_;
    s.dt_bias = dt_bias_->value;
    s.a_log = a_log_->value;
    s.b = bs_;
    s.c = cs_;
    s.d = d_->value;
    s.dt = dt_;
    s.chunk_states = chunk_states_;
    s.params = ssd_params();
    ssd_backward(be, s);

    Conv1dBwd cb;
    cb.dx = Tensor(dzxbcdt.data + Di, {B, T, C}, n + ".xbc_raw.grad");
    cb.dw = view(conv_w_->grad, {C, c_.conv_kernel});
    cb.dbias = bias_grad_of(conv_b_);
    cb.dy_parts[0] = view(dxs, {B, T, Di});
    cb.dy_parts[1] = view(dbs, {B, T, G * N});
    cb.dy_parts[2] = view(dcs, {B, T, G * N});
    cb.x = xbc_raw_;
    cb.w = conv_weight();
    cb.bias = bias_of(conv_b_);
    cb.silu = true;
    cb.x_ld = W;
    cb.dx_ld = W;
    conv1d_backward(be, cb);
    scatter_columns(be, dzxbcdt, view(ddt_raw, {M, H}), Di + C);

    Tensor dx = alloc_out(A, n + ".input.grad", {M, d_model_});
    linear_backward(be, dx, in_proj_->grad, bias_grad_of(in_proj_b_), dzxbcdt, x_, in_proj_->value,
                    place_.role("mamba.in_proj"), place_.layer);
    return dx;
  }

  void init_cache(Arena& arena, MixerCache& cache, int64_t batch, int64_t capacity, int64_t history_tokens) override {
    cache.conv_state = alloc(arena, place_.label + ".conv_state", {batch, c_.conv_kernel - 1 > 0 ? c_.conv_kernel - 1 : 1,
                                                                      c_.conv_dim()});
    cache.ssm_state = alloc(arena, place_.label + ".ssm_state", {batch, c_.heads, c_.head_dim, c_.d_state});
    cache.capacity = capacity;
    cache.history_tokens = history_tokens;
    if (history_tokens > 0) {
      cache.conv_history = alloc(arena, place_.label + ".conv_history", {history_tokens + 1, cache.conv_state.numel()});
      cache.ssm_history = alloc(arena, place_.label + ".ssm_history", {history_tokens + 1, cache.ssm_state.numel()});
    }
  }

  Tensor step(StepContext& ctx, const Tensor& x, MixerCache& cache) override {
    Backend& be = *ctx.backend;
    Arena& A = *ctx.acts;
    STRATA_CHECK(c_.conv_kernel >= 2, place_.label, ": decode needs conv_kernel >= 2");
    const int64_t B = ctx.batch, n = ctx.time, M = B * n;
    const int64_t Di = c_.d_inner(), C = c_.conv_dim(), H = c_.heads, P = c_.head_dim, G = c_.groups, N = c_.d_state;
    const std::string tag = place_.label + ".step";
    const bool record = ctx.record_history;
    STRATA_CHECK(!record || n <= cache.history_tokens, place_.label, ": a recorded step of ", n,
                 " tokens exceeds the decode history of ", cache.history_tokens);
    const int64_t W = c_.in_proj_dim();
    Tensor zxbcdt = alloc_out(A, tag + ".in_proj", {M, W});
    linear_forward(be, zxbcdt, x, in_proj_->value, bias_of(in_proj_b_), place_.role("mamba.in_proj"), place_.layer);
    Tensor z(zxbcdt.data, {M, Di}, tag + ".z");  // rows W apart
    Tensor xbc_raw = alloc_out(A, tag + ".xbc_raw", {M, C});
    copy_columns(be, xbc_raw, zxbcdt, Di);
    Tensor dt_raw = alloc_out(A, tag + ".dt_raw", {M, H});
    copy_columns(be, dt_raw, zxbcdt, Di + C);

    // The recurrences run token by token against the cache, as single-token steps do.
    if (record) record_state(be, cache, 0);
    Tensor xbc = alloc_out(A, tag + ".conv", {M, C});
    Tensor y = alloc_out(A, tag + ".ssd", {M, Di});
    for (int64_t t = 0; t < n; t++) {
      Tensor conv_out = token_rows(be, A, xbc, B, n, t);
      Conv1dStep cs;
      cs.y = conv_out;
      cs.state = cache.conv_state;
      cs.x = token_rows(be, A, xbc_raw, B, n, t);
      cs.w = conv_weight();
      cs.bias = bias_of(conv_b_);
      cs.silu = true;
      conv1d_step(be, cs);

      Tensor xs = alloc_out(A, tag + ".x", {B, H, P});
      Tensor bs = alloc_out(A, tag + ".B", {B, G, N});
      Tensor cc = alloc_out(A, tag + ".C", {B, G, N});
      copy_columns(be, view(xs, {B, Di}), conv_out, 0);
      copy_columns(be, view(bs, {B, G * N}), conv_out, Di);
      copy_columns(be, view(cc, {B, G * N}), conv_out, Di + G * N);

      Tensor yt = token_rows(be, A, y, B, n, t);
      SsdStep ss;
      ss.y = view(yt, {B, H, P});
      ss.state = cache.ssm_state;
      ss.x = xs;
      ss.dt_raw = token_rows(be, A, dt_raw, B, n, t);
      ss.dt_bias = dt_bias_->value;
      ss.a_log = a_log_->value;
      ss.b = bs;
      ss.c = cc;
      ss.d = d_->value;
      ss.params = ssd_params();
      ssd_step(be, ss);
      store_token_rows(be, y, yt, B, n, t);
      if (record) record_state(be, cache, t + 1);
    }
    cache.recorded_tokens = record ? n : -1;

    Tensor gated = alloc_out(A, tag + ".gated_norm", {M, Di});
    Tensor rstd = alloc_out(A, tag + ".gated_norm.rstd", {M, G});
    return gate_and_project(be, A, tag, y, z, W, gated, rstd);
  }

  void rewind(Backend& be, MixerCache& cache, int64_t keep) override {
    STRATA_CHECK(cache.recorded_tokens >= 0 && keep >= 0 && keep <= cache.recorded_tokens, place_.label,
                 ": cannot rewind to token ", keep, " of a recorded step of ", cache.recorded_tokens);
    copy_tensor(be, cache.conv_state, slot(cache.conv_history, keep, cache.conv_state));
    copy_tensor(be, cache.ssm_state, slot(cache.ssm_history, keep, cache.ssm_state));
    cache.recorded_tokens = -1;
  }

 private:
  static Tensor bias_of(const Param* p) { return p ? p->value : Tensor(); }
  static Tensor bias_grad_of(const Param* p) { return p ? p->grad : Tensor(); }
  Tensor conv_weight() const { return view(conv_w_->value, {c_.conv_dim(), c_.conv_kernel}); }

  // y (M, Di) gated by z (M, Di, rows z_ld apart) and normalized per group into gated (M, Di) (rstd
  // (M, G) kept for backward), then out_proj: the (M, d_model) output named `<tag>.out_proj`.
  Tensor gate_and_project(Backend& be, Arena& A, const std::string& tag, const Tensor& y, const Tensor& z,
                          int64_t z_ld, const Tensor& gated, const Tensor& rstd) {
    GatedRmsNormFwd g;
    g.out = gated;
    g.rstd = rstd;
    g.y = y;
    g.z = z;
    g.w = norm_->value;
    g.groups = c_.groups;
    g.norm_before_gate = c_.norm_before_gate;
    g.eps = eps_;
    g.z_ld = z_ld;
    gated_rmsnorm_forward(be, g);
    Tensor out = alloc_out(A, tag + ".out_proj", {y.shape[0], d_model_});
    linear_forward(be, out, gated, out_proj_->value, bias_of(out_proj_b_), place_.role("mamba.out_proj"), place_.layer);
    return out;
  }

  SsdParams ssd_params() const {
    SsdParams sp;
    sp.chunk = c_.chunk;
    sp.dt_limit = c_.has_dt_limit;
    sp.dt_min = static_cast<float>(c_.dt_limit_lo);
    sp.dt_max = static_cast<float>(c_.dt_limit_hi);
    return sp;
  }

  static void record_state(Backend& be, MixerCache& cache, int64_t index) {
    copy_tensor(be, slot(cache.conv_history, index, cache.conv_state), cache.conv_state);
    copy_tensor(be, slot(cache.ssm_history, index, cache.ssm_state), cache.ssm_state);
  }

  // The conv state holds the last K-1 conv inputs (oldest first), zeros before the sequence start;
  // the inputs are xBC, columns [Di, Di + C) of the in_proj output.
  void save_conv_state(Backend& be, MixerCache& cache, int64_t B, int64_t T, int64_t C) {
    const int64_t W = c_.in_proj_dim();
    const int64_t K1 = c_.conv_kernel - 1;
    if (K1 <= 0) return;
    const int64_t zero_rows = std::max<int64_t>(0, K1 - T), kept = K1 - zero_rows;
    if (zero_rows > 0) be.fill_zero(cache.conv_state.data, sizeof(float) * static_cast<size_t>(cache.conv_state.numel()));
    StridedCopyArgs a;
    a.dst = cache.conv_state;
    a.src = zxbcdt_;
    a.batches = B;
    a.rows = kept;
    a.cols = C;
    a.dst_offset = zero_rows * C;
    a.dst_batch_stride = K1 * C;
    a.dst_row_stride = C;
    a.src_offset = (T - kept) * W + c_.d_inner();
    a.src_batch_stride = T * W;
    a.src_row_stride = W;
    copy_strided(be, a);
  }

  Mamba2Config c_;
  int64_t d_model_;
  float eps_;
  LayerPlace place_;
  Param *in_proj_ = nullptr, *in_proj_b_ = nullptr, *conv_w_ = nullptr, *conv_b_ = nullptr, *dt_bias_ = nullptr,
        *a_log_ = nullptr, *d_ = nullptr, *norm_ = nullptr, *out_proj_ = nullptr, *out_proj_b_ = nullptr;
  // saved by forward for backward
  Tensor x_, zxbcdt_, z_, xbc_raw_, dt_raw_, xs_, bs_, cs_, y_, dt_, chunk_states_, gated_, rstd_;
};

}  // namespace

std::unique_ptr<Mixer> make_mamba2_mixer(const BlockConfig& block, const ModelConfig& model, const LayerPlace& place,
                                         ParamStore& params, Rng& rng) {
  return std::make_unique<Mamba2Mixer>(block.mamba, model, place, params, rng);
}

}  // namespace strata::model
