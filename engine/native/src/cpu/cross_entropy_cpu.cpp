// CPU kernels of the fused log-softmax cross-entropy: per row the max, the log-sum-exp (summed in
// double), the loss lse - logit[target]; backward (exp(logit - lse) - onehot) * grad_scale.
// Targets outside the vocabulary (other than ignore_index) raise an error naming the row. Also the
// greedy argmax of decoding (one scan per row).
// Forward and backward have AVX2+FMA paths (simd.h: vector exp, lane sums added in double per
// row); the scalar loops are the reference.
#include <algorithm>
#include <cmath>
#include <limits>

#include "../ops/cross_entropy.h"
#include "cpu_backend.h"
#include "simd.h"

namespace strata {
namespace {
void check_targets(const char* op, const TensorI32& targets, int64_t v, int32_t ignore_index) {
  for (int64_t i = 0; i < targets.numel(); ++i) {
    const int32_t t = targets.data[i];
    STRATA_CHECK(t == ignore_index || (t >= 0 && t < v), op, ": target ", t, " at row ", i,
                 " is outside the vocabulary [0, ", v, ") and is not the ignore index ", ignore_index);
  }
}
#if STRATA_SIMD_X86
// log-sum-exp of one row of v logits.
STRATA_AVX2 float row_lse_avx2(const float* row, int64_t v) {
  __m256 vmax = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  for (int64_t j = 0; j < v; j += 8) {
    const int64_t lanes = std::min<int64_t>(8, v - j);
    __m256 x = avx2::load_n(row + j, lanes);
    if (lanes < 8) x = _mm256_blendv_ps(vmax, x, _mm256_castsi256_ps(avx2::tail_mask(lanes)));
    vmax = _mm256_max_ps(vmax, x);
  }
  const float mx = avx2::hmax(vmax);
  const __m256 shift = _mm256_set1_ps(mx);
  __m256 sum = _mm256_setzero_ps();
  for (int64_t j = 0; j < v; j += 8) {
    const int64_t lanes = std::min<int64_t>(8, v - j);
    __m256 e = avx2::exp(_mm256_sub_ps(avx2::load_n(row + j, lanes), shift));
    if (lanes < 8) e = _mm256_and_ps(e, _mm256_castsi256_ps(avx2::tail_mask(lanes)));
    sum = _mm256_add_ps(sum, e);
  }
  alignas(32) float lanes_sum[8];
  _mm256_store_ps(lanes_sum, sum);
  double total = 0.0;
  for (float x : lanes_sum) total += x;
  return mx + static_cast<float>(std::log(total));
}

// grad[j] = exp(row[j] - lse) * scale
STRATA_AVX2 void row_softmax_grad_avx2(const float* row, float lse, float scale, float* grad, int64_t v) {
  const __m256 vl = _mm256_set1_ps(lse), vs = _mm256_set1_ps(scale);
  for (int64_t j = 0; j < v; j += 8) {
    const int64_t lanes = std::min<int64_t>(8, v - j);
    avx2::store_n(grad + j, _mm256_mul_ps(avx2::exp(_mm256_sub_ps(avx2::load_n(row + j, lanes), vl)), vs), lanes);
  }
}
#endif

}  // namespace

void CpuBackend::cross_entropy_forward(const CrossEntropyFwd& a) {
  const int64_t m = a.logits.rows(), v = a.logits.cols();
  check_targets("cross_entropy_forward", a.targets, v, a.ignore_index);
#if STRATA_SIMD_X86
  if (cpu_simd_avx2()) {
#pragma omp parallel for schedule(static) if (m * v > 65536)
    for (int64_t i = 0; i < m; ++i) {
      const float* row = a.logits.data + i * v;
      const float lse = row_lse_avx2(row, v);
      a.lse.data[i] = lse;
      const int32_t t = a.targets.data[i];
      a.losses.data[i] = t == a.ignore_index ? 0.0f : lse - row[t];
    }
    return;
  }
#endif
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
  const bool avx2_rows = cpu_simd_avx2();
  (void)avx2_rows;  // unused where there is no AVX2 path
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
#if STRATA_SIMD_X86
    if (avx2_rows) {
      row_softmax_grad_avx2(row, lse, a.grad_scale, grad, v);
      grad[t] -= a.grad_scale;
      continue;
    }
#endif
    for (int64_t j = 0; j < v; ++j) grad[j] = std::exp(row[j] - lse) * a.grad_scale;
    grad[t] -= a.grad_scale;
  }
}

void CpuBackend::argmax_rows(const ArgmaxRows& a) {
  const int64_t m = a.logits.size(0), v = a.logits.size(1);
  for (int64_t i = 0; i < m; ++i) {
    const float* row = a.logits.data + i * v;
    int64_t best = 0;
    for (int64_t j = 1; j < v && !std::isnan(row[best]); ++j) {
      if (std::isnan(row[j]) || row[j] > row[best]) best = j;
    }
    a.ids.data[i] = static_cast<int32_t>(best);
  }
}

}  // namespace strata
