// Tensor quantizers for the precision formats a GEMM input can use (the document's PrecisionFormat):
// fp32 (identity), bf16, fp8_e4m3 / fp8_e5m2 with per-tensor current scaling, mxfp8 (32-element
// blocks, E8M0 scales) and nvfp4 (E2M1 elements, 16-element E4M3 block scales, fp32 tensor scale,
// optional 16x16 2D blocks for weights and the 16-point random Hadamard transform for weight-gradient
// inputs). Entry points: fake_quantize (quantize-dequantize, with inspection statistics),
// quantize -> Encoded (the bytes a real kernel stores) and dequantize.
//
// This is the readable CPU reference (OpenMP over independent blocks for large tensors, bf16 through
// bf16_round_n's AVX2 lanes; the results do not depend on either); CUDA kernels are checked against it. It is not
// the scalar codecs (quant_codec.h), not the policy that decides which GEMM input gets which format
// (engine/spec/precision.ts), and not the GEMM.
//
// Formulas (facts: /work/shared/reference/formats.md):
// - FP8 tensor scaling: s = fp8_max / amax (fp32; amax over finite values; s = 1 when amax = 0,
//   clamped to FLT_MAX). code = fp8(x * s); value = decode(code) / s.
// - MXFP8: blocks of 32 along the chosen axis share 2^e (E8M0 code e + 127, clamped to [-127, 127]).
//   Two rules for e, chosen by MxScaleRule:
//     RoundUp (the DEFAULT, TransformerEngine's rule): e = ceil(log2(amax / elem_max)): the smallest
//       power of two with amax / 2^e <= elem_max, so nothing saturates;
//     Ocp (the OCP MX v1.0 reference): e = floor(log2(amax)) - emax_elem (E4M3 8, E5M2 15); values
//       whose mantissa exceeds the element's largest mantissa at the top binade saturate.
//   code = elem(x / 2^e); value = decode(code) * 2^e. All-zero blocks get e = 0.
// - NVFP4: s_enc = 6 * 448 / amax_tensor (fp32; 1 when amax = 0; clamped to FLT_MAX).
//   Per block: s_b = amax_b / 6; stored scale = e4m3(s_b * s_enc) (round to nearest even);
//   decode scale d = e4m3_value / s_enc; code = e2m1(x / d); value = decode(code) * d. A block whose
//   stored scale is 0 (its amax is tiny next to the tensor's) decodes to signed zeros.
//   Blocks: 1x16 along a row or a column, or 16x16 tiles (weights: W and W^T quantize alike).
//   Optional Hadamard transform (wgrad inputs): values are H x quantized, the returned fake-quant
//   values are H^T Q(H x), so an unchanged GEMM gives Q(H dy)^T Q(H x), exactly what a GEMM on the
//   transformed operands computes.
// - Rounding: nearest even unless QuantConfig::rounding is Stochastic (for gradients); stochastic
//   bits for element i (row-major index, r * cols + c) come from counter_random32(seed, i).
// - Partial blocks at the edges of a matrix are allowed; they are simply smaller blocks.
//
// Special values (tested): amax and every scale are computed from finite values only.
// NaN stays NaN. Inf stays Inf in bf16 and E5M2 elements, becomes NaN in E4M3 elements (no Inf code).
// NVFP4 elements (E2M1) cannot hold either: a 16-element block (or 16x16 tile) containing NaN or Inf
// gets the E4M3 NaN scale (0x7F) and dequantizes to NaN in every element, as the stored format would.
// Zeros keep their sign. Finite overflow saturates (counted as `clipped` when nearest-even rounding
// would leave the range); bf16 rounds overflow to Inf (also counted as clipped).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "quant_codec.h"
#include "quant_hadamard.h"

namespace strata::quant {

/** The document's PrecisionFormat values (engine/spec/document.ts PRECISION_FORMATS). */
enum class Format : uint8_t { Fp32, Bf16, Fp8E4M3, Fp8E5M2, Mxfp8, Nvfp4 };

/** "fp32", "bf16", "fp8_e4m3", "fp8_e5m2", "mxfp8", "nvfp4". */
const char* format_name(Format format);
std::optional<Format> parse_format(std::string_view name);

/** How MXFP8 picks its E8M0 block exponent (see the file header). RoundUp is the default. */
enum class MxScaleRule : uint8_t { RoundUp, Ocp };

/** Which elements share one scale. */
enum class BlockLayout : uint8_t {
  AlongRow,     // 1 x B: B consecutive elements of a row (the contiguous axis)
  AlongColumn,  // B x 1: B consecutive elements of a column
  Tile2d,       // 16 x 16 tiles (NVFP4 only: weights, so that W and W^T share scales)
};

inline constexpr int kMxfp8BlockSize = 32;
inline constexpr int kNvfp4BlockSize = 16;
inline constexpr float kNvfp4ElementMax = 6.0f;
inline constexpr float kNvfp4ScaleMax = 448.0f;

struct QuantConfig {
  Format format = Format::Bf16;
  ElementFormat mx_element = ElementFormat::E4M3;  // MXFP8 element type (E4M3 or E5M2)
  MxScaleRule mx_scale_rule = MxScaleRule::RoundUp;
  BlockLayout layout = BlockLayout::AlongRow;      // MXFP8 / NVFP4 only
  Rounding rounding = Rounding::NearestEven;       // FP8 / MXFP8 / NVFP4 elements
  uint64_t seed = 0;                               // stochastic rounding stream
  bool hadamard = false;                           // NVFP4 wgrad inputs, AlongRow / AlongColumn only
  uint64_t hadamard_seed = kDefaultHadamardSeed;
};

/** Histogram of floor(log2 |x|) over finite nonzero inputs, clamped into [min, min + bins). */
inline constexpr int kHistogramMinExponent = -48;
inline constexpr int kHistogramBins = 64;

/**
 * Inspection statistics of one quantization. With the Hadamard transform they describe H x, the tensor
 * the format actually stores (the transform is orthogonal, so errors are the same in both domains).
 */
struct QuantStats {
  int64_t elements = 0;
  int64_t nonfinite = 0;  // NaN or Inf inputs
  int64_t nonzero = 0;    // finite nonzero inputs
  int64_t underflow = 0;  // finite nonzero inputs that quantized to zero (flush to zero)
  int64_t clipped = 0;    // finite inputs whose scaled value lies beyond the element range (saturates())
  double amax = 0.0;      // max |x| over finite inputs
  // Decode scales (value = element * scale) over blocks with a nonzero finite amax. FP8: 1/s, one
  // block; MXFP8: 2^e; NVFP4: e4m3_value / s_enc. bf16 / fp32 have no scales (scale_blocks = 0).
  int64_t scale_blocks = 0;
  int64_t zero_scale_blocks = 0;  // of those, blocks whose stored scale underflowed to 0 (NVFP4)
  double scale_min = 0.0;
  double scale_max = 0.0;
  double scale_mean = 0.0;
  double signal_energy = 0.0;  // sum x^2 over finite inputs with finite outputs
  double error_energy = 0.0;   // sum (x - q)^2 over the same elements
  std::array<int64_t, kHistogramBins> log2_histogram{};
  int64_t histogram_zeros = 0;  // finite inputs equal to zero

  /** ||x - q|| / ||x|| (0 when x is all zero). */
  double rel_err() const;
  /** 10 log10(signal / error) in dB; +infinity when the error is zero. */
  double snr_db() const;
  /** underflow / nonzero. */
  double underflow_share() const;
  /** clipped / finite elements. */
  double clipped_share() const;
};

/**
 * Adds `from` into `into` (counts, energies and histograms summed, amax and scale extremes combined,
 * scale means weighted by blocks): the statistics of several quantizations seen as one, e.g. every
 * expert of a MoE layer or the q, k, v projections of one attention layer.
 */
void accumulate(QuantStats& into, const QuantStats& from);

/** The stored form of an FP8 / MXFP8 / NVFP4 tensor (bf16 and fp32 are not block formats). */
struct Encoded {
  Format format = Format::Fp8E4M3;
  ElementFormat element = ElementFormat::E4M3;
  BlockLayout layout = BlockLayout::AlongRow;
  int64_t rows = 0;
  int64_t cols = 0;
  std::vector<uint8_t> elements;  // one code per element, row-major (E2M1 unpacked in the low nibble)
  int64_t scale_rows = 0;         // block grid shape; FP8 tensor scaling has a 1 x 1 grid of no bytes
  int64_t scale_cols = 0;
  std::vector<uint8_t> block_scales;  // MXFP8: E8M0, NVFP4: E4M3; row-major over the block grid
  float tensor_scale = 1.0f;          // FP8: s (value = decode / s); NVFP4: s_enc
  bool hadamard = false;              // elements hold H x (dequantize applies H^T)
  uint64_t hadamard_seed = kDefaultHadamardSeed;
};

/**
 * Throws std::invalid_argument for a combination no quantizer supports (negative shape, Tile2d
 * outside NVFP4, Hadamard outside NVFP4 1-D blocks, stochastic rounding of bf16/fp32, e2m1 MXFP8).
 */
void check_config(const QuantConfig& config, int64_t rows, int64_t cols);

/**
 * Quantize-dequantize a row-major [rows, cols] tensor: out = Q(in). `in` and `out` may alias.
 * Fills `stats` when given. Throws std::invalid_argument for an unsupported combination
 * (e.g. Tile2d outside NVFP4, Hadamard outside NVFP4 1-D blocks, stochastic rounding of bf16).
 */
void fake_quantize(const float* in, float* out, int64_t rows, int64_t cols, const QuantConfig& config,
                   QuantStats* stats = nullptr);

/** The stored codes and scales of Q(in) (FP8 / MXFP8 / NVFP4 only). */
Encoded quantize(const float* in, int64_t rows, int64_t cols, const QuantConfig& config, QuantStats* stats = nullptr);

/** Values of an Encoded tensor (row-major rows x cols). Equals fake_quantize's output bit for bit. */
void dequantize(const Encoded& encoded, float* out);

/** Shape of the scale-block grid for a layout: {block_rows, block_cols} of one block. */
std::array<int64_t, 2> block_shape(Format format, BlockLayout layout);

}  // namespace strata::quant

namespace strata {

class Backend;

/**
 * The quantize op family (OpKind::Quantize): out (rows, cols) = Q(in) on a backend, with the rules
 * of quant::fake_quantize bit for bit (the op harness checks every backend against it). `in` is
 * (rows, ld) row-major with ld >= cols; `out` is contiguous; both are backend memory. `out` may be
 * `in` itself when ld == cols, and must not overlap it otherwise. What the GEMM precision hook runs
 * on device backends (ops/quant_gemm.h); no statistics (those come from the CPU reference).
 */
struct FakeQuantizeArgs {
  const float* in = nullptr;  // (rows, ld)
  int64_t ld = 0;
  float* out = nullptr;  // (rows, cols)
  int64_t rows = 0, cols = 0;
  quant::QuantConfig config;
  const char* label = "";  // names the tensor in errors and profiles
};

/** Checks the shapes, then runs args on the backend (which raises for unsupported configurations). */
void fake_quantize_tensor(Backend& backend, const FakeQuantizeArgs& args);

}  // namespace strata
