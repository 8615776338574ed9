// Scalar low-precision codecs (BF16, FP8 E4M3/E5M2, FP4 E2M1, E8M0) and the counter-based RNG.
// See quant_codec.h for the stated behaviour on zeros, subnormals, NaN and Inf. This file is a
// readable reference: rounding is done on exact double-precision arithmetic (every fp32 value and
// every grid point of these formats is exact in double, and scaling by powers of two is exact), not
// with bit tricks, so each step can be checked against the format definitions.
#include "quant_codec.h"

#include <cmath>
#include <cstring>
#include <limits>

namespace strata::quant {
namespace {

constexpr MinifloatSpec kE4M3{4, 3, 7, 448.0f, false, true};
constexpr MinifloatSpec kE5M2{5, 2, 15, 57344.0f, true, true};
constexpr MinifloatSpec kE2M1{2, 1, 1, 6.0f, false, false};

constexpr uint32_t kFp32QuietNaN = 0x7FC00000u;
constexpr uint32_t kFp32SignBit = 0x80000000u;

uint32_t bits_of(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  return bits;
}

float float_of(uint32_t bits) {
  float value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

int sign_bit_position(const MinifloatSpec& spec) { return spec.exponent_bits + spec.mantissa_bits; }

int all_ones_exponent(const MinifloatSpec& spec) { return (1 << spec.exponent_bits) - 1; }

/** floor(log2(a)) for a > 0, exact (frexp returns a = m * 2^e with m in [0.5, 1)). */
int floor_log2(double a) {
  int e = 0;
  std::frexp(a, &e);
  return e - 1;
}

/**
 * Rounds a finite magnitude a >= 0 onto the format's grid (extended without bound above the largest
 * binade). The grid spacing (ulp) at a is 2^(max(floor(log2 a), emin) - mantissa_bits), which also
 * covers the subnormal range; a / ulp is exact, so its integer and fractional parts are exact.
 */
double round_magnitude_unbounded(double a, const MinifloatSpec& spec, Rounding rounding, uint32_t random_bits) {
  if (a == 0.0) return 0.0;
  const int min_normal_exponent = 1 - spec.bias;
  int exponent = floor_log2(a);
  if (exponent < min_normal_exponent) exponent = min_normal_exponent;
  const double ulp = std::ldexp(1.0, exponent - spec.mantissa_bits);
  const double steps = a / ulp;
  const double lower = std::floor(steps);
  const double fraction = steps - lower;
  double chosen = lower;
  if (rounding == Rounding::NearestEven) {
    if (fraction > 0.5 || (fraction == 0.5 && std::fmod(lower, 2.0) != 0.0)) chosen = lower + 1.0;
  } else {
    // P(up) = ceil(fraction * 2^32) / 2^32: unbiased up to 2^-32.
    if (static_cast<double>(random_bits) < fraction * 4294967296.0) chosen = lower + 1.0;
  }
  return chosen * ulp;
}

/** round_magnitude_unbounded, saturated to max_finite. */
double round_magnitude(double a, const MinifloatSpec& spec, Rounding rounding, uint32_t random_bits) {
  const double rounded = round_magnitude_unbounded(a, spec, rounding, random_bits);
  return rounded > spec.max_finite ? static_cast<double>(spec.max_finite) : rounded;
}

/** Code (without sign) of a magnitude that lies on the grid and is <= max_finite. */
uint8_t magnitude_code(double magnitude, const MinifloatSpec& spec) {
  if (magnitude == 0.0) return 0;
  const int min_normal_exponent = 1 - spec.bias;
  const int exponent = floor_log2(magnitude);
  if (exponent < min_normal_exponent) {
    const double mantissa = magnitude / std::ldexp(1.0, min_normal_exponent - spec.mantissa_bits);
    return static_cast<uint8_t>(mantissa);
  }
  const double mantissa = (magnitude / std::ldexp(1.0, exponent) - 1.0) * std::ldexp(1.0, spec.mantissa_bits);
  const int exponent_field = exponent + spec.bias;
  return static_cast<uint8_t>((exponent_field << spec.mantissa_bits) | static_cast<int>(mantissa));
}

uint8_t nan_code(const MinifloatSpec& spec, bool negative, uint32_t nan_bits) {
  const uint8_t sign = negative ? static_cast<uint8_t>(1u << sign_bit_position(spec)) : 0;
  const uint8_t exponent_field = static_cast<uint8_t>(all_ones_exponent(spec) << spec.mantissa_bits);
  const uint8_t mantissa_mask = static_cast<uint8_t>((1u << spec.mantissa_bits) - 1);
  if (!spec.has_inf) return sign | exponent_field | mantissa_mask;  // E4M3: S.1111.111 only
  uint8_t payload = static_cast<uint8_t>(nan_bits & mantissa_mask);
  if (payload == 0) payload = mantissa_mask;  // canonical E5M2 NaN S.11111.11
  return sign | exponent_field | payload;
}

}  // namespace

const MinifloatSpec& spec_of(ElementFormat format) {
  switch (format) {
    case ElementFormat::E4M3: return kE4M3;
    case ElementFormat::E5M2: return kE5M2;
    case ElementFormat::E2M1: return kE2M1;
  }
  return kE4M3;
}

const char* element_format_name(ElementFormat format) {
  switch (format) {
    case ElementFormat::E4M3: return "e4m3";
    case ElementFormat::E5M2: return "e5m2";
    case ElementFormat::E2M1: return "e2m1";
  }
  return "?";
}

// --- BF16 -----------------------------------------------------------------------------------

uint16_t bf16_encode(float value) {
  const uint32_t bits = bits_of(value);
  if (std::isnan(value)) {
    uint16_t high = static_cast<uint16_t>(bits >> 16);
    if ((high & 0x007F) == 0) high |= 0x0040;  // payload only in the dropped bits: make it a quiet NaN
    return high;
  }
  const uint32_t rounding_bias = 0x7FFFu + ((bits >> 16) & 1u);  // ties to even
  return static_cast<uint16_t>((bits + rounding_bias) >> 16);
}

float bf16_decode(uint16_t code) { return float_of(static_cast<uint32_t>(code) << 16); }

float bf16_round(float value) { return bf16_decode(bf16_encode(value)); }

// --- FP8 / FP4 elements ----------------------------------------------------------------------

uint8_t encode_element(float value, ElementFormat format, Rounding rounding, uint32_t random_bits) {
  const MinifloatSpec& spec = spec_of(format);
  const bool negative = std::signbit(value);
  const uint8_t sign = negative ? static_cast<uint8_t>(1u << sign_bit_position(spec)) : 0;
  if (std::isnan(value)) return spec.has_nan ? nan_code(spec, negative, bits_of(value)) : 0;
  if (std::isinf(value)) {
    if (spec.has_inf) return sign | static_cast<uint8_t>(all_ones_exponent(spec) << spec.mantissa_bits);
    if (spec.has_nan) return nan_code(spec, negative, 0);
    return sign | magnitude_code(spec.max_finite, spec);
  }
  const double magnitude = round_magnitude(std::fabs(static_cast<double>(value)), spec, rounding, random_bits);
  return sign | magnitude_code(magnitude, spec);
}

float decode_element(uint8_t code, ElementFormat format) {
  const MinifloatSpec& spec = spec_of(format);
  const int sign_position = sign_bit_position(spec);
  const bool negative = ((code >> sign_position) & 1u) != 0;
  const int mantissa_mask = (1 << spec.mantissa_bits) - 1;
  const int mantissa = code & mantissa_mask;
  const int exponent_field = (code >> spec.mantissa_bits) & all_ones_exponent(spec);
  if (exponent_field == all_ones_exponent(spec)) {
    if (spec.has_inf) {  // E5M2: IEEE-style specials
      if (mantissa == 0) return negative ? -std::numeric_limits<float>::infinity() : std::numeric_limits<float>::infinity();
      return float_of(kFp32QuietNaN | static_cast<uint32_t>(mantissa) | (negative ? kFp32SignBit : 0u));
    }
    if (spec.has_nan && mantissa == mantissa_mask) {  // E4M3: only S.1111.111 is NaN
      return float_of(kFp32QuietNaN | (negative ? kFp32SignBit : 0u));
    }
  }
  double magnitude;
  if (exponent_field == 0) {
    magnitude = std::ldexp(static_cast<double>(mantissa), 1 - spec.bias - spec.mantissa_bits);
  } else {
    magnitude = std::ldexp(1.0 + std::ldexp(static_cast<double>(mantissa), -spec.mantissa_bits), exponent_field - spec.bias);
  }
  const float result = static_cast<float>(magnitude);
  return negative ? -result : result;
}

float round_element(float value, ElementFormat format, Rounding rounding, uint32_t random_bits) {
  return decode_element(encode_element(value, format, rounding, random_bits), format);
}

bool saturates(float value, ElementFormat format) {
  if (!std::isfinite(value)) return false;
  const MinifloatSpec& spec = spec_of(format);
  return round_magnitude_unbounded(std::fabs(static_cast<double>(value)), spec, Rounding::NearestEven, 0) > spec.max_finite;
}

// --- E8M0 ------------------------------------------------------------------------------------

uint8_t e8m0_from_exponent(int exponent) {
  if (exponent < -kE8M0Bias) exponent = -kE8M0Bias;
  if (exponent > kE8M0Bias) exponent = kE8M0Bias;
  return static_cast<uint8_t>(exponent + kE8M0Bias);
}

float e8m0_decode(uint8_t code) {
  if (code == kE8M0NaN) return std::numeric_limits<float>::quiet_NaN();
  return static_cast<float>(std::ldexp(1.0, static_cast<int>(code) - kE8M0Bias));
}

// --- Counter-based random numbers ------------------------------------------------------------

uint64_t counter_random64(uint64_t seed, uint64_t counter) {
  uint64_t z = seed + (counter + 1) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint32_t counter_random32(uint64_t seed, uint64_t counter) {
  return static_cast<uint32_t>(counter_random64(seed, counter) >> 32);
}

}  // namespace strata::quant
