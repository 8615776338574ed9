// Checked entry points of RMSNorm (with optional fused residual), dispatched to the backend.
#include "rmsnorm.h"

namespace strata {

void rmsnorm_forward(Backend& backend, const RmsNormFwd& a) {
  require_support(backend, OpKind::RmsNorm, "rmsnorm_forward");
  const char* op = "rmsnorm_forward";
  STRATA_CHECK(a.x.defined() && a.w.defined(), op, ": x and w are required");
  const int64_t m = a.x.rows(), d = a.x.cols();
  check_shape(op, "w", a.w, {d});
  STRATA_CHECK(a.y.defined() && a.y.numel() == m * d, op, ": y must have ", m * d, " elements like x ",
               a.x.shape_string());
  check_shape(op, "rstd", a.rstd, {m});
  if (a.residual.defined()) {
    STRATA_CHECK(a.residual.numel() == m * d, op, ": residual '", a.residual.name, "' ",
                 a.residual.shape_string(), " differs from x ", a.x.shape_string());
    STRATA_CHECK(a.residual_out.defined() && a.residual_out.numel() == m * d, op,
                 ": residual_out is required (same size as x) when residual is given");
  }
  STRATA_CHECK(a.eps > 0.0f, op, ": eps must be positive");
  backend.rmsnorm_forward(a);
}

void rmsnorm_backward(Backend& backend, const RmsNormBwd& a) {
  require_support(backend, OpKind::RmsNorm, "rmsnorm_backward");
  const char* op = "rmsnorm_backward";
  STRATA_CHECK(a.x.defined() && a.w.defined(), op, ": x and w are required");
  const int64_t m = a.x.rows(), d = a.x.cols();
  check_shape(op, "w", a.w, {d});
  check_shape(op, "rstd", a.rstd, {m});
  STRATA_CHECK(a.dy.defined() && a.dy.numel() == m * d, op, ": dy must match x ", a.x.shape_string());
  STRATA_CHECK(a.dx.defined() && a.dx.numel() == m * d, op, ": dx must match x ", a.x.shape_string());
  if (a.dw.defined()) check_shape(op, "dw", a.dw, {d});
  backend.rmsnorm_backward(a);
}

}  // namespace strata
