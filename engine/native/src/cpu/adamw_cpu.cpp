// CPU kernels of the fused AdamW step (decoupled weight decay, bias correction) and of the sum of
// squares (double accumulation, fixed-order reduction of per-thread partial sums).
#include <cmath>
#include <vector>

#include "../ops/adamw.h"
#include "cpu_backend.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace strata {

void CpuBackend::adamw_step(const AdamWStep& a) {
  const int64_t n = a.param.numel();
  const float bias1 = 1.0f - static_cast<float>(std::pow(static_cast<double>(a.beta1), static_cast<double>(a.step)));
  const float bias2 = 1.0f - static_cast<float>(std::pow(static_cast<double>(a.beta2), static_cast<double>(a.step)));
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) {
    const float g = a.grad.data[i] * a.grad_scale;
    const float m = a.beta1 * a.m.data[i] + (1.0f - a.beta1) * g;
    const float v = a.beta2 * a.v.data[i] + (1.0f - a.beta2) * g * g;
    a.m.data[i] = m;
    a.v.data[i] = v;
    const float update = (m / bias1) / (std::sqrt(v / bias2) + a.eps);
    a.param.data[i] -= a.lr * (update + a.weight_decay * a.param.data[i]);
  }
}

namespace {

double sum_squares_of(const Tensor& x) {  // x: (n)
  const int64_t n = x.numel();
  int threads = 1;
#ifdef _OPENMP
  threads = omp_get_max_threads();
#endif
  std::vector<double> partial(threads, 0.0);
#pragma omp parallel num_threads(threads)
  {
    int tid = 0;
#ifdef _OPENMP
    tid = omp_get_thread_num();
#endif
    double local = 0.0;
#pragma omp for schedule(static)
    for (int64_t i = 0; i < n; ++i) local += static_cast<double>(x.data[i]) * x.data[i];
    partial[tid] = local;
  }
  double total = 0.0;
  for (double p : partial) total += p;
  return total;
}

}  // namespace

void CpuBackend::sum_squares(const SumSquaresArgs& a) {
  double total = 0.0;
  for (const Tensor& x : a.xs) total += sum_squares_of(x);
  *a.result = total;
}

}  // namespace strata
