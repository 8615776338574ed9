// Element and block rules of the GPU quantize-dequantize (cuda/quant_cuda.cu), written once for host
// and device so the same code is checked against the CPU reference without a GPU
// (tests/cuda_quant_rules_test.cu) and runs in the kernels. Element rounding follows the definition
// in ops/quant_codec.h: on the grid of spacing 2^(E - mantissa_bits), E = max(floor(log2 |v|),
// 1 - bias), the magnitude is rounded to an integer step count (nearest-even, or up with probability
// equal to the fraction using counter-based random bits) and saturated to the largest finite value.
// Block scales follow ops/quant.h's formulas in the same precision (fp32 scales, double for the
// MXFP8 exponent rule). Compiled by nvcc only. Not a public header: included by quant_cuda.cu and
// that test only.
#pragma once

#include <cfloat>
#include <cmath>
#include <cstdint>
#include <limits>

#include <cuda_bf16.h>

#include "../ops/quant.h"

namespace strata::cuda_quant {

constexpr float kQuietNaN = std::numeric_limits<float>::quiet_NaN();

struct ElementSpec {
  int mantissa_bits;
  int bias;
  float max_finite;
  bool has_inf;  // Inf stays Inf (E5M2); otherwise Inf becomes NaN when the format has NaN
  bool has_nan;
};

inline ElementSpec element_spec(quant::ElementFormat format) {
  switch (format) {
    case quant::ElementFormat::E4M3: return {3, 7, 448.0f, false, true};
    case quant::ElementFormat::E5M2: return {2, 15, 57344.0f, true, true};
    case quant::ElementFormat::E2M1: return {1, 1, 6.0f, false, false};
  }
  return {3, 7, 448.0f, false, true};
}

// SplitMix64 finalizer over seed + (counter + 1) * golden ratio: the engine's counter-based random
// stream (quant_codec.h counter_random64); the high 32 bits drive stochastic rounding.
__host__ __device__ inline uint32_t random32(uint64_t seed, uint64_t counter) {
  uint64_t z = seed + (counter + 1) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return static_cast<uint32_t>(z >> 32);
}

// The element value nearest to v (or stochastically rounded), saturated; specials as in the codec.
__host__ __device__ inline float round_element(float v, ElementSpec spec, bool stochastic, uint32_t random_bits) {
  if (isnan(v)) return spec.has_nan ? v : 0.0f;
  if (isinf(v)) {
    if (spec.has_inf) return v;
    if (spec.has_nan) return kQuietNaN;
    return copysignf(spec.max_finite, v);
  }
  const double a = fabs(static_cast<double>(v));
  if (a == 0.0) return v;  // keeps the sign of zero
  const int exponent = ilogb(a) > 1 - spec.bias ? ilogb(a) : 1 - spec.bias;
  const double steps = ldexp(a, spec.mantissa_bits - exponent);
  const double lower = floor(steps);
  const double fraction = steps - lower;
  double n = lower;
  if (!stochastic) {
    if (fraction > 0.5 || (fraction == 0.5 && fmod(lower, 2.0) != 0.0)) n += 1.0;
  } else if (static_cast<double>(random_bits) < fraction * 4294967296.0) {
    n += 1.0;
  }
  const double value = fmin(ldexp(n, exponent - spec.mantissa_bits), static_cast<double>(spec.max_finite));
  return copysignf(static_cast<float>(value), v);
}

struct QuantLaunch {
  int64_t rows, cols;
  int64_t block_rows, block_cols;  // one scaling block
  int64_t grid_cols;               // blocks per block-row
  ElementSpec element;
  bool stochastic;
  uint64_t seed;
};

// MXFP8 block b (block-grid row-major): exponent rule in double like the reference.
__host__ __device__ inline void mxfp8_block(const float* in, float* out, const QuantLaunch& q, bool round_up_rule,
                                            int64_t b) {
  const int64_t r0 = (b / q.grid_cols) * q.block_rows, c0 = (b % q.grid_cols) * q.block_cols;
  const int64_t r1 = r0 + q.block_rows < q.rows ? r0 + q.block_rows : q.rows;
  const int64_t c1 = c0 + q.block_cols < q.cols ? c0 + q.block_cols : q.cols;
  float amax = 0.0f;
  for (int64_t r = r0; r < r1; ++r)
    for (int64_t c = c0; c < c1; ++c) {
      const float v = in[r * q.cols + c];
      if (isfinite(v)) amax = fmaxf(amax, fabsf(v));
    }
  int exponent = 0;
  if (amax != 0.0f) {
    const double element_max = q.element.max_finite;
    if (!round_up_rule) {
      exponent = ilogb(static_cast<double>(amax)) - ilogb(element_max);
    } else {
      const double ratio = static_cast<double>(amax) / element_max;
      exponent = ilogb(ratio);
      if (ratio > ldexp(1.0, exponent)) ++exponent;
    }
  }
  exponent = exponent < -127 ? -127 : (exponent > 127 ? 127 : exponent);
  const float factor = ldexpf(1.0f, -exponent), power = ldexpf(1.0f, exponent);
  for (int64_t r = r0; r < r1; ++r)
    for (int64_t c = c0; c < c1; ++c) {
      const int64_t i = r * q.cols + c;
      const uint32_t bits = q.stochastic ? random32(q.seed, static_cast<uint64_t>(i)) : 0u;
      out[i] = round_element(in[i] * factor, q.element, q.stochastic, bits) * power;
    }
}

// NVFP4 block b given the tensor's finite amax: E4M3 block scale, E2M1 elements.
__host__ __device__ inline void nvfp4_block(const float* in, float* out, const QuantLaunch& q, float tensor_amax,
                                            int64_t b) {
  float global_scale = tensor_amax > 0.0f ? 6.0f * 448.0f / tensor_amax : 1.0f;
  if (!isfinite(global_scale)) global_scale = FLT_MAX;
  const ElementSpec e4m3{3, 7, 448.0f, false, true};
  const int64_t r0 = (b / q.grid_cols) * q.block_rows, c0 = (b % q.grid_cols) * q.block_cols;
  const int64_t r1 = r0 + q.block_rows < q.rows ? r0 + q.block_rows : q.rows;
  const int64_t c1 = c0 + q.block_cols < q.cols ? c0 + q.block_cols : q.cols;
  float amax = 0.0f;
  bool nonfinite = false;
  for (int64_t r = r0; r < r1; ++r)
    for (int64_t c = c0; c < c1; ++c) {
      const float v = in[r * q.cols + c];
      if (isfinite(v)) amax = fmaxf(amax, fabsf(v));
      else nonfinite = true;
    }
  const float stored = round_element(amax / 6.0f * global_scale, e4m3, false, 0u);
  const float d = stored / global_scale;
  for (int64_t r = r0; r < r1; ++r)
    for (int64_t c = c0; c < c1; ++c) {
      const int64_t i = r * q.cols + c;
      const float x = in[i];
      if (nonfinite) {
        out[i] = kQuietNaN;
      } else if (d == 0.0f) {
        out[i] = signbit(x) ? -0.0f : 0.0f;
      } else {
        const uint32_t bits = q.stochastic ? random32(q.seed, static_cast<uint64_t>(i)) : 0u;
        out[i] = round_element(x / d, q.element, q.stochastic, bits) * d;
      }
    }
}

// bf16 round-to-nearest-even (NaN passes through).
__host__ __device__ inline float bf16_element(float v) {
  return isnan(v) ? v : __bfloat162float(__float2bfloat16_rn(v));
}

// Per-tensor fp8 element i: round(x * s) / s, s = max_finite / amax (1 when amax = 0, FLT_MAX if inf).
__host__ __device__ inline float fp8_tensor_element(float x, const QuantLaunch& q, float tensor_amax, int64_t i) {
  float scale = tensor_amax > 0.0f ? q.element.max_finite / tensor_amax : 1.0f;
  if (!isfinite(scale)) scale = FLT_MAX;
  const uint32_t bits = q.stochastic ? random32(q.seed, static_cast<uint64_t>(i)) : 0u;
  return round_element(x * scale, q.element, q.stochastic, bits) / scale;
}

}  // namespace strata::cuda_quant
