// CTest executable for the low-precision quantizers (engine/native/src/ops/quant*.h): exhaustive FP8
// and BF16 code round trips, nearest-even checks against a brute-force search over every code, the
// E2M1 grid, E8M0 scales, FP8 tensor scaling, MXFP8 (OCP vs round-up rule), NVFP4 (1x16, 16x16 2D
// weight tiles, block-scale edge cases, NaN/Inf blocks), the 16-point random Hadamard transform,
// stochastic rounding (unbiased in expectation; fixed seeds, stated tolerances) and the inspection
// statistics. Every test states its tolerance; nothing depends on timing.
//
// bf16_round_n (the vectorized, threaded array form) is checked bit for bit against the scalar codec,
// and every quantizer gives the same bits with 1 and 3 threads.
//
// Not here: the TS mirror's equality with these quantizers (engine/spec/precision-formats.test.ts
// over tests/fixtures/quant-vectors.json, produced by quant_vectors.cpp).
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "cpu/simd.h"
#include "ops/quant.h"

#ifdef _OPENMP
#include <omp.h>
#endif

using namespace strata::quant;

namespace {

int g_failures = 0;

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      ++g_failures;                                                            \
    }                                                                          \
  } while (0)

#define CHECK_NEAR(a, b, tol)                                                                          \
  do {                                                                                                 \
    const double a_ = (a), b_ = (b);                                                                   \
    if (!(std::fabs(a_ - b_) <= (tol))) {                                                              \
      std::fprintf(stderr, "%s:%d: CHECK_NEAR failed: %s = %.9g, %s = %.9g, tol %g\n", __FILE__, __LINE__, \
                   #a, a_, #b, b_, static_cast<double>(tol));                                          \
      ++g_failures;                                                                                    \
    }                                                                                                  \
  } while (0)

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

uint32_t bits_of(float v) {
  uint32_t b;
  std::memcpy(&b, &v, 4);
  return b;
}

float float_of(uint32_t b) {
  float v;
  std::memcpy(&v, &b, 4);
  return v;
}

/** Same float bits, or both NaN. */
bool same_value(float a, float b) { return (std::isnan(a) && std::isnan(b)) || bits_of(a) == bits_of(b); }

/** Deterministic normal-ish test data: sum of 4 uniforms, centred, times `scale`. */
std::vector<float> test_tensor(int64_t n, uint64_t seed, float scale) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    double s = 0;
    for (int k = 0; k < 4; ++k) s += static_cast<double>(counter_random32(seed, static_cast<uint64_t>(4 * i + k))) / 4294967296.0;
    v[i] = static_cast<float>((s - 2.0) * 1.7320508 * scale);
  }
  return v;
}

// ---------------------------------------------------------------------------------------------

void test_bf16_codes_and_rounding() {
  for (uint32_t code = 0; code < 65536; ++code) {
    CHECK(bf16_encode(bf16_decode(static_cast<uint16_t>(code))) == code);
  }
  CHECK(bf16_round(1.0f + std::ldexp(1.0f, -8)) == 1.0f);  // tie -> even (mantissa 0)
  CHECK(bf16_round(1.0f + 3 * std::ldexp(1.0f, -8)) == 1.0f + std::ldexp(1.0f, -6));  // tie -> even (mantissa 2)
  CHECK(bf16_round(1.0f + std::ldexp(1.0f, -8) + std::ldexp(1.0f, -20)) == 1.0f + std::ldexp(1.0f, -7));
  CHECK(std::isinf(bf16_round(std::numeric_limits<float>::max())));  // IEEE: overflow rounds to Inf
  CHECK(bf16_round(-kInf) == -kInf);
  CHECK(std::isnan(bf16_round(kNaN)));
  CHECK(std::isnan(bf16_decode(bf16_encode(float_of(0x7F800001u)))));  // NaN payload only in dropped bits
  CHECK(std::signbit(bf16_round(-0.0f)));
}

// bf16_round_n (AVX2 lanes, OpenMP chunks) against the scalar bf16_round, bit for bit (NaN payloads
// included), on every high half with the low halves that decide rounding, at every SIMD level.
void test_bf16_array_rounding_matches_scalar() {
  const uint32_t lows[] = {0x0000u, 0x0001u, 0x7FFFu, 0x8000u, 0x8001u, 0xFFFFu, 0x1234u};
  std::vector<float> in;
  for (uint32_t high = 0; high < 65536; ++high) {
    for (uint32_t low : lows) in.push_back(float_of((high << 16) | low));
  }
  in.push_back(1.5f);  // odd length: a tail after the last full vector
  std::vector<uint32_t> want(in.size());
  for (size_t i = 0; i < in.size(); ++i) want[i] = bits_of(bf16_round(in[i]));
  const std::string level = strata::cpu_simd_level();
  for (const std::string& simd : strata::cpu_simd_levels()) {
    strata::set_cpu_simd_level(simd);
    std::vector<float> out(in.size()), in_place = in;
    bf16_round_n(in.data(), out.data(), static_cast<int64_t>(in.size()));
    bf16_round_n(in_place.data(), in_place.data(), static_cast<int64_t>(in_place.size()));
    int64_t wrong = 0;
    for (size_t i = 0; i < in.size(); ++i) wrong += bits_of(out[i]) != want[i] || bits_of(in_place[i]) != want[i];
    if (wrong) std::fprintf(stderr, "  simd %s: %lld values differ from bf16_round\n", simd.c_str(), static_cast<long long>(wrong));
    CHECK(wrong == 0);
    for (int64_t n : {0, 1, 7, 8, 9, 23}) {  // short arrays take the serial path
      std::vector<float> small(in.begin() + 1000, in.begin() + 1000 + n);
      bf16_round_n(small.data(), small.data(), n);
      for (int64_t i = 0; i < n; ++i) CHECK(bits_of(small[i]) == want[1000 + i]);
    }
  }
  strata::set_cpu_simd_level(level);
}

// Large tensors are quantized by several threads (blocks are independent): every format, layout,
// rounding and the Hadamard transform give the same bits with 1 and with 3 threads, for the fake-quant
// values, the stored codes and scales, and the statistics; NaN and Inf inside the tensor included.
void test_threads_do_not_change_results() {
#ifdef _OPENMP
  const int64_t rows = 272, cols = 208;  // 56576 elements: above the threading threshold; partial MX blocks
  std::vector<float> x = test_tensor(rows * cols, 77, 3.0f);
  x[1234] = kNaN;
  x[40000] = kInf;
  std::vector<QuantConfig> configs;
  for (Format f : {Format::Bf16, Format::Fp8E4M3, Format::Fp8E5M2}) {
    QuantConfig c;
    c.format = f;
    configs.push_back(c);
  }
  for (BlockLayout layout : {BlockLayout::AlongRow, BlockLayout::AlongColumn}) {
    for (MxScaleRule rule : {MxScaleRule::RoundUp, MxScaleRule::Ocp}) {
      QuantConfig c;
      c.format = Format::Mxfp8;
      c.layout = layout;
      c.mx_scale_rule = rule;
      c.mx_element = rule == MxScaleRule::Ocp ? ElementFormat::E5M2 : ElementFormat::E4M3;
      configs.push_back(c);
    }
    QuantConfig n;
    n.format = Format::Nvfp4;
    n.layout = layout;
    configs.push_back(n);
    n.rounding = Rounding::Stochastic;
    n.seed = 5;
    n.hadamard = true;
    configs.push_back(n);
  }
  QuantConfig tiles;
  tiles.format = Format::Nvfp4;
  tiles.layout = BlockLayout::Tile2d;
  configs.push_back(tiles);
  QuantConfig fp8_sr;
  fp8_sr.format = Format::Fp8E4M3;
  fp8_sr.rounding = Rounding::Stochastic;
  fp8_sr.seed = 9;
  configs.push_back(fp8_sr);
  const int saved = omp_get_max_threads();
  for (const QuantConfig& c : configs) {
    std::vector<float> one(x.size()), three(x.size());
    QuantStats s1, s3;
    omp_set_num_threads(1);
    fake_quantize(x.data(), one.data(), rows, cols, c, &s1);
    const bool encoded = c.format != Format::Bf16;
    Encoded e1 = encoded ? quantize(x.data(), rows, cols, c) : Encoded{};
    omp_set_num_threads(3);
    fake_quantize(x.data(), three.data(), rows, cols, c, &s3);
    Encoded e3 = encoded ? quantize(x.data(), rows, cols, c) : Encoded{};
    std::vector<float> fast(x.size());
    fake_quantize(x.data(), fast.data(), rows, cols, c);  // the path without statistics
    bool same = std::memcmp(one.data(), three.data(), one.size() * 4) == 0 &&
                std::memcmp(one.data(), fast.data(), one.size() * 4) == 0 && e1.elements == e3.elements &&
                e1.block_scales == e3.block_scales && bits_of(e1.tensor_scale) == bits_of(e3.tensor_scale) &&
                s1.amax == s3.amax && s1.clipped == s3.clipped && s1.underflow == s3.underflow;
    if (!same) std::fprintf(stderr, "  %s layout %d: results depend on the thread count\n", format_name(c.format), static_cast<int>(c.layout));
    CHECK(same);
  }
  omp_set_num_threads(saved);
#endif
}

void test_fp8_codes_round_trip() {
  for (ElementFormat format : {ElementFormat::E4M3, ElementFormat::E5M2}) {
    for (int code = 0; code < 256; ++code) {
      const float value = decode_element(static_cast<uint8_t>(code), format);
      const uint8_t again = encode_element(value, format);
      if (again != code) {
        std::fprintf(stderr, "%s code 0x%02X decodes to %g, re-encodes to 0x%02X\n", element_format_name(format), code,
                     value, again);
        ++g_failures;
      }
    }
  }
  // Known values from the OCP 8-bit spec.
  CHECK(decode_element(0x7E, ElementFormat::E4M3) == 448.0f);
  CHECK(std::isnan(decode_element(0x7F, ElementFormat::E4M3)));
  CHECK(std::isnan(decode_element(0xFF, ElementFormat::E4M3)));
  CHECK(decode_element(0x01, ElementFormat::E4M3) == std::ldexp(1.0f, -9));
  CHECK(decode_element(0x08, ElementFormat::E4M3) == std::ldexp(1.0f, -6));  // min normal
  CHECK(decode_element(0x7B, ElementFormat::E5M2) == 57344.0f);
  CHECK(decode_element(0x7C, ElementFormat::E5M2) == kInf);
  CHECK(decode_element(0xFC, ElementFormat::E5M2) == -kInf);
  CHECK(std::isnan(decode_element(0x7D, ElementFormat::E5M2)));
  CHECK(decode_element(0x01, ElementFormat::E5M2) == std::ldexp(1.0f, -16));
  CHECK(decode_element(0x04, ElementFormat::E5M2) == std::ldexp(1.0f, -14));
  int e4m3_nans = 0, e5m2_nans = 0, e5m2_infs = 0;
  for (int code = 0; code < 256; ++code) {
    e4m3_nans += std::isnan(decode_element(static_cast<uint8_t>(code), ElementFormat::E4M3));
    e5m2_nans += std::isnan(decode_element(static_cast<uint8_t>(code), ElementFormat::E5M2));
    e5m2_infs += std::isinf(decode_element(static_cast<uint8_t>(code), ElementFormat::E5M2));
  }
  CHECK(e4m3_nans == 2);
  CHECK(e5m2_nans == 6);
  CHECK(e5m2_infs == 2);
}

/** Brute force: the finite code nearest to v (ties to the even code), saturating. */
uint8_t nearest_code_brute_force(float v, ElementFormat format, int codes) {
  const double target = static_cast<double>(v);
  int best = -1;
  double best_distance = 0;
  for (int code = 0; code < codes; ++code) {
    const float c = decode_element(static_cast<uint8_t>(code), format);
    if (!std::isfinite(c) || (std::signbit(c) != std::signbit(v))) continue;
    const double distance = std::fabs(static_cast<double>(c) - target);
    if (best < 0 || distance < best_distance || (distance == best_distance && (code & 1) == 0)) {
      best = code;
      best_distance = distance;
    }
  }
  return static_cast<uint8_t>(best);
}

void test_nearest_even_against_brute_force() {
  struct Case {
    ElementFormat format;
    int codes;
    int min_exp;
    int max_exp;
  };
  for (const Case& c : {Case{ElementFormat::E4M3, 256, -12, 10}, Case{ElementFormat::E5M2, 256, -19, 17},
                        Case{ElementFormat::E2M1, 16, -3, 4}}) {
    int mismatches = 0;
    // Random values over the whole range (including saturation and underflow)...
    for (uint64_t i = 0; i < 20000; ++i) {
      const uint64_t r = counter_random64(77, i);
      const int exponent = c.min_exp + static_cast<int>(r % static_cast<uint64_t>(c.max_exp - c.min_exp + 1));
      const float mantissa = 1.0f + static_cast<float>((r >> 20) & 0x7FFFFF) / 8388608.0f;
      const float v = ((r >> 63) ? -1.0f : 1.0f) * std::ldexp(mantissa, exponent);
      if (encode_element(v, c.format) != nearest_code_brute_force(v, c.format, c.codes)) ++mismatches;
    }
    // ...and every exact midpoint between neighbouring positive codes (ties).
    std::vector<float> grid;
    for (int code = 0; code < c.codes / 2; ++code) {
      const float g = decode_element(static_cast<uint8_t>(code), c.format);
      if (std::isfinite(g)) grid.push_back(g);
    }
    for (size_t k = 0; k + 1 < grid.size(); ++k) {
      const float mid = static_cast<float>((static_cast<double>(grid[k]) + grid[k + 1]) / 2);
      if (encode_element(mid, c.format) != nearest_code_brute_force(mid, c.format, c.codes)) ++mismatches;
      if (encode_element(-mid, c.format) != nearest_code_brute_force(-mid, c.format, c.codes)) ++mismatches;
    }
    if (mismatches) std::fprintf(stderr, "%s: %d mismatches vs brute force\n", element_format_name(c.format), mismatches);
    CHECK(mismatches == 0);
  }
}

void test_fp8_special_inputs() {
  // Saturation of finite overflow.
  CHECK(round_element(500.0f, ElementFormat::E4M3) == 448.0f);
  CHECK(round_element(-1e30f, ElementFormat::E4M3) == -448.0f);
  CHECK(round_element(60000.0f, ElementFormat::E5M2) == 57344.0f);
  CHECK(round_element(std::numeric_limits<float>::max(), ElementFormat::E5M2) == 57344.0f);
  // Inf: E5M2 keeps it, E4M3 (no Inf code) gives NaN with the sign kept.
  CHECK(encode_element(kInf, ElementFormat::E5M2) == 0x7C);
  CHECK(encode_element(-kInf, ElementFormat::E5M2) == 0xFC);
  CHECK(encode_element(kInf, ElementFormat::E4M3) == 0x7F);
  CHECK(encode_element(-kInf, ElementFormat::E4M3) == 0xFF);
  // NaN stays NaN.
  CHECK(encode_element(kNaN, ElementFormat::E4M3) == 0x7F);
  CHECK(encode_element(-kNaN, ElementFormat::E4M3) == 0xFF);
  CHECK(encode_element(kNaN, ElementFormat::E5M2) == 0x7F);
  // Signed zeros.
  CHECK(encode_element(-0.0f, ElementFormat::E4M3) == 0x80);
  CHECK(encode_element(0.0f, ElementFormat::E5M2) == 0x00);
  // Subnormals: half the smallest subnormal ties to zero, just above rounds up, 3 halves ties to even (2).
  const float e4m3_min = std::ldexp(1.0f, -9);
  CHECK(round_element(e4m3_min / 2, ElementFormat::E4M3) == 0.0f);
  CHECK(round_element(std::nextafter(e4m3_min / 2, 1.0f), ElementFormat::E4M3) == e4m3_min);
  CHECK(round_element(1.5f * e4m3_min, ElementFormat::E4M3) == 2 * e4m3_min);
  CHECK(std::signbit(round_element(-e4m3_min / 4, ElementFormat::E4M3)));
  CHECK(round_element(1e-45f, ElementFormat::E5M2) == 0.0f);  // fp32 subnormal input
  CHECK(round_element(std::ldexp(1.0f, -16), ElementFormat::E5M2) == std::ldexp(1.0f, -16));
}

void test_e2m1_grid() {
  const float grid[8] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};
  for (int code = 0; code < 16; ++code) {
    const float value = decode_element(static_cast<uint8_t>(code), ElementFormat::E2M1);
    const float expected = (code & 8) ? -grid[code & 7] : grid[code & 7];
    CHECK(same_value(value, expected));
    CHECK(encode_element(value, ElementFormat::E2M1) == code);
  }
  // Nearest even on the non-uniform grid: <= 0.25 flushes to zero.
  CHECK(round_element(0.25f, ElementFormat::E2M1) == 0.0f);
  CHECK(round_element(0.2500001f, ElementFormat::E2M1) == 0.5f);
  CHECK(round_element(0.75f, ElementFormat::E2M1) == 1.0f);
  CHECK(round_element(1.25f, ElementFormat::E2M1) == 1.0f);
  CHECK(round_element(2.5f, ElementFormat::E2M1) == 2.0f);
  CHECK(round_element(3.5f, ElementFormat::E2M1) == 4.0f);
  CHECK(round_element(5.0f, ElementFormat::E2M1) == 4.0f);
  CHECK(round_element(5.01f, ElementFormat::E2M1) == 6.0f);
  CHECK(round_element(100.0f, ElementFormat::E2M1) == 6.0f);
  CHECK(round_element(-kInf, ElementFormat::E2M1) == -6.0f);
  CHECK(encode_element(kNaN, ElementFormat::E2M1) == 0);
}

void test_e8m0() {
  CHECK(e8m0_decode(127) == 1.0f);
  CHECK(e8m0_decode(0) == std::ldexp(1.0f, -127));
  CHECK(e8m0_decode(254) == std::ldexp(1.0f, 127));
  CHECK(std::isnan(e8m0_decode(kE8M0NaN)));
  CHECK(e8m0_from_exponent(-3) == 124);
  CHECK(e8m0_from_exponent(-500) == 0);
  CHECK(e8m0_from_exponent(500) == 254);
}

// ---------------------------------------------------------------------------------------------

void test_fp8_tensor_scaling() {
  std::vector<float> x = test_tensor(24 * 40, 5, 0.3f);
  x[17] = -3.5f;  // amax
  std::vector<float> q(x.size());
  for (Format format : {Format::Fp8E4M3, Format::Fp8E5M2}) {
    QuantConfig config;
    config.format = format;
    QuantStats stats;
    const Encoded encoded = quantize(x.data(), 24, 40, config, &stats);
    const float fp8_max = format == Format::Fp8E4M3 ? 448.0f : 57344.0f;
    CHECK(encoded.tensor_scale == fp8_max / 3.5f);
    CHECK(decode_element(encoded.elements[17], encoded.element) == -fp8_max);
    fake_quantize(x.data(), q.data(), 24, 40, config);
    CHECK_NEAR(q[17], -3.5, 3.5e-6);
    CHECK(stats.amax == 3.5);
    CHECK(stats.clipped == 0);
    CHECK(stats.scale_blocks == 1);
    CHECK_NEAR(stats.scale_min, 3.5 / fp8_max, 1e-12);
    // Relative error of a 3 (E4M3) or 2 (E5M2) mantissa-bit format: below half an ulp, 2^-4 / 2^-3.
    CHECK(stats.rel_err() < (format == Format::Fp8E4M3 ? 0.0625 : 0.125));
    CHECK_NEAR(stats.snr_db(), -20 * std::log10(stats.rel_err()), 1e-9);
  }
  // All-zero tensor: scale 1, zeros out, no error.
  std::vector<float> zeros(64, 0.0f), out(64, 1.0f);
  QuantConfig config;
  config.format = Format::Fp8E4M3;
  QuantStats stats;
  CHECK(quantize(zeros.data(), 8, 8, config).tensor_scale == 1.0f);
  fake_quantize(zeros.data(), out.data(), 8, 8, config, &stats);
  CHECK(out[0] == 0.0f && out[63] == 0.0f);
  CHECK(stats.amax == 0.0 && stats.rel_err() == 0.0 && stats.scale_blocks == 0 && stats.histogram_zeros == 64);
  // NaN and Inf: ignored by amax; NaN stays NaN; Inf is NaN in E4M3, Inf in E5M2.
  std::vector<float> special = {1.0f, kNaN, -kInf, 0.5f};
  std::vector<float> special_out(4);
  fake_quantize(special.data(), special_out.data(), 1, 4, config, &stats);
  CHECK(special_out[0] == 1.0f && special_out[3] == 0.5f);
  CHECK(std::isnan(special_out[1]) && std::isnan(special_out[2]));
  CHECK(stats.nonfinite == 2 && stats.amax == 1.0);
  config.format = Format::Fp8E5M2;
  fake_quantize(special.data(), special_out.data(), 1, 4, config);
  CHECK(special_out[2] == -kInf && std::isnan(special_out[1]) && special_out[0] == 1.0f);
}

void test_mxfp8_block_edge_cases() {
  QuantConfig config;
  config.format = Format::Mxfp8;
  std::vector<float> x(96, 0.0f);  // block 0 all zero; block 1 one outlier; block 2 fp32 subnormals
  x[32] = 1.0e4f;
  for (int i = 33; i < 64; ++i) x[i] = 1.0e-3f * static_cast<float>(i - 32);
  for (int i = 64; i < 96; ++i) x[i] = 1.0e-40f * static_cast<float>(i - 63);
  for (MxScaleRule rule : {MxScaleRule::RoundUp, MxScaleRule::Ocp}) {
    config.mx_scale_rule = rule;
    QuantStats stats;
    const Encoded encoded = quantize(x.data(), 1, 96, config, &stats);
    std::vector<float> q(96);
    dequantize(encoded, q.data());
    CHECK(encoded.block_scales.size() == 3);
    CHECK(encoded.block_scales[0] == 127);  // all-zero block: 2^0
    for (int i = 0; i < 32; ++i) CHECK(q[i] == 0.0f);
    // Outlier 1e4: 2^13 <= 1e4 < 2^14, mantissa 1.22 <= 1.75, so both rules pick e = 13 - 8 = 5.
    CHECK(encoded.block_scales[1] == 127 + 5);
    CHECK_NEAR(q[32], 1.0e4, 1.0e4 * 0.0625);
    // With scale 2^5 the E4M3 subnormal step is 2^-4: 1e-3..3.1e-2 sit below half of it except the top ones.
    int flushed = 0;
    for (int i = 33; i < 64; ++i) flushed += (q[i] == 0.0f);
    CHECK(flushed == 31);  // 31e-3 / 32 < 2^-10 (half of 2^-9): every one flushes
    CHECK(stats.underflow >= 31);
    // fp32 subnormal block: the exponent clamps at -127, values still quantize with E4M3 precision.
    CHECK(encoded.block_scales[2] == 0);
    for (int i = 64; i < 96; ++i) CHECK_NEAR(q[i], x[i], std::fabs(x[i]) * 0.0625 + 1e-45);
  }
  // NaN / Inf inside a block: elementwise (E4M3 NaN; E5M2 keeps Inf); the rest of the block unaffected.
  std::vector<float> special(32, 0.25f);
  special[3] = kNaN;
  special[9] = kInf;
  std::vector<float> out(32);
  config.mx_scale_rule = MxScaleRule::RoundUp;
  fake_quantize(special.data(), out.data(), 1, 32, config);
  CHECK(std::isnan(out[3]) && std::isnan(out[9]) && out[0] == 0.25f && out[31] == 0.25f);
  config.mx_element = ElementFormat::E5M2;
  fake_quantize(special.data(), out.data(), 1, 32, config);
  CHECK(std::isnan(out[3]) && out[9] == kInf && out[0] == 0.25f);
}

void test_mxfp8_ocp_vs_round_up() {
  // The rules agree exactly when the block amax's mantissa m (amax = m 2^k, 1 <= m < 2) is <= 1.75
  // (the largest E4M3 / E5M2 mantissa); above it OCP saturates the top values and round-up does not.
  for (ElementFormat element : {ElementFormat::E4M3, ElementFormat::E5M2}) {
    for (int step = 0; step < 64; ++step) {
      const float mantissa = 1.0f + static_cast<float>(step) / 64.0f;
      const float amax = std::ldexp(mantissa, 3);
      std::vector<float> block(32);
      for (int i = 0; i < 32; ++i) block[i] = amax * static_cast<float>(i + 1) / 32.0f;
      QuantConfig config;
      config.format = Format::Mxfp8;
      config.mx_element = element;
      config.mx_scale_rule = MxScaleRule::Ocp;
      QuantStats ocp_stats, up_stats;
      const Encoded ocp = quantize(block.data(), 1, 32, config, &ocp_stats);
      config.mx_scale_rule = MxScaleRule::RoundUp;
      const Encoded up = quantize(block.data(), 1, 32, config, &up_stats);
      const bool above = mantissa > 1.75f;
      CHECK((ocp.block_scales[0] != up.block_scales[0]) == above);
      if (above) CHECK(up.block_scales[0] == ocp.block_scales[0] + 1);
      // OCP saturates where rounding would leave the range: E4M3 past 464 = 1.8125 * 2^8, E5M2 from
      // 61440 = 1.875 * 2^15 (ties go up there, the largest mantissa being odd).
      const bool clips = element == ElementFormat::E4M3 ? mantissa > 1.8125f : mantissa >= 1.875f;
      CHECK((ocp_stats.clipped > 0) == clips);
      CHECK(up_stats.clipped == 0);
    }
  }
}

// ---------------------------------------------------------------------------------------------

void test_nvfp4_formula_and_edge_cases() {
  QuantConfig config;
  config.format = Format::Nvfp4;
  // Block 0: amax 6 (the tensor amax) and 15 values of 0.2; block 1: all zero; block 2: amax 1.5.
  std::vector<float> x(48, 0.0f);
  x[0] = 6.0f;
  for (int i = 1; i < 16; ++i) x[i] = (i % 2 ? 0.2f : -0.2f);
  for (int i = 32; i < 48; ++i) x[i] = 1.5f * static_cast<float>(i - 31) / 16.0f;
  QuantStats stats;
  const Encoded encoded = quantize(x.data(), 1, 48, config, &stats);
  CHECK(encoded.tensor_scale == 448.0f);                                   // s_enc = 6 * 448 / 6
  CHECK(decode_element(encoded.block_scales[0], ElementFormat::E4M3) == 448.0f);  // e4m3(1 * 448)
  CHECK(encoded.block_scales[1] == 0);                                      // all-zero block
  CHECK(decode_element(encoded.block_scales[2], ElementFormat::E4M3) == 112.0f);  // e4m3(0.25 * 448)
  std::vector<float> q(48);
  dequantize(encoded, q.data());
  CHECK(q[0] == 6.0f);
  for (int i = 1; i < 16; ++i) CHECK(q[i] == 0.0f);  // |0.2 / 1| <= 0.25: flush to zero
  CHECK(std::signbit(q[2]));                         // signed zero kept
  CHECK(q[47] == 1.5f);                              // 1.5 / 0.25 = 6
  CHECK(q[39] == 0.75f);                             // 0.75 / 0.25 = 3
  CHECK(stats.underflow == 15);
  CHECK(stats.nonzero == 32);
  CHECK(stats.clipped == 0);
  CHECK(stats.scale_blocks == 2);
  CHECK(stats.scale_min == 0.25 && stats.scale_max == 1.0);
  CHECK(stats.log2_histogram[2 - kHistogramMinExponent] == 1);  // 6 = 1.5 * 2^2
  int64_t histogram_total = 0;
  for (int64_t count : stats.log2_histogram) histogram_total += count;
  CHECK(histogram_total == stats.nonzero);
  CHECK(stats.histogram_zeros == 16);

  // A block whose amax is tiny next to the tensor amax: its E4M3 scale underflows to 0, the block to zeros.
  std::vector<float> y(32, 1e-7f);
  y[0] = 1000.0f;
  for (int i = 16; i < 32; ++i) y[i] = (i % 2 ? 1e-6f : -1e-6f);
  QuantStats tiny_stats;
  const Encoded tiny = quantize(y.data(), 1, 32, config, &tiny_stats);
  CHECK(tiny.block_scales[1] == 0);
  CHECK(tiny_stats.zero_scale_blocks == 1);
  CHECK(tiny_stats.scale_min == 0.0);
  std::vector<float> ty(32);
  dequantize(tiny, ty.data());
  for (int i = 16; i < 32; ++i) CHECK(ty[i] == 0.0f && std::signbit(ty[i]) == std::signbit(y[i]));

  // Scale rounding: a normal E4M3 scale is within 1/16 of s_b, so amax_b / d <= 6.4 rounds to 6 (not
  // clipped); a subnormal E4M3 scale is coarse: s_b = 1.49 * 2^-9 is stored as 2^-9, amax_b / d = 8.94
  // lies beyond the E2M1 range and saturates to 6 (clipped).
  std::vector<float> z(48, 0.0f);
  z[0] = 448.0f * 6.0f;                                // tensor amax: s_enc = 1
  z[16] = 6.0f * 17.0f;                                // s_b = 17 -> e4m3 16 -> 102 / 16 = 6.375 -> 6
  z[32] = 6.0f * 1.49f * std::ldexp(1.0f, -9);         // -> 8.94 -> 6
  QuantStats clip_stats;
  std::vector<float> zq(48);
  fake_quantize(z.data(), zq.data(), 1, 48, config, &clip_stats);
  CHECK(zq[16] == 96.0f);
  CHECK(zq[32] == 6.0f * std::ldexp(1.0f, -9));
  CHECK(clip_stats.clipped == 1);
  CHECK(saturates(7.0f, ElementFormat::E2M1) && !saturates(6.99f, ElementFormat::E2M1));
  CHECK(saturates(464.5f, ElementFormat::E4M3) && !saturates(464.0f, ElementFormat::E4M3));
  CHECK(saturates(61440.0f, ElementFormat::E5M2) && !saturates(61439.0f, ElementFormat::E5M2));
  CHECK(!saturates(kInf, ElementFormat::E4M3));

  // NaN or Inf in a block: the whole block is NaN (E4M3 NaN scale); other blocks are untouched.
  std::vector<float> special = test_tensor(64, 9, 1.0f);
  special[20] = kNaN;
  special[40] = -kInf;
  std::vector<float> clean = special;
  clean[20] = 0.0f;
  clean[40] = 0.0f;
  QuantStats special_stats;
  const Encoded marked = quantize(special.data(), 1, 64, config, &special_stats);
  CHECK(marked.block_scales[1] == 0x7F && marked.block_scales[2] == 0x7F);
  std::vector<float> sq(64), cq(64);
  dequantize(marked, sq.data());
  fake_quantize(clean.data(), cq.data(), 1, 64, config);
  for (int i = 16; i < 48; ++i) CHECK(std::isnan(sq[i]));
  for (int i : {0, 15, 48, 63}) CHECK(sq[i] == cq[i]);  // same tensor amax: finite values only
  CHECK(special_stats.nonfinite == 2);
}

void test_nvfp4_2d_weights_transpose_alike() {
  for (auto [rows, cols] : {std::pair<int64_t, int64_t>{48, 64}, {40, 56}}) {
    std::vector<float> w = test_tensor(rows * cols, 21, 0.05f);
    w[5 * cols + 7] = 0.9f;  // an outlier
    std::vector<float> wt(w.size());
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) wt[c * rows + r] = w[r * cols + c];
    QuantConfig config;
    config.format = Format::Nvfp4;
    config.layout = BlockLayout::Tile2d;
    const Encoded a = quantize(w.data(), rows, cols, config);
    const Encoded b = quantize(wt.data(), cols, rows, config);
    CHECK(a.scale_rows == b.scale_cols && a.scale_cols == b.scale_rows);
    int scale_mismatch = 0, code_mismatch = 0, value_mismatch = 0;
    for (int64_t i = 0; i < a.scale_rows; ++i)
      for (int64_t j = 0; j < a.scale_cols; ++j)
        scale_mismatch += a.block_scales[i * a.scale_cols + j] != b.block_scales[j * b.scale_cols + i];
    std::vector<float> qa(w.size()), qb(w.size());
    dequantize(a, qa.data());
    dequantize(b, qb.data());
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t c = 0; c < cols; ++c) {
        code_mismatch += a.elements[r * cols + c] != b.elements[c * rows + r];
        value_mismatch += !same_value(qa[r * cols + c], qb[c * rows + r]);
      }
    }
    CHECK(scale_mismatch == 0 && code_mismatch == 0 && value_mismatch == 0);
    // The 1x16 layout does not have this property (so the check above can fail).
    config.layout = BlockLayout::AlongRow;
    std::vector<float> ra(w.size()), rb(w.size());
    fake_quantize(w.data(), ra.data(), rows, cols, config);
    fake_quantize(wt.data(), rb.data(), cols, rows, config);
    int row_layout_mismatch = 0;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) row_layout_mismatch += !same_value(ra[r * cols + c], rb[c * rows + r]);
    CHECK(row_layout_mismatch > 0);
  }
}

// ---------------------------------------------------------------------------------------------

void test_hadamard_orthogonal_and_invertible() {
  const HadamardSigns signs = hadamard_signs();
  int negatives = 0;
  for (float s : signs) {
    CHECK(s == 1.0f || s == -1.0f);
    negatives += s < 0;
  }
  CHECK(negatives > 0 && negatives < 16);
  CHECK(hadamard_signs() == signs);  // one fixed vector
  // Columns of H from the unit vectors; H^T H = I to fp32 rounding (entries are exactly +-1/4).
  float h[16][16];
  for (int j = 0; j < 16; ++j) {
    float e[16] = {};
    e[j] = 1.0f;
    hadamard16_apply(e, 1, 16, Axis::Row, signs);
    for (int i = 0; i < 16; ++i) {
      h[i][j] = e[i];
      CHECK(std::fabs(e[i]) == 0.25f);
    }
  }
  for (int a = 0; a < 16; ++a) {
    for (int b = 0; b < 16; ++b) {
      double dot = 0;
      for (int i = 0; i < 16; ++i) dot += static_cast<double>(h[i][a]) * h[i][b];
      CHECK_NEAR(dot, a == b ? 1.0 : 0.0, 1e-12);
    }
  }
  // Inverse recovers the input (tolerance: a few fp32 ulps of the row norm); a 37-wide row keeps its tail.
  std::vector<float> x = test_tensor(8 * 37, 3, 2.0f);
  std::vector<float> y = x;
  hadamard16_apply(y.data(), 8, 37, Axis::Row, signs);
  for (int r = 0; r < 8; ++r)
    for (int c = 32; c < 37; ++c) CHECK(y[r * 37 + c] == x[r * 37 + c]);
  hadamard16_apply(y.data(), 8, 37, Axis::Row, signs, /*inverse=*/true);
  for (size_t i = 0; i < x.size(); ++i) CHECK_NEAR(y[i], x[i], 1e-5);
  // Column axis equals the row axis on the transpose; and (H dy)^T (H x) = dy^T x along the token axis.
  const int tokens = 32, n = 6, k = 5;
  std::vector<float> dy = test_tensor(tokens * n, 11, 1.0f), xs = test_tensor(tokens * k, 12, 1.0f);
  std::vector<float> hdy = dy, hx = xs;
  hadamard16_apply(hdy.data(), tokens, n, Axis::Column, signs);
  hadamard16_apply(hx.data(), tokens, k, Axis::Column, signs);
  std::vector<float> dyt(dy.size());
  for (int t = 0; t < tokens; ++t)
    for (int j = 0; j < n; ++j) dyt[j * tokens + t] = dy[t * n + j];
  hadamard16_apply(dyt.data(), n, tokens, Axis::Row, signs);
  for (int t = 0; t < tokens; ++t)
    for (int j = 0; j < n; ++j) CHECK(hdy[t * n + j] == dyt[j * tokens + t]);
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < k; ++j) {
      double plain = 0, transformed = 0;
      for (int t = 0; t < tokens; ++t) {
        plain += static_cast<double>(dy[t * n + i]) * xs[t * k + j];
        transformed += static_cast<double>(hdy[t * n + i]) * hx[t * k + j];
      }
      CHECK_NEAR(transformed, plain, 1e-5);
    }
  }
}

void test_nvfp4_hadamard_fake_quant() {
  // fake_quantize with the transform returns H^T Q(H x): check against the pieces, and that spreading a
  // lone spike over its group of 16 keeps the small values of that group from flushing to zero.
  const int tokens = 64, width = 8;
  std::vector<float> x = test_tensor(tokens * width, 31, 0.01f);
  x[3 * width + 2] = 4.0f;
  QuantConfig config;
  config.format = Format::Nvfp4;
  config.layout = BlockLayout::AlongColumn;
  config.hadamard = true;
  std::vector<float> fake(x.size());
  QuantStats with_stats;
  fake_quantize(x.data(), fake.data(), tokens, width, config, &with_stats);
  std::vector<float> manual = x;
  const HadamardSigns signs = hadamard_signs(config.hadamard_seed);
  hadamard16_apply(manual.data(), tokens, width, Axis::Column, signs);
  QuantConfig plain = config;
  plain.hadamard = false;
  fake_quantize(manual.data(), manual.data(), tokens, width, plain);
  hadamard16_apply(manual.data(), tokens, width, Axis::Column, signs, /*inverse=*/true);
  for (size_t i = 0; i < x.size(); ++i) CHECK(same_value(fake[i], manual[i]));
  std::vector<float> dq(x.size());
  dequantize(quantize(x.data(), tokens, width, config), dq.data());
  for (size_t i = 0; i < x.size(); ++i) CHECK(same_value(fake[i], dq[i]));
  QuantStats without_stats;
  fake_quantize(x.data(), manual.data(), tokens, width, plain, &without_stats);
  CHECK(with_stats.underflow_share() < without_stats.underflow_share());
}

// ---------------------------------------------------------------------------------------------

void test_stochastic_rounding_unbiased() {
  // Mean of N stochastic roundings of v: standard deviation of one rounding is ulp * sqrt(p (1 - p))
  // <= ulp / 2, so of the mean <= ulp / (2 sqrt(N)); tolerance 5 of those (fixed seed: deterministic).
  const int n = 200000;
  struct Case {
    float value;
    ElementFormat format;
    float ulp;
  };
  for (const Case& c : {Case{0.3f, ElementFormat::E2M1, 0.5f}, Case{-2.7f, ElementFormat::E2M1, 1.0f},
                        Case{5.2f, ElementFormat::E2M1, 2.0f}, Case{0.1f, ElementFormat::E4M3, 1.0f / 128},
                        Case{1000.0f, ElementFormat::E5M2, 256.0f}}) {
    double sum = 0;
    for (int i = 0; i < n; ++i) sum += round_element(c.value, c.format, Rounding::Stochastic, counter_random32(42, i));
    const double tolerance = 5 * c.ulp / (2 * std::sqrt(static_cast<double>(n)));
    CHECK_NEAR(sum / n, c.value, tolerance);
    // Nearest even is biased for the same value (so this test can fail).
    CHECK(std::fabs(round_element(c.value, c.format) - c.value) > tolerance);
  }
  // Tensor level, NVFP4 gradients: the block scales do not depend on the seed, so averaging over seeds
  // estimates E[Q(x)] = x for every unclipped element. 400 seeds, per-element tolerance 5 sigma of the mean.
  const int rows = 4, cols = 32, seeds = 400;
  std::vector<float> g = test_tensor(rows * cols, 8, 1e-3f);
  std::vector<double> mean(g.size(), 0.0);
  std::vector<float> q(g.size());
  QuantConfig config;
  config.format = Format::Nvfp4;
  config.rounding = Rounding::Stochastic;
  for (int s = 0; s < seeds; ++s) {
    config.seed = 1000 + s;
    fake_quantize(g.data(), q.data(), rows, cols, config);
    for (size_t i = 0; i < g.size(); ++i) mean[i] += q[i] / seeds;
  }
  const Encoded encoded = quantize(g.data(), rows, cols, config);
  int outside = 0;
  for (int64_t i = 0; i < rows * cols; ++i) {
    const float d = decode_element(encoded.block_scales[i / 16], ElementFormat::E4M3) / encoded.tensor_scale;
    const double ulp = std::fabs(g[i] / d) < 2 ? 0.5 * d : (std::fabs(g[i] / d) < 4 ? d : 2 * d);
    if (std::fabs(g[i] / d) > 6) continue;  // clipped: biased by design
    if (std::fabs(mean[i] - g[i]) > 5 * ulp / (2 * std::sqrt(static_cast<double>(seeds)))) ++outside;
  }
  CHECK(outside == 0);
  // Deterministic: the same seed gives the same result; another seed differs.
  std::vector<float> again(g.size()), other(g.size());
  config.seed = 7;
  fake_quantize(g.data(), q.data(), rows, cols, config);
  fake_quantize(g.data(), again.data(), rows, cols, config);
  config.seed = 8;
  fake_quantize(g.data(), other.data(), rows, cols, config);
  CHECK(std::memcmp(q.data(), again.data(), q.size() * 4) == 0);
  CHECK(std::memcmp(q.data(), other.data(), q.size() * 4) != 0);
}

// ---------------------------------------------------------------------------------------------

void test_fake_quant_matches_encoded_and_aliasing() {
  const int64_t rows = 33, cols = 70;  // partial blocks on both axes
  std::vector<float> x = test_tensor(rows * cols, 99, 0.7f);
  std::vector<QuantConfig> configs;
  for (Format f : {Format::Fp8E4M3, Format::Fp8E5M2, Format::Mxfp8, Format::Nvfp4}) {
    QuantConfig c;
    c.format = f;
    configs.push_back(c);
  }
  QuantConfig c = configs[2];
  c.layout = BlockLayout::AlongColumn;
  c.mx_scale_rule = MxScaleRule::Ocp;
  configs.push_back(c);
  c = configs[3];
  c.layout = BlockLayout::Tile2d;
  configs.push_back(c);
  c.layout = BlockLayout::AlongColumn;
  c.rounding = Rounding::Stochastic;
  c.seed = 5;
  c.hadamard = true;
  configs.push_back(c);
  for (const QuantConfig& config : configs) {
    std::vector<float> fake(x.size()), decoded(x.size());
    QuantStats fake_stats, encoded_stats;
    fake_quantize(x.data(), fake.data(), rows, cols, config, &fake_stats);
    dequantize(quantize(x.data(), rows, cols, config, &encoded_stats), decoded.data());
    int mismatches = 0;
    for (size_t i = 0; i < x.size(); ++i) mismatches += !same_value(fake[i], decoded[i]);
    CHECK(mismatches == 0);
    CHECK(fake_stats.error_energy == encoded_stats.error_energy);
    std::vector<float> in_place = x;
    QuantStats in_place_stats;
    fake_quantize(in_place.data(), in_place.data(), rows, cols, config, &in_place_stats);
    CHECK(std::memcmp(in_place.data(), fake.data(), x.size() * 4) == 0);
    CHECK(in_place_stats.error_energy == fake_stats.error_energy);
    CHECK(fake_stats.rel_err() > 0 && fake_stats.rel_err() < 0.3);
  }
  // bf16 and fp32 through fake_quantize; bf16 overflow counts as clipped.
  std::vector<float> big = {1.0f, std::numeric_limits<float>::max(), 1e-3f, 0.0f};
  std::vector<float> out(4);
  QuantConfig bf16;
  QuantStats stats;
  fake_quantize(big.data(), out.data(), 1, 4, bf16, &stats);
  CHECK(std::isinf(out[1]) && stats.clipped == 1 && stats.scale_blocks == 0);
  QuantConfig fp32;
  fp32.format = Format::Fp32;
  fake_quantize(big.data(), out.data(), 1, 4, fp32, &stats);
  CHECK(std::memcmp(out.data(), big.data(), 16) == 0 && stats.error_energy == 0 && std::isinf(stats.snr_db()));
}

void test_invalid_configs() {
  std::vector<float> x(32, 1.0f), y(32);
  const auto throws = [&](QuantConfig config) {
    try {
      fake_quantize(x.data(), y.data(), 1, 32, config);
    } catch (const std::invalid_argument&) {
      return true;
    }
    return false;
  };
  QuantConfig c;
  c.format = Format::Mxfp8;
  c.layout = BlockLayout::Tile2d;
  CHECK(throws(c));
  c = QuantConfig{};
  c.format = Format::Fp8E4M3;
  c.hadamard = true;
  CHECK(throws(c));
  c = QuantConfig{};
  c.rounding = Rounding::Stochastic;  // bf16
  CHECK(throws(c));
  c = QuantConfig{};
  c.format = Format::Bf16;
  bool quantize_threw = false;
  try {
    quantize(x.data(), 1, 32, c);
  } catch (const std::invalid_argument&) {
    quantize_threw = true;
  }
  CHECK(quantize_threw);
  CHECK(parse_format("nvfp4") == Format::Nvfp4);
  CHECK(!parse_format("fp4").has_value());
}

}  // namespace

int main() {
  const std::pair<const char*, std::function<void()>> tests[] = {
      {"bf16 codes and rounding", test_bf16_codes_and_rounding},
      {"bf16 array rounding == scalar", test_bf16_array_rounding_matches_scalar},
      {"threads do not change results", test_threads_do_not_change_results},
      {"fp8 codes round trip", test_fp8_codes_round_trip},
      {"nearest even vs brute force", test_nearest_even_against_brute_force},
      {"fp8 special inputs", test_fp8_special_inputs},
      {"e2m1 grid", test_e2m1_grid},
      {"e8m0", test_e8m0},
      {"fp8 tensor scaling", test_fp8_tensor_scaling},
      {"mxfp8 block edge cases", test_mxfp8_block_edge_cases},
      {"mxfp8 ocp vs round-up", test_mxfp8_ocp_vs_round_up},
      {"nvfp4 formula and edge cases", test_nvfp4_formula_and_edge_cases},
      {"nvfp4 2d weights: W and W^T alike", test_nvfp4_2d_weights_transpose_alike},
      {"hadamard orthogonal and invertible", test_hadamard_orthogonal_and_invertible},
      {"nvfp4 hadamard fake quant", test_nvfp4_hadamard_fake_quant},
      {"stochastic rounding unbiased", test_stochastic_rounding_unbiased},
      {"fake quant == dequantize(quantize)", test_fake_quant_matches_encoded_and_aliasing},
      {"invalid configs", test_invalid_configs},
  };
  for (const auto& [name, run] : tests) {
    const int before = g_failures;
    run();
    std::printf("%s %s\n", g_failures == before ? "ok  " : "FAIL", name);
  }
  std::printf("%d check(s) failed\n", g_failures);
  return g_failures == 0 ? 0 : 1;
}
