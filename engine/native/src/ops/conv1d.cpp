// Checked entry points of the depthwise causal conv1d (forward, backward, decode step).
#include "conv1d.h"

namespace strata {

namespace {
void check_weights(const char* op, const Tensor& w, const Tensor& bias, int64_t c) {
  STRATA_CHECK(w.ndim == 2 && w.size(0) == c && w.size(1) >= 1, op, ": w '", w.name, "' ", w.shape_string(),
               " must be (C=", c, ",K)");
  if (bias.defined()) check_shape(op, "bias", bias, {c});
}
// A (B,T,C) sequence tensor given whole or as up to 3 column parts (B,T,C_i); the parts, whole
// tensors becoming parts[0], are returned in `parts` for the backend.
void resolve_parts(const char* op, const char* field, const Tensor& whole, const std::array<Tensor, 3>& given,
                   std::array<Tensor, 3>& parts, int64_t b, int64_t t, int64_t c) {
  const bool split = given[0].defined() || given[1].defined() || given[2].defined();
  STRATA_CHECK(whole.defined() != split, op, ": give either ", field, " or ", field, "_parts");
  if (!split) {
    check_shape(op, field, whole, {b, t, c});
    parts[0] = whole;
    parts[1] = parts[2] = Tensor();
    return;
  }
  int64_t columns = 0;
  for (int i = 0; i < 3; ++i) {
    parts[i] = given[i];
    if (!given[i].defined()) continue;
    STRATA_CHECK(given[i].ndim == 3 && given[i].size(0) == b && given[i].size(1) == t, op, ": ", field, "_parts[", i,
                 "] '", given[i].name, "' ", given[i].shape_string(), " must be (B=", b, ",T=", t, ",C_", i, ")");
    columns += given[i].size(2);
  }
  STRATA_CHECK(columns == c, op, ": ", field, "_parts cover ", columns, " channels, x has C=", c);
}
}  // namespace

void conv1d_forward(Backend& backend, const Conv1dFwd& a) {
  require_support(backend, OpKind::Conv1d, "conv1d_forward");
  const char* op = "conv1d_forward";
  STRATA_CHECK(a.x.ndim == 3, op, ": x '", a.x.name, "' must be (B,T,C), got ", a.x.shape_string());
  const int64_t b = a.x.size(0), t = a.x.size(1), c = a.x.size(2);
  check_weights(op, a.w, a.bias, c);
  Conv1dFwd r = a;
  r.x_ld = resolve_row_pitch(op, "x", a.x, a.x_ld, c, "C");
  resolve_parts(op, "y", a.y, a.y_parts, r.y_parts, b, t, c);
  r.y = Tensor();
  backend.conv1d_forward(r);
}

void conv1d_backward(Backend& backend, const Conv1dBwd& a) {
  require_support(backend, OpKind::Conv1d, "conv1d_backward");
  const char* op = "conv1d_backward";
  STRATA_CHECK(a.x.ndim == 3, op, ": x '", a.x.name, "' must be (B,T,C), got ", a.x.shape_string());
  const int64_t b = a.x.size(0), t = a.x.size(1), c = a.x.size(2);
  check_weights(op, a.w, a.bias, c);
  check_shape(op, "dx", a.dx, {b, t, c});
  if (a.dw.defined()) check_shape(op, "dw", a.dw, {c, a.w.size(1)});
  if (a.dbias.defined()) check_shape(op, "dbias", a.dbias, {c});
  Conv1dBwd r = a;
  r.x_ld = resolve_row_pitch(op, "x", a.x, a.x_ld, c, "C");
  r.dx_ld = resolve_row_pitch(op, "dx", a.dx, a.dx_ld, c, "C");
  resolve_parts(op, "dy", a.dy, a.dy_parts, r.dy_parts, b, t, c);
  r.dy = Tensor();
  backend.conv1d_backward(r);
}

void conv1d_step(Backend& backend, const Conv1dStep& a) {
  require_support(backend, OpKind::Conv1d, "conv1d_step");
  const char* op = "conv1d_step";
  STRATA_CHECK(a.x.ndim == 2, op, ": x '", a.x.name, "' must be (B,C), got ", a.x.shape_string());
  const int64_t b = a.x.size(0), c = a.x.size(1);
  check_weights(op, a.w, a.bias, c);
  const int64_t k = a.w.size(1);
  STRATA_CHECK(k >= 2, op, ": kernel width must be at least 2 for a rolling state, got ", k);
  check_shape(op, "state", a.state, {b, k - 1, c});
  check_shape(op, "y", a.y, {b, c});
  backend.conv1d_step(a);
}

}  // namespace strata
