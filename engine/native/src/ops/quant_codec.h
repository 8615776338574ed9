// Scalar low-precision number formats: the element and scale codecs every quantizer in quant.h is
// built from. BF16, FP8 E4M3 / E5M2 (OCP 8-bit floating point), FP4 E2M1 (NVFP4 elements) and E8M0
// (MX block scales), with round-to-nearest-even or stochastic rounding, plus the counter-based random
// number generator that drives stochastic rounding.
//
// This file is a readable CPU reference (CUDA kernels are checked against it). It is not tensor
// quantization (block scales, tensor scales, statistics: quant.h) and not the Hadamard transform
// (quant_hadamard.h).
//
// Behaviour for special inputs (tested in engine/native/tests/quant_test.cpp):
// - Zeros: +0 and -0 keep their sign in every format that has a sign bit.
// - Subnormals: FP8 and E2M1 have gradual underflow (E4M3 down to 2^-9, E5M2 to 2^-16, E2M1 to 0.5);
//   smaller magnitudes round to nearest even on the subnormal grid, so anything <= half the smallest
//   subnormal becomes (signed) zero. fp32 subnormal inputs are handled exactly (no flush to zero).
// - Overflow of finite values saturates to the largest finite magnitude (E4M3 448, E5M2 57344, E2M1 6).
//   BF16 follows IEEE round-to-nearest-even instead: values past its range round to Inf.
// - NaN stays NaN (sign kept) in BF16, E4M3, E5M2. E5M2 has three NaN mantissas; they travel in the
//   low bits of the fp32 quiet-NaN payload so decode->encode is the identity on all 256 codes; any
//   other NaN encodes to the canonical 0x7F / 0xFF.
// - Inf stays Inf where the format has it (BF16, E5M2). E4M3 has no Inf code: Inf becomes NaN (a
//   non-finite input never turns into a plausible finite number). E2M1 has neither Inf nor NaN: the
//   scalar encoder saturates +-Inf to +-6 and maps NaN to +0 only because it must return a code; the
//   NVFP4 quantizer never passes them (it marks the whole block NaN through its E4M3 scale).
// - E8M0 scale codes: 0..254 mean 2^(code-127); 255 is NaN.
#pragma once

#include <cstdint>

namespace strata::quant {

/** How a value between two representable neighbours is rounded. */
enum class Rounding : uint8_t {
  NearestEven,  // IEEE default: nearest, ties to the even code
  Stochastic,   // up with probability equal to the distance from the lower neighbour (unbiased)
};

/** The small floating-point element formats. */
enum class ElementFormat : uint8_t { E4M3, E5M2, E2M1 };

/** Layout and range of one minifloat element format. */
struct MinifloatSpec {
  int exponent_bits;
  int mantissa_bits;
  int bias;
  float max_finite;  // largest finite magnitude
  uint8_t max_code;  // its code (sign bit clear)
  bool has_inf;
  bool has_nan;
};

const MinifloatSpec& spec_of(ElementFormat format);
const char* element_format_name(ElementFormat format);

// --- BF16 -----------------------------------------------------------------------------------

uint16_t bf16_encode(float value);
float bf16_decode(uint16_t code);
/** value rounded to the nearest BF16 (ties to even), returned as fp32. */
float bf16_round(float value);
/**
 * out[i] = bf16_round(in[i]) for i < n (in and out may alias). Bit for bit the same as the scalar
 * function: rounding to BF16 is integer arithmetic on the fp32 bits, so the AVX2 path (taken when
 * cpu_simd_avx2() is true, 8 values per step) and the OpenMP split of large arrays change nothing.
 */
void bf16_round_n(const float* in, float* out, int64_t n);

// --- FP8 / FP4 elements ----------------------------------------------------------------------

/**
 * Encodes one value (already scaled) into a code of `format` (8-bit codes; E2M1 in the low 4 bits
 * with its sign in bit 3). `random_bits` is used only by stochastic rounding: a uniform 32-bit
 * number; rounding goes up when random_bits < fraction * 2^32.
 */
uint8_t encode_element(float value, ElementFormat format, Rounding rounding = Rounding::NearestEven,
                       uint32_t random_bits = 0);
/** Decodes a code of `format` (E2M1: only the low 4 bits are read). */
float decode_element(uint8_t code, ElementFormat format);
/** decode(encode(value)): the nearest representable value under the given rounding. */
float round_element(float value, ElementFormat format, Rounding rounding = Rounding::NearestEven,
                    uint32_t random_bits = 0);

/**
 * True when a finite value lies beyond the format's range: nearest-even rounding on the grid extended
 * past the largest binade would exceed max_finite, so saturation changes the result (E4M3: |v| > 464,
 * E5M2: |v| >= 61440, E2M1: |v| >= 7). This is what the statistics count as "clipped".
 */
bool saturates(float value, ElementFormat format);

// --- E8M0 (MX block scales) ------------------------------------------------------------------

inline constexpr int kE8M0Bias = 127;
inline constexpr uint8_t kE8M0NaN = 0xFF;

/** Code of 2^exponent; exponent is clamped to the representable range [-127, 127]. */
uint8_t e8m0_from_exponent(int exponent);
/** 2^(code-127), or NaN for 0xFF. */
float e8m0_decode(uint8_t code);

// --- Counter-based random numbers ------------------------------------------------------------

/**
 * A stateless random 64-bit number for (seed, counter): the SplitMix64 output function applied to
 * seed + (counter + 1) * 0x9E3779B97F4A7C15. The same (seed, counter) always gives the same bits,
 * on every thread and device, so stochastic rounding is reproducible and order-independent.
 */
uint64_t counter_random64(uint64_t seed, uint64_t counter);
/** The high 32 bits of counter_random64. */
uint32_t counter_random32(uint64_t seed, uint64_t counter);

}  // namespace strata::quant
