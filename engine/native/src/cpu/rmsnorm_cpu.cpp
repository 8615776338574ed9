// CPU kernels of RMSNorm. Forward: s = x (+ residual), rstd = 1/sqrt(mean(s^2)+eps), y = s*rstd*w.
// Backward per row with n = s*rstd:  dx = rstd * (dy*w - n * mean(dy*w*n)),  dw += sum_rows dy*n.
// dw is accumulated per thread and summed in a fixed order, so results are deterministic.
#include <cmath>
#include <vector>

#include "../ops/rmsnorm.h"
#include "cpu_backend.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace strata {

void CpuBackend::rmsnorm_forward(const RmsNormFwd& a) {
  const int64_t m = a.x.rows(), d = a.x.cols();
  const bool fused = a.residual.defined();
#pragma omp parallel for schedule(static) if (m * d > 16384)
  for (int64_t i = 0; i < m; ++i) {
    const float* x = a.x.data + i * d;
    float* s = fused ? a.residual_out.data + i * d : nullptr;
    double sum = 0.0;
    for (int64_t j = 0; j < d; ++j) {
      float v = x[j];
      if (fused) {
        v += a.residual.data[i * d + j];
        s[j] = v;
      }
      sum += static_cast<double>(v) * v;
    }
    const float* src = fused ? s : x;
    float rstd = static_cast<float>(1.0 / std::sqrt(sum / d + a.eps));
    a.rstd.data[i] = rstd;
    float* y = a.y.data + i * d;
    for (int64_t j = 0; j < d; ++j) y[j] = src[j] * rstd * a.w.data[j];
  }
}

void CpuBackend::rmsnorm_backward(const RmsNormBwd& a) {
  const int64_t m = a.x.rows(), d = a.x.cols();
  int threads = 1;
#ifdef _OPENMP
  threads = omp_get_max_threads();
#endif
  std::vector<double> dw_partial(a.dw.defined() ? static_cast<size_t>(threads * d) : 0, 0.0);
#pragma omp parallel num_threads(threads)
  {
    int tid = 0;
#ifdef _OPENMP
    tid = omp_get_thread_num();
#endif
    double* dw_local = dw_partial.empty() ? nullptr : dw_partial.data() + tid * d;
#pragma omp for schedule(static)
    for (int64_t i = 0; i < m; ++i) {
      const float* x = a.x.data + i * d;
      const float* dy = a.dy.data + i * d;
      const float rstd = a.rstd.data[i];
      double dot = 0.0;  // sum dy*w*n
      for (int64_t j = 0; j < d; ++j) dot += static_cast<double>(dy[j]) * a.w.data[j] * x[j] * rstd;
      const float mean_dot = static_cast<float>(dot / d);
      float* dx = a.dx.data + i * d;
      for (int64_t j = 0; j < d; ++j) {
        float n = x[j] * rstd;
        float g = rstd * (dy[j] * a.w.data[j] - n * mean_dot);
        dx[j] = a.accumulate ? dx[j] + g : g;
        if (dw_local) dw_local[j] += static_cast<double>(dy[j]) * n;
      }
    }
  }
  if (a.dw.defined()) {
    for (int t = 0; t < threads; ++t) {
      for (int64_t j = 0; j < d; ++j) a.dw.data[j] += static_cast<float>(dw_partial[t * d + j]);
    }
  }
}

}  // namespace strata
