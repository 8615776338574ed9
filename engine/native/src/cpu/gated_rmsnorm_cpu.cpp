// CPU kernels of the gated grouped RMSNorm.
// gate-then-norm: g = y silu(z), n = g rstd, out = n w;
//   dg = rstd (dout w - n mean_group(dout w n)), dw += dout n, dy = dg silu(z), dz = dg y silu'(z)
// norm-then-gate: n = y rstd, out = n w silu(z); with e = dout silu(z):
//   dy = rstd (e w - n mean_group(e w n)), dw += e n, dz = dout n w silu'(z)
// dw is accumulated per thread and reduced in a fixed order.
#include <cmath>
#include <vector>

#include "../ops/gated_rmsnorm.h"
#include "cpu_backend.h"
#include "cpu_math.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace strata {

using namespace cpu_math;

void CpuBackend::gated_rmsnorm_forward(const GatedRmsNormFwd& a) {
  const int64_t m = a.y.rows(), di = a.y.cols(), gs = di / a.groups;
#pragma omp parallel for schedule(static) if (m * di > 16384)
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t g = 0; g < a.groups; ++g) {
      const int64_t off = i * di + g * gs;
      const float* y = a.y.data + off;
      const float* z = a.z.data + off;
      float* out = a.out.data + off;
      double sum = 0.0;
      for (int64_t j = 0; j < gs; ++j) {
        float v = a.norm_before_gate ? y[j] : y[j] * z[j] * sigmoid(z[j]);
        out[j] = v;
        sum += static_cast<double>(v) * v;
      }
      const float rstd = static_cast<float>(1.0 / std::sqrt(sum / gs + a.eps));
      a.rstd.data[i * a.groups + g] = rstd;
      const float* w = a.w.data + g * gs;
      for (int64_t j = 0; j < gs; ++j) {
        out[j] *= rstd * w[j];
        if (a.norm_before_gate) out[j] *= z[j] * sigmoid(z[j]);
      }
    }
  }
}

void CpuBackend::gated_rmsnorm_backward(const GatedRmsNormBwd& a) {
  const int64_t m = a.y.rows(), di = a.y.cols(), gs = di / a.groups;
  int threads = 1;
#ifdef _OPENMP
  threads = omp_get_max_threads();
#endif
  std::vector<double> dw_partial(a.dw.defined() ? static_cast<size_t>(threads * di) : 0, 0.0);
#pragma omp parallel num_threads(threads)
  {
    int tid = 0;
#ifdef _OPENMP
    tid = omp_get_thread_num();
#endif
    std::vector<float> normed(gs), upstream(gs);
#pragma omp for schedule(static)
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t g = 0; g < a.groups; ++g) {
        const int64_t off = i * di + g * gs;
        const float* y = a.y.data + off;
        const float* z = a.z.data + off;
        const float* w = a.w.data + g * gs;
        const float* dout = a.dout.data + off;
        float* dy = a.dy.data + off;
        float* dz = a.dz.data + off;
        const float rstd = a.rstd.data[i * a.groups + g];
        double dot = 0.0;
        for (int64_t j = 0; j < gs; ++j) {
          const float s = sigmoid(z[j]);
          const float pre = a.norm_before_gate ? y[j] : y[j] * z[j] * s;
          normed[j] = pre * rstd;
          upstream[j] = a.norm_before_gate ? dout[j] * z[j] * s : dout[j];
          dot += static_cast<double>(upstream[j]) * w[j] * normed[j];
        }
        const float mean_dot = static_cast<float>(dot / gs);
        double* dw_local = dw_partial.empty() ? nullptr : dw_partial.data() + tid * di + g * gs;
        for (int64_t j = 0; j < gs; ++j) {
          const float dpre = rstd * (upstream[j] * w[j] - normed[j] * mean_dot);
          if (dw_local) dw_local[j] += static_cast<double>(upstream[j]) * normed[j];
          if (a.norm_before_gate) {
            dy[j] = dpre;
            dz[j] = dout[j] * normed[j] * w[j] * silu_grad(z[j]);
          } else {
            dy[j] = dpre * z[j] * sigmoid(z[j]);
            dz[j] = dpre * y[j] * silu_grad(z[j]);
          }
        }
      }
    }
  }
  if (a.dw.defined()) {
    for (int t = 0; t < threads; ++t) {
      for (int64_t j = 0; j < di; ++j) a.dw.data[j] += static_cast<float>(dw_partial[t * di + j]);
    }
  }
}

}  // namespace strata
