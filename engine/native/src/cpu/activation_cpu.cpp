// CPU kernels of the pointwise activations and their derivatives:
//   relu2' = 2 max(x,0);  gelu' = Phi(x) + x phi(x);  silu' = s (1 + x (1 - s)), s = sigmoid(x);
//   softplus' = sigmoid(x);  swiglu: d gate = dy * up * silu'(gate), d up = dy * silu(gate).
#include <cmath>

#include "../ops/activation.h"
#include "cpu_backend.h"
#include "cpu_math.h"

namespace strata {

using namespace cpu_math;
namespace {

constexpr float kInvSqrt2 = 0.70710678118654752f;
constexpr float kInvSqrt2Pi = 0.39894228040143268f;
inline float gelu(float x) { return 0.5f * x * (1.0f + std::erf(x * kInvSqrt2)); }
inline float gelu_grad(float x) {
  return 0.5f * (1.0f + std::erf(x * kInvSqrt2)) + x * kInvSqrt2Pi * std::exp(-0.5f * x * x);
}

}  // namespace

void CpuBackend::activation_forward(const ActivationFwd& a) {
  const int64_t m = a.y.rows(), f = a.y.cols();
  const float* x = a.x.data;
  float* y = a.y.data;
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
