// Scalar low-precision codecs (BF16, FP8 E4M3/E5M2, FP4 E2M1, E8M0) and the counter-based RNG.
// See quant_codec.h for the stated behaviour on zeros, subnormals, NaN and Inf. Rounding is done in
// exact double-precision arithmetic (every fp32 value and every grid point of these formats is exact
// in double, and scaling by powers of two is exact) and codes are packed arithmetically from the
// rounded grid index, so each step can be checked against the format definitions; decoding reads a
// 256-entry table built from the field definition. BF16 rounding of whole arrays (bf16_round_n, the
// hot path of bf16-emulated training) also has an AVX2 form of the same integer arithmetic.
#include "quant_codec.h"

#include "../cpu/simd.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>

namespace strata::quant {
namespace {

constexpr MinifloatSpec kE4M3{4, 3, 7, 448.0f, 0x7E, false, true};
constexpr MinifloatSpec kE5M2{5, 2, 15, 57344.0f, 0x7B, true, true};
constexpr MinifloatSpec kE2M1{2, 1, 1, 6.0f, 0x7, false, false};

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

/** floor(log2(a)) for a normal double a > 0 (every nonzero fp32 value is one): its exponent field. */
int floor_log2(double a) {
  uint64_t bits;
  std::memcpy(&bits, &a, sizeof bits);
  return static_cast<int>((bits >> 52) & 0x7FF) - 1023;
}

/** 2^k as a double, for -1022 <= k <= 1023. */
double pow2(int k) {
  const uint64_t bits = static_cast<uint64_t>(k + 1023) << 52;
  double value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

/**
 * Code (without sign) of the finite magnitude a >= 0 rounded onto the format's grid, the grid being
 * extended without bound above the largest binade (callers saturate against max_code).
 * At a the grid spacing is ulp = 2^(E - mantissa_bits) with E = max(floor(log2 a), emin), which also
 * covers the subnormal range; n = a / ulp is exact (a power-of-two scaling), so its integer part and
 * fraction are exact, and n is rounded to an integer by the chosen rule. Then
 *   code = ((E + bias) << mantissa_bits) + n - 2^mantissa_bits,
 * which is the usual exponent/mantissa packing for normals (n in [2^m, 2^(m+1))), gives code = n for
 * subnormals (E = emin, E + bias = 1) and carries into the next binade when n reaches 2^(m+1).
 */
uint32_t unbounded_code(double a, const MinifloatSpec& spec, Rounding rounding, uint32_t random_bits) {
  if (a == 0.0) return 0;
  const int min_normal_exponent = 1 - spec.bias;
  const int exponent = std::max(floor_log2(a), min_normal_exponent);
  const double steps = a * pow2(spec.mantissa_bits - exponent);
  const uint64_t lower = static_cast<uint64_t>(steps);  // floor: steps >= 0
  const double fraction = steps - static_cast<double>(lower);
  uint64_t n = lower;
  if (rounding == Rounding::NearestEven) {
    if (fraction > 0.5 || (fraction == 0.5 && (lower & 1u) != 0)) ++n;
  } else {
    // P(up) = ceil(fraction * 2^32) / 2^32: unbiased up to 2^-32.
    if (static_cast<double>(random_bits) < fraction * 4294967296.0) ++n;
  }
  return static_cast<uint32_t>((static_cast<uint64_t>(exponent + spec.bias) << spec.mantissa_bits) + n -
                               (uint64_t{1} << spec.mantissa_bits));
}

/** The value of a code from its fields (the definition; decode_element reads a table built from it). */
float decode_fields(uint8_t code, const MinifloatSpec& spec) {
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
    magnitude = static_cast<double>(mantissa) * pow2(1 - spec.bias - spec.mantissa_bits);
  } else {
    magnitude = (1.0 + static_cast<double>(mantissa) * pow2(-spec.mantissa_bits)) * pow2(exponent_field - spec.bias);
  }
  const float result = static_cast<float>(magnitude);
  return negative ? -result : result;
}

using DecodeTable = std::array<float, 256>;

DecodeTable build_decode_table(const MinifloatSpec& spec) {
  DecodeTable table{};
  const int codes = 1 << (sign_bit_position(spec) + 1);
  for (int code = 0; code < 256; ++code) table[code] = decode_fields(static_cast<uint8_t>(code % codes), spec);
  return table;
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

namespace {

void bf16_round_scalar(const float* in, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = bf16_round(in[i]);
}

#if STRATA_SIMD_X86
/** bf16_encode + bf16_decode on 8 lanes (avx2::bf16_round: the same integer steps, NaN lanes by mask). */
STRATA_AVX2 void bf16_round_avx2(const float* in, float* out, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, avx2::bf16_round(_mm256_loadu_ps(in + i)));
  bf16_round_scalar(in + i, out + i, n - i);
}
#endif

void bf16_round_serial(const float* in, float* out, int64_t n) {
#if STRATA_SIMD_X86
  if (cpu_simd_avx2()) {
    bf16_round_avx2(in, out, n);
    return;
  }
#endif
  bf16_round_scalar(in, out, n);
}

}  // namespace

void bf16_round_n(const float* in, float* out, int64_t n) {
  constexpr int64_t kChunk = int64_t{1} << 14;  // below two chunks a thread team costs more than it saves
  if (n < 2 * kChunk) {
    bf16_round_serial(in, out, n);
    return;
  }
  const int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t begin = c * kChunk;
    bf16_round_serial(in + begin, out + begin, std::min(kChunk, n - begin));
  }
}

// --- FP8 / FP4 elements ----------------------------------------------------------------------

uint8_t encode_element(float value, ElementFormat format, Rounding rounding, uint32_t random_bits) {
  const MinifloatSpec& spec = spec_of(format);
  const bool negative = std::signbit(value);
  const uint8_t sign = negative ? static_cast<uint8_t>(1u << sign_bit_position(spec)) : 0;
  if (std::isnan(value)) return spec.has_nan ? nan_code(spec, negative, bits_of(value)) : 0;
  if (std::isinf(value)) {
    if (spec.has_inf) return sign | static_cast<uint8_t>(all_ones_exponent(spec) << spec.mantissa_bits);
    if (spec.has_nan) return nan_code(spec, negative, 0);
    return sign | spec.max_code;
  }
  const uint32_t code = unbounded_code(std::fabs(static_cast<double>(value)), spec, rounding, random_bits);
  return sign | static_cast<uint8_t>(std::min<uint32_t>(code, spec.max_code));
}

float decode_element(uint8_t code, ElementFormat format) {
  static const DecodeTable e4m3 = build_decode_table(kE4M3);
  static const DecodeTable e5m2 = build_decode_table(kE5M2);
  static const DecodeTable e2m1 = build_decode_table(kE2M1);
  switch (format) {
    case ElementFormat::E4M3: return e4m3[code];
    case ElementFormat::E5M2: return e5m2[code];
    case ElementFormat::E2M1: return e2m1[code];
  }
  return e4m3[code];
}

float round_element(float value, ElementFormat format, Rounding rounding, uint32_t random_bits) {
  return decode_element(encode_element(value, format, rounding, random_bits), format);
}

bool saturates(float value, ElementFormat format) {
  if (!std::isfinite(value)) return false;
  const MinifloatSpec& spec = spec_of(format);
  return unbounded_code(std::fabs(static_cast<double>(value)), spec, Rounding::NearestEven, 0) > spec.max_code;
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
