// CPU kernels of the elementwise helpers (add, axpy, scale over flat float arrays; strided copy;
// bias add and bias gradient of linear layers).
#include "../ops/elementwise.h"
#include "cpu_backend.h"

namespace strata {

void CpuBackend::add(const AddArgs& args) {
  const int64_t n = args.out.numel();
  float* out = args.out.data;
  const float* a = args.a.data;
  const float* b = args.b.data;
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
}

void CpuBackend::axpy(const AxpyArgs& args) {
  const int64_t n = args.y.numel();
  float* y = args.y.data;
  const float* x = args.x.data;
  const float alpha = args.alpha;
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}

void CpuBackend::scale(const ScaleArgs& args) {
  const int64_t n = args.x.numel();
  float* x = args.x.data;
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) x[i] *= args.factor;
}

void CpuBackend::copy_strided(const StridedCopyArgs& a) {
  const int64_t total_rows = a.batches * a.rows, rows = a.rows, cols = a.cols;
#pragma omp parallel for schedule(static) if (total_rows * cols > 65536)
  for (int64_t br = 0; br < total_rows; ++br) {
    const int64_t b = br / rows, r = br % rows;
    float* d = a.dst.data + a.dst_offset + b * a.dst_batch_stride + r * a.dst_row_stride;
    const float* s = a.src.data + a.src_offset + b * a.src_batch_stride + r * a.src_row_stride;
    if (a.accumulate) {
      for (int64_t c = 0; c < cols; ++c) d[c] += s[c];
    } else {
      for (int64_t c = 0; c < cols; ++c) d[c] = s[c];
    }
  }
}

void CpuBackend::bias_add(const BiasAddArgs& a) {
  const int64_t m = a.y.rows(), o = a.y.cols();
  float* y = a.y.data;
  const float* bias = a.bias.data;
#pragma omp parallel for schedule(static) if (m * o > 65536)
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < o; ++j) y[i * o + j] += bias[j];
  }
}

void CpuBackend::bias_grad(const BiasGradArgs& a) {
  const int64_t m = a.dy.rows(), o = a.dy.cols();
  float* dbias = a.dbias.data;
  const float* dy = a.dy.data;
#pragma omp parallel for schedule(static) if (m * o > 65536)
  for (int64_t j = 0; j < o; ++j) {
    double sum = 0.0;
    for (int64_t i = 0; i < m; ++i) sum += dy[i * o + j];
    dbias[j] += static_cast<float>(sum);
  }
}

}  // namespace strata
