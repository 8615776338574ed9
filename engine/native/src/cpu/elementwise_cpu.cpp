// CPU kernels of the elementwise helpers (add, axpy, scale) over flat float arrays.
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

}  // namespace strata
