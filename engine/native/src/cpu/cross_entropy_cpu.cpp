// CPU kernels of the fused log-softmax cross-entropy: per row the max, the log-sum-exp (summed in
// double), the loss lse - logit[target]; backward (exp(logit - lse) - onehot) * grad_scale.
// Targets outside the vocabulary (other than ignore_index) raise an error naming the row.
#include <cmath>
#include <limits>

#include "../ops/cross_entropy.h"
#include "cpu_backend.h"

namespace strata {
namespace {
void check_targets(const char* op, const TensorI32& targets, int64_t v, int32_t ignore_index) {
  for (int64_t i = 0; i < targets.numel(); ++i) {
    const int32_t t = targets.data[i];
    STRATA_CHECK(t == ignore_index || (t >= 0 && t < v), op, ": target ", t, " at row ", i,
                 " is outside the vocabulary [0, ", v, ") and is not the ignore index ", ignore_index);
  }
}
}  // namespace

void CpuBackend::cross_entropy_forward(const CrossEntropyFwd& a) {
  const int64_t m = a.logits.rows(), v = a.logits.cols();
  check_targets("cross_entropy_forward", a.targets, v, a.ignore_index);
#pragma omp parallel for schedule(static) if (m * v > 65536)
  for (int64_t i = 0; i < m; ++i) {
    const float* row = a.logits.data + i * v;
    float mx = -std::numeric_limits<float>::infinity();
    for (int64_t j = 0; j < v; ++j) mx = std::max(mx, row[j]);
    double sum = 0.0;
    for (int64_t j = 0; j < v; ++j) sum += std::exp(static_cast<double>(row[j] - mx));
    const float lse = mx + static_cast<float>(std::log(sum));
    a.lse.data[i] = lse;
    const int32_t t = a.targets.data[i];
    a.losses.data[i] = t == a.ignore_index ? 0.0f : lse - row[t];
  }
}

void CpuBackend::cross_entropy_backward(const CrossEntropyBwd& a) {
  const int64_t m = a.logits.rows(), v = a.logits.cols();
  check_targets("cross_entropy_backward", a.targets, v, a.ignore_index);
#pragma omp parallel for schedule(static) if (m * v > 65536)
  for (int64_t i = 0; i < m; ++i) {
    const float* row = a.logits.data + i * v;
    float* grad = a.dlogits.data + i * v;
    const int32_t t = a.targets.data[i];
    if (t == a.ignore_index) {
      for (int64_t j = 0; j < v; ++j) grad[j] = 0.0f;
      continue;
    }
    const float lse = a.lse.data[i];
    for (int64_t j = 0; j < v; ++j) grad[j] = std::exp(row[j] - lse) * a.grad_scale;
    grad[t] -= a.grad_scale;
  }
}

}  // namespace strata
