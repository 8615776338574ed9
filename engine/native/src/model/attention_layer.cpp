// Causal self-attention mixer with grouped-query heads, optional QK-norm (per-head RMSNorm, Qwen3)
// and optional RoPE, forward and backward side by side, plus prefill into and token-by-token steps
// against a KV cache (several tokens per step for speculative verification; a rewind only moves
// the model's position, later entries are overwritten).
//   q, k, v = x Wq^T, x Wk^T, x Wv^T;  [q, k = RMSNorm_head(q, k)];  [RoPE(q, k)]
//   o = softmax(q k^T / sqrt(P), causal [, window]) v;  out = o Wo^T
// Parameters (prefix ...mixer.): q_proj/k_proj/v_proj/o_proj.weight (torch Linear layout),
// q_norm.weight/k_norm.weight [P] with qk_norm, biases with `bias`. Not the block norm/residual.
#include <cmath>

#include "core/error.h"
#include "layer.h"
#include "ops/attention.h"
#include "ops/elementwise.h"
#include "ops/linear.h"
#include "ops/rmsnorm.h"
#include "tensor_util.h"

namespace strata::model {

namespace {

class AttentionMixer final : public Mixer {
 public:
  AttentionMixer(const AttentionConfig& c, const ModelConfig& model, const LayerPlace& place, ParamStore& params,
                 Rng& rng)
      : c_(c), d_model_(model.d_model), eps_(static_cast<float>(model.norm_eps)), place_(place) {
    const std::string p = place.prefix + "mixer.";
    const int L = place.layer;
    const int64_t qd = int64_t{c.heads} * c.head_dim, kvd = int64_t{c.kv_heads} * c.head_dim;
    const char* qkv = place.role("attention.qkv");
    wq_ = &params.add(p + "q_proj.weight", {qd, d_model_}, qkv, L);
    wk_ = &params.add(p + "k_proj.weight", {kvd, d_model_}, qkv, L);
    wv_ = &params.add(p + "v_proj.weight", {kvd, d_model_}, qkv, L);
    wo_ = &params.add(p + "o_proj.weight", {d_model_, qd}, place.role("attention.o"), L);
    if (c.bias) {
      qb_ = &params.add(p + "q_proj.bias", {qd}, "bias", L, false);
      kb_ = &params.add(p + "k_proj.bias", {kvd}, "bias", L, false);
      vb_ = &params.add(p + "v_proj.bias", {kvd}, "bias", L, false);
      ob_ = &params.add(p + "o_proj.bias", {d_model_}, "bias", L, false);
    }
    if (c.qk_norm) {
      qn_ = &params.add(p + "q_norm.weight", {c.head_dim}, "norm", L, false);
      kn_ = &params.add(p + "k_norm.weight", {c.head_dim}, "norm", L, false);
      init_constant(*qn_, 1.0f);
      init_constant(*kn_, 1.0f);
    }
    init_normal(*wq_, rng, model.init_std);
    init_normal(*wk_, rng, model.init_std);
    init_normal(*wv_, rng, model.init_std);
    init_normal(*wo_, rng, model.init_std);
  }

  BlockKind kind() const override { return BlockKind::Attention; }

  Tensor forward(StepContext& ctx, const Tensor& x, MixerCache* cache) override {
    Backend& be = *ctx.backend;
    Arena& A = *ctx.acts;
    const int64_t B = ctx.batch, T = ctx.time, M = B * T;
    const int64_t H = c_.heads, Hk = c_.kv_heads, P = c_.head_dim;
    const std::string& n = place_.label;
    x_ = x;
    project_qkv(be, A, n, x, M, q_pre_, k_pre_, v_);
    q_ = q_pre_;
    k_ = k_pre_;
    if (c_.qk_norm) {
      q_ = alloc_out(A, n + ".q_norm", {M, H * P});
      k_ = alloc_out(A, n + ".k_norm", {M, Hk * P});
      q_rstd_ = alloc_out(A, n + ".q_norm.rstd", {M * H});
      k_rstd_ = alloc_out(A, n + ".k_norm.rstd", {M * Hk});
      head_norm(be, q_, q_rstd_, q_pre_, qn_, M * H);
      head_norm(be, k_, k_rstd_, k_pre_, kn_, M * Hk);
    }
    if (c_.has_rope) {
      // RoPE rotates in place: keep the un-rotated tensors distinct from q_/k_ only through copies.
      Tensor qr = alloc_out(A, n + ".q_rope", {M, H * P});
      Tensor kr = alloc_out(A, n + ".k_rope", {M, Hk * P});
      copy_tensor(be, qr, q_);
      copy_tensor(be, kr, k_);
      apply_rope(be, view(qr, {B, T, H, P}), 0, false);
      apply_rope(be, view(kr, {B, T, Hk, P}), 0, false);
      q_ = qr;
      k_ = kr;
    }
    att_ = alloc_out(A, n + ".attention", {B, T, H, P});
    lse_ = alloc_out(A, n + ".attention.lse", {B, H, T});
    AttentionFwd af;
    af.out = att_;
    af.lse = lse_;
    af.q = view(q_, {B, T, H, P});
    af.k = view(k_, {B, T, Hk, P});
    af.v = view(v_, {B, T, Hk, P});
    af.window = c_.sliding_window;
    attention_forward(be, af);

    Tensor out = alloc_out(A, n + ".o_proj", {M, d_model_});
    linear_forward(be, out, view(att_, {M, H * P}), wo_->value, bias_of(ob_), place_.role("attention.o"), place_.layer);

    if (cache) {
      STRATA_CHECK(T <= cache->capacity, n, ": prefill of ", T, " tokens exceeds the KV cache capacity ", cache->capacity);
      const int64_t row = Hk * P, S = cache->capacity;
      StridedCopyArgs a;
      a.batches = B;
      a.rows = 1;
      a.cols = T * row;
      a.dst_batch_stride = S * row;
      a.src_batch_stride = T * row;
      for (const auto& [cache_tensor, source] : {std::pair{cache->k_cache, k_}, std::pair{cache->v_cache, v_}}) {
        a.dst = cache_tensor;
        a.src = source;
        copy_strided(be, a);
      }
    }
    return out;
  }

  Tensor backward(StepContext& ctx, const Tensor& dout) override {
    Backend& be = *ctx.backend;
    Arena& A = *ctx.acts;
    const int64_t B = ctx.batch, T = ctx.time, M = B * T;
    const int64_t H = c_.heads, Hk = c_.kv_heads, P = c_.head_dim;
    const std::string& n = place_.label;

    Tensor datt = alloc_out(A, n + ".attention.grad", {M, H * P});
    linear_backward(be, datt, wo_->grad, bias_grad_of(ob_), dout, view(att_, {M, H * P}), wo_->value,
                    place_.role("attention.o"), place_.layer);
    Tensor dq = alloc_out(A, n + ".q.grad", {M, H * P});
    Tensor dk = alloc_out(A, n + ".k.grad", {M, Hk * P});
    Tensor dv = alloc_out(A, n + ".v.grad", {M, Hk * P});
    AttentionBwd ab;
    ab.dq = view(dq, {B, T, H, P});
    ab.dk = view(dk, {B, T, Hk, P});
    ab.dv = view(dv, {B, T, Hk, P});
    ab.dout = view(datt, {B, T, H, P});
    ab.q = view(q_, {B, T, H, P});
    ab.k = view(k_, {B, T, Hk, P});
    ab.v = view(v_, {B, T, Hk, P});
    ab.out = att_;
    ab.lse = lse_;
    ab.window = c_.sliding_window;
    attention_backward(be, ab);
    if (c_.has_rope) {
      apply_rope(be, view(dq, {B, T, H, P}), 0, true);
      apply_rope(be, view(dk, {B, T, Hk, P}), 0, true);
    }
    if (c_.qk_norm) {
      Tensor dq_pre = alloc_out(A, n + ".q_pre.grad", {M, H * P});
      Tensor dk_pre = alloc_out(A, n + ".k_pre.grad", {M, Hk * P});
      head_norm_backward(be, dq_pre, dq, q_pre_, qn_, q_rstd_, M * H);
      head_norm_backward(be, dk_pre, dk, k_pre_, kn_, k_rstd_, M * Hk);
      dq = dq_pre;
      dk = dk_pre;
    }
    Tensor dx = alloc_out(A, n + ".input.grad", {M, d_model_});
    const char* qkv = place_.role("attention.qkv");
    linear_backward(be, dx, wq_->grad, bias_grad_of(qb_), dq, x_, wq_->value, qkv, place_.layer, false);
    linear_backward(be, dx, wk_->grad, bias_grad_of(kb_), dk, x_, wk_->value, qkv, place_.layer, true);
    linear_backward(be, dx, wv_->grad, bias_grad_of(vb_), dv, x_, wv_->value, qkv, place_.layer, true);
    return dx;
  }

  void init_cache(Arena& arena, MixerCache& cache, int64_t batch, int64_t capacity, int64_t history_tokens) override {
    cache.k_cache = alloc(arena, place_.label + ".k_cache", {batch, capacity, c_.kv_heads, c_.head_dim});
    cache.v_cache = alloc(arena, place_.label + ".v_cache", {batch, capacity, c_.kv_heads, c_.head_dim});
    cache.capacity = capacity;
    cache.history_tokens = history_tokens;  // a rewind only moves the position (the model's)
  }

  Tensor step(StepContext& ctx, const Tensor& x, MixerCache& cache) override {
    Backend& be = *ctx.backend;
    Arena& A = *ctx.acts;
    const int64_t B = ctx.batch, n = ctx.time, M = B * n, H = c_.heads, Hk = c_.kv_heads, P = c_.head_dim;
    STRATA_CHECK(ctx.position + n <= cache.capacity, place_.label, ": positions up to ", ctx.position + n - 1,
                 " are past the KV cache capacity ", cache.capacity);
    const std::string tag = place_.label + ".step";
    Tensor q, k, v;
    project_qkv(be, A, tag, x, M, q, k, v);
    if (c_.qk_norm) {
      Tensor qn = alloc_out(A, tag + ".q_norm", {M, H * P});
      Tensor kn = alloc_out(A, tag + ".k_norm", {M, Hk * P});
      head_norm(be, qn, alloc_out(A, tag + ".q_norm.rstd", {M * H}), q, qn_, M * H);
      head_norm(be, kn, alloc_out(A, tag + ".k_norm.rstd", {M * Hk}), k, kn_, M * Hk);
      q = qn;
      k = kn;
    }
    Tensor att = alloc_out(A, tag + ".attention", {M, H * P});
    // RoPE, the cache writes and the attention itself depend on the position (run at once, or at
    // every replay of a recorded step).
    ctx.run_positional([this, &be, &A, q, k, v, att, B, n, H, Hk, P, cache](int64_t position) {
      if (c_.has_rope) {
        apply_rope(be, view(q, {B, n, H, P}), position, false);
        apply_rope(be, view(k, {B, n, Hk, P}), position, false);
      }
      // Token by token: each query sees the cache up to its own position, as a one-token step does.
      for (int64_t t = 0; t < n; t++) {
        Tensor out_t = token_rows(be, A, att, B, n, t);
        AttentionDecode ad;
        ad.out = view(out_t, {B, H, P});
        ad.q = view(token_rows(be, A, q, B, n, t), {B, H, P});
        ad.k_new = view(token_rows(be, A, k, B, n, t), {B, Hk, P});
        ad.v_new = view(token_rows(be, A, v, B, n, t), {B, Hk, P});
        ad.k_cache = cache.k_cache;
        ad.v_cache = cache.v_cache;
        ad.position = position + t;
        ad.window = c_.sliding_window;
        attention_decode(be, ad);
        store_token_rows(be, att, out_t, B, n, t);
      }
    });
    Tensor out = alloc_out(A, tag + ".o_proj", {M, d_model_});
    linear_forward(be, out, att, wo_->value, bias_of(ob_), place_.role("attention.o"), place_.layer);
    return out;
  }

 private:
  static Tensor bias_of(const Param* p) { return p ? p->value : Tensor(); }
  static Tensor bias_grad_of(const Param* p) { return p ? p->grad : Tensor(); }

  void project_qkv(Backend& be, Arena& A, const std::string& n, const Tensor& x, int64_t M, Tensor& q, Tensor& k,
                   Tensor& v) {
    const int64_t qd = int64_t{c_.heads} * c_.head_dim, kvd = int64_t{c_.kv_heads} * c_.head_dim;
    const char* qkv = place_.role("attention.qkv");
    q = alloc_out(A, n + ".q", {M, qd});
    k = alloc_out(A, n + ".k", {M, kvd});
    v = alloc_out(A, n + ".v", {M, kvd});
    linear_forward(be, q, x, wq_->value, bias_of(qb_), qkv, place_.layer);
    linear_forward(be, k, x, wk_->value, bias_of(kb_), qkv, place_.layer);
    linear_forward(be, v, x, wv_->value, bias_of(vb_), qkv, place_.layer);
  }

  void head_norm(Backend& be, const Tensor& y, const Tensor& rstd, const Tensor& x, const Param* w, int64_t rows) {
    RmsNormFwd f;
    f.y = view(y, {rows, c_.head_dim});
    f.rstd = rstd;
    f.x = view(x, {rows, c_.head_dim});
    f.w = w->value;
    f.eps = eps_;
    rmsnorm_forward(be, f);
  }

  void head_norm_backward(Backend& be, const Tensor& dx, const Tensor& dy, const Tensor& x, const Param* w,
                          const Tensor& rstd, int64_t rows) {
    RmsNormBwd b;
    b.dx = view(dx, {rows, c_.head_dim});
    b.dw = w->grad;
    b.dy = view(dy, {rows, c_.head_dim});
    b.x = view(x, {rows, c_.head_dim});
    b.w = w->value;
    b.rstd = rstd;
    rmsnorm_backward(be, b);
  }

  void apply_rope(Backend& be, const Tensor& x, int64_t offset, bool inverse) {
    RopeArgs r;
    r.x = x;
    r.theta = static_cast<float>(c_.rope_theta);
    r.fraction = static_cast<float>(c_.rope_fraction);
    r.position_offset = offset;
    r.inverse = inverse;
    rope(be, r);
  }

  AttentionConfig c_;
  int64_t d_model_;
  float eps_;
  LayerPlace place_;
  Param *wq_ = nullptr, *wk_ = nullptr, *wv_ = nullptr, *wo_ = nullptr;
  Param *qb_ = nullptr, *kb_ = nullptr, *vb_ = nullptr, *ob_ = nullptr, *qn_ = nullptr, *kn_ = nullptr;
  // saved by forward (q_/k_ are what attention saw: normed and rotated when configured)
  Tensor x_, q_pre_, k_pre_, q_, k_, v_, q_rstd_, k_rstd_, att_, lse_;
};

}  // namespace

std::unique_ptr<Mixer> make_attention_mixer(const BlockConfig& block, const ModelConfig& model,
                                            const LayerPlace& place, ParamStore& params, Rng& rng) {
  return std::make_unique<AttentionMixer>(block.attention, model, place, params, rng);
}

}  // namespace strata::model
