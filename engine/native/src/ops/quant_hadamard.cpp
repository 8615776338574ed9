// 16-point random Hadamard transform: see quant_hadamard.h. The Sylvester Hadamard product is the
// classic in-place butterfly (4 stages of pairwise sums and differences), done in fp32.
#include "quant_hadamard.h"

#include "quant_codec.h"

namespace strata::quant {
namespace {

/** v <- Hadamard_16 v (unnormalized Sylvester order). */
void walsh_hadamard16(float* v) {
  for (int half = 1; half < kHadamardSize; half *= 2) {
    for (int start = 0; start < kHadamardSize; start += 2 * half) {
      for (int i = start; i < start + half; ++i) {
        const float a = v[i];
        const float b = v[i + half];
        v[i] = a + b;
        v[i + half] = a - b;
      }
    }
  }
}

/** Forward: v <- (1/4) diag(s) Had v. Inverse: v <- (1/4) Had diag(s) v. Scaling by 1/4 is exact. */
void transform_run(float* v, const HadamardSigns& signs, bool inverse) {
  if (inverse) {
    for (int i = 0; i < kHadamardSize; ++i) v[i] *= signs[i];
    walsh_hadamard16(v);
    for (int i = 0; i < kHadamardSize; ++i) v[i] *= 0.25f;
  } else {
    walsh_hadamard16(v);
    for (int i = 0; i < kHadamardSize; ++i) v[i] = v[i] * signs[i] * 0.25f;
  }
}

}  // namespace

HadamardSigns hadamard_signs(uint64_t seed) {
  HadamardSigns signs{};
  for (int i = 0; i < kHadamardSize; ++i) signs[i] = (counter_random64(seed, static_cast<uint64_t>(i)) >> 63) ? -1.0f : 1.0f;
  return signs;
}

void hadamard16_apply(float* data, int64_t rows, int64_t cols, Axis axis, const HadamardSigns& signs, bool inverse) {
  const bool parallel = rows * cols >= (int64_t{1} << 15);  // runs are independent: threads change nothing
  if (axis == Axis::Row) {
#pragma omp parallel for schedule(static) if (parallel)
    for (int64_t r = 0; r < rows; ++r) {
      float* row = data + r * cols;
      for (int64_t c = 0; c + kHadamardSize <= cols; c += kHadamardSize) transform_run(row + c, signs, inverse);
    }
    return;
  }
  const int64_t row_blocks = rows / kHadamardSize;
#pragma omp parallel for schedule(static) if (parallel)
  for (int64_t block = 0; block < row_blocks; ++block) {
    const int64_t r0 = block * kHadamardSize;
    float run[kHadamardSize];
    for (int64_t c = 0; c < cols; ++c) {
      for (int i = 0; i < kHadamardSize; ++i) run[i] = data[(r0 + i) * cols + c];
      transform_run(run, signs, inverse);
      for (int i = 0; i < kHadamardSize; ++i) data[(r0 + i) * cols + c] = run[i];
    }
  }
}

}  // namespace strata::quant
