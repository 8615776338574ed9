// Checked entry points of Mamba-2's gated grouped RMSNorm.
#include "gated_rmsnorm.h"

namespace strata {

namespace {
void check_common(const char* op, const Tensor& y, const Tensor& z, const Tensor& w, const Tensor& rstd,
                  int64_t groups) {
  STRATA_CHECK(y.defined() && z.defined() && w.defined(), op, ": y, z and w are required");
  const int64_t m = y.rows(), di = y.cols();
  STRATA_CHECK(groups >= 1 && di % groups == 0, op, ": width ", di, " is not divisible by groups ", groups);
  STRATA_CHECK(z.rows() == m && z.cols() == di, op, ": gate z '", z.name, "' ", z.shape_string(),
               " must match y ", y.shape_string());
  check_shape(op, "w", w, {di});
  check_shape(op, "rstd", rstd, {m, groups});
}
}  // namespace

void gated_rmsnorm_forward(Backend& backend, const GatedRmsNormFwd& a) {
  require_support(backend, OpKind::GatedRmsNorm, "gated_rmsnorm_forward");
  const char* op = "gated_rmsnorm_forward";
  check_common(op, a.y, a.z, a.w, a.rstd, a.groups);
  STRATA_CHECK(a.out.defined() && a.out.numel() == a.y.numel(), op, ": out must match y ", a.y.shape_string());
  STRATA_CHECK(a.eps > 0.0f, op, ": eps must be positive");
  GatedRmsNormFwd r = a;
  r.z_ld = resolve_row_pitch(op, "z", a.z, a.z_ld, a.y.cols(), "Di");
  backend.gated_rmsnorm_forward(r);
}

void gated_rmsnorm_backward(Backend& backend, const GatedRmsNormBwd& a) {
  require_support(backend, OpKind::GatedRmsNorm, "gated_rmsnorm_backward");
  const char* op = "gated_rmsnorm_backward";
  check_common(op, a.y, a.z, a.w, a.rstd, a.groups);
  STRATA_CHECK(a.dz.defined() && a.dz.rows() == a.y.rows() && a.dz.cols() == a.y.cols(), op, ": dz '", a.dz.name,
               "' ", a.dz.shape_string(), " must match y ", a.y.shape_string());
  for (const Tensor* t : {&a.dout, &a.dy}) {
    STRATA_CHECK(t->defined() && t->numel() == a.y.numel(), op, ": '", t->name, "' must match y ",
                 a.y.shape_string());
  }
  if (a.dw.defined()) check_shape(op, "dw", a.dw, {a.y.cols()});
  GatedRmsNormBwd r = a;
  r.z_ld = resolve_row_pitch(op, "z", a.z, a.z_ld, a.y.cols(), "Di");
  r.dz_ld = resolve_row_pitch(op, "dz", a.dz, a.dz_ld, a.y.cols(), "Di");
  backend.gated_rmsnorm_backward(r);
}

}  // namespace strata
