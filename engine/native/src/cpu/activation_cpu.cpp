// CPU kernels of the pointwise activations and their derivatives:
//   relu2' = 2 max(x,0);  gelu' = Phi(x) + x phi(x);  silu' = s (1 + x (1 - s)), s = sigmoid(x);
//   softplus' = sigmoid(x);  swiglu: d gate = dy * up * silu'(gate), d up = dy * silu(gate).
// relu2, silu and swiglu have AVX2+FMA paths (simd.h); the scalar loops are the reference.
#include <algorithm>
#include <cmath>

#include "../ops/activation.h"
#include "cpu_backend.h"
#include "cpu_math.h"
#include "simd.h"

namespace strata {

using namespace cpu_math;
namespace {

constexpr float kInvSqrt2 = 0.70710678118654752f;
constexpr float kInvSqrt2Pi = 0.39894228040143268f;
inline float gelu(float x) { return 0.5f * x * (1.0f + std::erf(x * kInvSqrt2)); }
inline float gelu_grad(float x) {
  return 0.5f * (1.0f + std::erf(x * kInvSqrt2)) + x * kInvSqrt2Pi * std::exp(-0.5f * x * x);
}

#if STRATA_SIMD_X86
bool has_avx2_path(ActivationKind kind) {
  return kind == ActivationKind::Relu2 || kind == ActivationKind::Silu || kind == ActivationKind::Swiglu;
}

// y[0..n) = act(x) for relu2 / silu, or silu(gate) * up for swiglu (x = gate, x2 = up).
STRATA_AVX2 void forward_avx2(ActivationKind kind, const float* x, const float* x2, float* y, int64_t n) {
  const __m256 zero = _mm256_setzero_ps();
  for (int64_t i = 0; i < n; i += 8) {
    const int64_t lanes = std::min<int64_t>(8, n - i);
    const __m256 v = avx2::load_n(x + i, lanes);
    __m256 out;
    if (kind == ActivationKind::Relu2) {
      const __m256 r = _mm256_max_ps(v, zero);
      out = _mm256_mul_ps(r, r);
    } else {
      out = _mm256_mul_ps(v, avx2::sigmoid(v));
      if (kind == ActivationKind::Swiglu) {
        out = _mm256_mul_ps(out, avx2::load_n(x2 + i, lanes));
      }
    }
    avx2::store_n(y + i, out, lanes);
  }
}

// dx[0..n) = dy act'(x) for relu2 / silu; for swiglu dx = d gate and dx2 = d up.
STRATA_AVX2 void backward_avx2(ActivationKind kind, const float* x, const float* x2, const float* dy, float* dx,
                               float* dx2, int64_t n) {
  const __m256 zero = _mm256_setzero_ps(), one = _mm256_set1_ps(1.0f), two = _mm256_set1_ps(2.0f);
  for (int64_t i = 0; i < n; i += 8) {
    const int64_t lanes = std::min<int64_t>(8, n - i);
    const __m256 v = avx2::load_n(x + i, lanes), g = avx2::load_n(dy + i, lanes);
    if (kind == ActivationKind::Relu2) {
      avx2::store_n(dx + i, _mm256_mul_ps(g, _mm256_mul_ps(two, _mm256_max_ps(v, zero))), lanes);
      continue;
    }
    const __m256 sg = avx2::sigmoid(v);
    const __m256 grad = _mm256_mul_ps(sg, _mm256_fmadd_ps(v, _mm256_sub_ps(one, sg), one));  // silu'
    if (kind == ActivationKind::Silu) {
      avx2::store_n(dx + i, _mm256_mul_ps(g, grad), lanes);
    } else {
      const __m256 up = avx2::load_n(x2 + i, lanes);
      avx2::store_n(dx + i, _mm256_mul_ps(_mm256_mul_ps(g, up), grad), lanes);
      avx2::store_n(dx2 + i, _mm256_mul_ps(g, _mm256_mul_ps(v, sg)), lanes);
    }
  }
}
#endif

}  // namespace

void CpuBackend::activation_forward(const ActivationFwd& a) {
  const int64_t m = a.y.rows(), f = a.y.cols();
  const float* x = a.x.data;
  float* y = a.y.data;
#if STRATA_SIMD_X86
  if (cpu_simd_avx2() && has_avx2_path(a.kind)) {
    const bool swiglu = a.kind == ActivationKind::Swiglu;
    const int64_t rows_per_chunk = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, f));
    const int64_t chunks = (m + rows_per_chunk - 1) / rows_per_chunk;
#pragma omp parallel for schedule(static) if (m * f > 65536)
    for (int64_t c = 0; c < chunks; ++c) {
      const int64_t r0 = c * rows_per_chunk, r1 = std::min(m, r0 + rows_per_chunk);
      if (!swiglu) {
        forward_avx2(a.kind, x + r0 * f, nullptr, y + r0 * f, (r1 - r0) * f);
        continue;
      }
      for (int64_t i = r0; i < r1; ++i) forward_avx2(a.kind, x + i * 2 * f, x + i * 2 * f + f, y + i * f, f);
    }
    return;
  }
#endif
  if (a.kind == ActivationKind::Swiglu) {
#pragma omp parallel for schedule(static) if (m * f > 65536)
    for (int64_t i = 0; i < m; ++i) {
      const float* gate = x + i * 2 * f;
      const float* up = gate + f;
      for (int64_t j = 0; j < f; ++j) y[i * f + j] = silu(gate[j]) * up[j];
    }
    return;
  }
  const int64_t n = m * f;
  const ActivationKind kind = a.kind;
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) {
    float v = x[i];
    switch (kind) {
      case ActivationKind::Relu2: v = v > 0.0f ? v * v : 0.0f; break;
      case ActivationKind::Gelu: v = gelu(v); break;
      case ActivationKind::Silu: v = silu(v); break;
      case ActivationKind::Softplus: v = softplus(v); break;
      case ActivationKind::Swiglu: break;
    }
    y[i] = v;
  }
}

void CpuBackend::activation_backward(const ActivationBwd& a) {
  const int64_t m = a.dy.rows(), f = a.dy.cols();
  const float* x = a.x.data;
  const float* dy = a.dy.data;
  float* dx = a.dx.data;
#if STRATA_SIMD_X86
  if (cpu_simd_avx2() && has_avx2_path(a.kind)) {
    const bool swiglu = a.kind == ActivationKind::Swiglu;
    const int64_t rows_per_chunk = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, f));
    const int64_t chunks = (m + rows_per_chunk - 1) / rows_per_chunk;
#pragma omp parallel for schedule(static) if (m * f > 65536)
    for (int64_t c = 0; c < chunks; ++c) {
      const int64_t r0 = c * rows_per_chunk, r1 = std::min(m, r0 + rows_per_chunk);
      if (!swiglu) {
        backward_avx2(a.kind, x + r0 * f, nullptr, dy + r0 * f, dx + r0 * f, nullptr, (r1 - r0) * f);
        continue;
      }
      for (int64_t i = r0; i < r1; ++i) {
        backward_avx2(a.kind, x + i * 2 * f, x + i * 2 * f + f, dy + i * f, dx + i * 2 * f, dx + i * 2 * f + f, f);
      }
    }
    return;
  }
#endif
  if (a.kind == ActivationKind::Swiglu) {
#pragma omp parallel for schedule(static) if (m * f > 65536)
    for (int64_t i = 0; i < m; ++i) {
      const float* gate = x + i * 2 * f;
      const float* up = gate + f;
      float* dgate = dx + i * 2 * f;
      float* dup = dgate + f;
      for (int64_t j = 0; j < f; ++j) {
        float g = dy[i * f + j];
        dgate[j] = g * up[j] * silu_grad(gate[j]);
        dup[j] = g * silu(gate[j]);
      }
    }
    return;
  }
  const int64_t n = m * f;
  const ActivationKind kind = a.kind;
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) {
    float v = x[i], d = 0.0f;
    switch (kind) {
      case ActivationKind::Relu2: d = v > 0.0f ? 2.0f * v : 0.0f; break;
      case ActivationKind::Gelu: d = gelu_grad(v); break;
      case ActivationKind::Silu: d = silu_grad(v); break;
      case ActivationKind::Softplus: d = sigmoid(v); break;
      case ActivationKind::Swiglu: break;
    }
    dx[i] = dy[i] * d;
  }
}

}  // namespace strata
