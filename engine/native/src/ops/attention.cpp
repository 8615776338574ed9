// Checked entry points of causal GQA attention (forward, backward, decode step) and RoPE.
#include "attention.h"

namespace strata {

namespace {
struct AttnDims {
  int64_t b, t, h, hkv, p;
};
AttnDims check_qkv(const char* op, const Tensor& q, const Tensor& k, const Tensor& v, int64_t window) {
  STRATA_CHECK(q.ndim == 4, op, ": q '", q.name, "' must be (B,T,H,P), got ", q.shape_string());
  STRATA_CHECK(k.ndim == 4, op, ": k '", k.name, "' must be (B,T,Hkv,P), got ", k.shape_string());
  AttnDims d{q.size(0), q.size(1), q.size(2), k.size(2), q.size(3)};
  STRATA_CHECK(d.hkv >= 1 && d.h % d.hkv == 0, op, ": query heads ", d.h, " must be a multiple of kv heads ", d.hkv);
  check_shape(op, "k", k, {d.b, d.t, d.hkv, d.p});
  check_shape(op, "v", v, {d.b, d.t, d.hkv, d.p});
  STRATA_CHECK(window >= 0, op, ": window must be >= 0, got ", window);
  return d;
}
}  // namespace

void attention_forward(Backend& backend, const AttentionFwd& a) {
  require_support(backend, OpKind::Attention, "attention_forward");
  const char* op = "attention_forward";
  AttnDims d = check_qkv(op, a.q, a.k, a.v, a.window);
  check_shape(op, "out", a.out, {d.b, d.t, d.h, d.p});
  check_shape(op, "lse", a.lse, {d.b, d.h, d.t});
  backend.attention_forward(a);
}

void attention_backward(Backend& backend, const AttentionBwd& a) {
  require_support(backend, OpKind::Attention, "attention_backward");
  const char* op = "attention_backward";
  AttnDims d = check_qkv(op, a.q, a.k, a.v, a.window);
  check_shape(op, "out", a.out, {d.b, d.t, d.h, d.p});
  check_shape(op, "dout", a.dout, {d.b, d.t, d.h, d.p});
  check_shape(op, "lse", a.lse, {d.b, d.h, d.t});
  check_shape(op, "dq", a.dq, {d.b, d.t, d.h, d.p});
  check_shape(op, "dk", a.dk, {d.b, d.t, d.hkv, d.p});
  check_shape(op, "dv", a.dv, {d.b, d.t, d.hkv, d.p});
  backend.attention_backward(a);
}

void attention_decode(Backend& backend, const AttentionDecode& a) {
  require_support(backend, OpKind::Attention, "attention_decode");
  const char* op = "attention_decode";
  STRATA_CHECK(a.q.ndim == 3, op, ": q '", a.q.name, "' must be (B,H,P), got ", a.q.shape_string());
  STRATA_CHECK(a.k_cache.ndim == 4, op, ": k_cache must be (B,S,Hkv,P), got ", a.k_cache.shape_string());
  const int64_t b = a.q.size(0), h = a.q.size(1), p = a.q.size(2);
  const int64_t s = a.k_cache.size(1), hkv = a.k_cache.size(2);
  STRATA_CHECK(hkv >= 1 && h % hkv == 0, op, ": query heads ", h, " must be a multiple of kv heads ", hkv);
  check_shape(op, "k_cache", a.k_cache, {b, s, hkv, p});
  check_shape(op, "v_cache", a.v_cache, {b, s, hkv, p});
  check_shape(op, "k_new", a.k_new, {b, hkv, p});
  check_shape(op, "v_new", a.v_new, {b, hkv, p});
  check_shape(op, "out", a.out, {b, h, p});
  STRATA_CHECK(a.position >= 0 && a.position < s, op, ": position ", a.position, " is outside the KV cache of ", s,
               " positions");
  STRATA_CHECK(a.window >= 0, op, ": window must be >= 0, got ", a.window);
  backend.attention_decode(a);
}

void rope(Backend& backend, const RopeArgs& a) {
  require_support(backend, OpKind::Rope, "rope");
  STRATA_CHECK(a.x.ndim == 4, "rope: x '", a.x.name, "' must be (B,T,Hx,P), got ", a.x.shape_string());
  STRATA_CHECK(a.theta > 0.0f, "rope: theta must be positive, got ", a.theta);
  STRATA_CHECK(a.fraction > 0.0f && a.fraction <= 1.0f, "rope: fraction must be in (0,1], got ", a.fraction);
  STRATA_CHECK(a.position_offset >= 0, "rope: position_offset must be >= 0");
  backend.rope(a);
}

}  // namespace strata
