// Linear layer helpers: shape checks, the three tagged GEMMs and the bias add / bias gradient
// (elementwise ops, so they run on any backend).
#include "linear.h"

#include "../core/error.h"
#include "elementwise.h"

namespace strata {

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
    bias_add(backend, BiasAddArgs{Tensor(y.data, {m, o}, y.name), bias});
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
    bias_grad(backend, BiasGradArgs{dbias, Tensor(dy.data, {m, o}, dy.name)});
  }
}

}  // namespace strata
