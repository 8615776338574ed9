// Small inline math shared by the CPU kernels: sigmoid / SiLU / softplus and their derivatives,
// and a dot product whose reduction the compiler may vectorize (OpenMP SIMD reduction: lanes are
// summed in a fixed order, so results stay deterministic for a given build).
// This file is not a SIMD library; the GEMM micro-kernels have their own intrinsics.
#pragma once

#include <cmath>
#include <cstdint>

namespace strata::cpu_math {

inline float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }
inline float silu(float x) { return x * sigmoid(x); }
inline float silu_grad(float x) {
  const float s = sigmoid(x);
  return s * (1.0f + x * (1.0f - s));
}
inline float softplus(float x) { return x > 20.0f ? x : std::log1p(std::exp(x)); }

inline float dot(const float* a, const float* b, int64_t n) {
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int64_t i = 0; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

}  // namespace strata::cpu_math
