// Linear layer helpers: shape checks, the three tagged GEMMs and the bias add / bias gradient.
#include "linear.h"

#include "../core/error.h"

namespace strata {

namespace {
// Bias add and bias gradient are tiny row loops; they run on the host-accessible backend only.
void require_host(Backend& backend, const char* op) {
  STRATA_CHECK(backend.host_accessible(), op, ": bias handling needs a host-accessible backend (",
               backend.name(), " is not)");
}
}  // namespace

void linear_forward(Backend& backend, const Tensor& y, const Tensor& x, const Tensor& w, const Tensor& bias,
                    const char* role, int layer) {
  const char* op = "linear_forward";
  STRATA_CHECK(w.ndim == 2, op, "[", role, "]: weight '", w.name, "' must be (O,I), got ", w.shape_string());
  const int64_t o = w.size(0), in = w.size(1), m = x.rows();
  STRATA_CHECK(x.cols() == in, op, "[", role, "]: x '", x.name, "' ", x.shape_string(), " has ", x.cols(),
               " features, weight '", w.name, "' expects ", in);
  STRATA_CHECK(y.defined() && y.rows() == m && y.cols() == o, op, "[", role, "]: y '", y.name, "' ",
               y.shape_string(), " must be (", m, ",", o, ")");
  gemm(backend, gemm_call(m, o, in, x.data, false, w.data, true, y.data, 0.0f,
                          GemmTag{GemmPass::Fprop, role, layer, 0}));
  if (bias.defined()) {
    check_shape(op, "bias", bias, {o});
    require_host(backend, op);
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < o; ++j) y.data[i * o + j] += bias.data[j];
    }
  }
}

void linear_backward(Backend& backend, const Tensor& dx, const Tensor& dw, const Tensor& dbias, const Tensor& dy,
                     const Tensor& x, const Tensor& w, const char* role, int layer, bool accumulate_dx) {
  const char* op = "linear_backward";
  STRATA_CHECK(w.ndim == 2, op, "[", role, "]: weight '", w.name, "' must be (O,I), got ", w.shape_string());
  const int64_t o = w.size(0), in = w.size(1), m = dy.rows();
  STRATA_CHECK(dy.cols() == o, op, "[", role, "]: dy '", dy.name, "' ", dy.shape_string(), " must have ", o,
               " columns");
  if (dx.defined()) {
    STRATA_CHECK(dx.rows() == m && dx.cols() == in, op, "[", role, "]: dx '", dx.name, "' ", dx.shape_string(),
                 " must be (", m, ",", in, ")");
    gemm(backend, gemm_call(m, in, o, dy.data, false, w.data, false, dx.data, accumulate_dx ? 1.0f : 0.0f,
                            GemmTag{GemmPass::Dgrad, role, layer, 0}));
  }
  if (dw.defined()) {
    check_shape(op, "dw", dw, {o, in});
    STRATA_CHECK(x.rows() == m && x.cols() == in, op, "[", role, "]: x '", x.name, "' ", x.shape_string(),
                 " must be (", m, ",", in, ")");
    gemm(backend, gemm_call(o, in, m, dy.data, true, x.data, false, dw.data, 1.0f,
                            GemmTag{GemmPass::Wgrad, role, layer, 0}));
  }
  if (dbias.defined()) {
    check_shape(op, "dbias", dbias, {o});
    require_host(backend, op);
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < o; ++j) dbias.data[j] += dy.data[i * o + j];
    }
  }
}

}  // namespace strata
