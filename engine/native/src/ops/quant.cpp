// Tensor quantizers (FP8 tensor scaling, MXFP8, NVFP4, BF16) and their inspection statistics; the
// formulas and the behaviour on special values are stated in quant.h. Structure: `encode_blocks`
// produces the stored codes and scales, `dequantize` turns them back into values, and `measure`
// compares input and output for the statistics. fake_quantize is encode + decode, so the fake-quant
// values are by construction exactly what the stored format decodes to. Blocks are independent, so
// large tensors are encoded and decoded by several threads (OpenMP over block rows) with the same
// results; the statistics stay serial. Every scaling step is one
// fp32 operation in a fixed order, so the TS mirror (engine/spec/precision-formats.ts) can reproduce
// the results bit for bit.
#include "quant.h"

#include "../core/backend.h"
#include "../core/error.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

namespace strata::quant {
namespace {

constexpr uint8_t kE4M3NaNCode = 0x7F;
constexpr float kNvfp4GlobalNumerator = kNvfp4ElementMax * kNvfp4ScaleMax;  // 6 * 448

ElementFormat element_of(const QuantConfig& config) {
  switch (config.format) {
    case Format::Fp8E4M3: return ElementFormat::E4M3;
    case Format::Fp8E5M2: return ElementFormat::E5M2;
    case Format::Mxfp8: return config.mx_element;
    case Format::Nvfp4: return ElementFormat::E2M1;
    case Format::Fp32:
    case Format::Bf16: break;
  }
  return ElementFormat::E4M3;
}

bool is_block_format(Format format) { return format == Format::Mxfp8 || format == Format::Nvfp4; }

bool is_encoded_format(Format format) { return format != Format::Fp32 && format != Format::Bf16; }


/** Tensors from this many elements on are quantized by several threads (blocks are independent). */
constexpr int64_t kParallelElements = int64_t{1} << 15;

/**
 * Max |x| over the finite elements of a rectangle; sets *nonfinite when any element is NaN or Inf.
 * Large rectangles are split over threads: a maximum does not depend on the order it is taken in.
 */
float finite_amax(const float* x, int64_t cols, int64_t r0, int64_t c0, int64_t nr, int64_t nc, bool* nonfinite) {
  float amax = 0.0f;
  bool any_nonfinite = false;
#pragma omp parallel for schedule(static) reduction(max : amax) reduction(|| : any_nonfinite) if (nr * nc >= kParallelElements)
  for (int64_t r = r0; r < r0 + nr; ++r) {
    for (int64_t c = c0; c < c0 + nc; ++c) {
      const float v = x[r * cols + c];
      if (!std::isfinite(v)) {
        any_nonfinite = true;
        continue;
      }
      amax = std::max(amax, std::fabs(v));
    }
  }
  if (nonfinite && any_nonfinite) *nonfinite = true;
  return amax;
}

/** x scaled into the element's range for one block: FP8 and MXFP8 multiply, NVFP4 divides. */
float scale_into_element(float x, Format format, float block_factor) {
  return format == Format::Nvfp4 ? x / block_factor : x * block_factor;
}

/** Element value scaled back: FP8 divides by s, MXFP8 multiplies by 2^e, NVFP4 by d. */
float scale_from_element(float element, Format format, float block_factor, float mx_power) {
  switch (format) {
    case Format::Fp8E4M3:
    case Format::Fp8E5M2: return element / block_factor;
    case Format::Mxfp8: return element * mx_power;
    default: return element * block_factor;
  }
}

/** Per-block scaling parameters recovered from the stored bytes. */
struct BlockScaling {
  float factor = 1.0f;    // FP8: s; MXFP8: 2^-e; NVFP4: d = e4m3 / s_enc
  float mx_power = 1.0f;  // MXFP8: 2^e
  float decode_scale = 1.0f;  // the multiplier applied at dequantization (for statistics)
  bool nan_block = false;     // NVFP4 block marked NaN
  bool zero_block = false;    // NVFP4 block whose scale is 0: every element is a signed zero
};

BlockScaling scaling_of_block(const Encoded& encoded, int64_t block_index) {
  BlockScaling scaling;
  switch (encoded.format) {
    case Format::Fp8E4M3:
    case Format::Fp8E5M2:
      scaling.factor = encoded.tensor_scale;
      scaling.decode_scale = 1.0f / encoded.tensor_scale;
      break;
    case Format::Mxfp8: {
      const int exponent = static_cast<int>(encoded.block_scales[block_index]) - kE8M0Bias;
      scaling.factor = std::ldexp(1.0f, -exponent);
      scaling.mx_power = std::ldexp(1.0f, exponent);
      scaling.decode_scale = scaling.mx_power;
      break;
    }
    case Format::Nvfp4: {
      const uint8_t code = encoded.block_scales[block_index];
      const float stored = decode_element(code, ElementFormat::E4M3);
      scaling.nan_block = std::isnan(stored);
      scaling.factor = stored / encoded.tensor_scale;
      scaling.decode_scale = scaling.factor;
      scaling.zero_block = !scaling.nan_block && scaling.factor == 0.0f;
      break;
    }
    default: break;
  }
  return scaling;
}

/** Calls fn(block_index, r0, c0, nr, nc) for every block of the grid, row-major over the grid. */
template <typename Fn>
void for_each_block(int64_t rows, int64_t cols, int64_t block_rows, int64_t block_cols, Fn&& fn) {
  int64_t block_index = 0;
  for (int64_t r0 = 0; r0 < rows; r0 += block_rows) {
    for (int64_t c0 = 0; c0 < cols; c0 += block_cols) {
      fn(block_index++, r0, c0, std::min(block_rows, rows - r0), std::min(block_cols, cols - c0));
    }
  }
}

int64_t ceil_div(int64_t a, int64_t b) { return b == 0 ? 0 : (a + b - 1) / b; }

/**
 * for_each_block for work where blocks are independent: the same calls, split over threads by block
 * rows for large tensors. With `pieces`, a grid of one block (FP8 tensor scaling, or a tensor smaller
 * than one block) is also split, into pieces of rows with block index 0: only for element-wise work
 * (encoding or decoding elements with scales already known), never for computing a block's scale.
 */
template <typename Fn>
void for_each_block_parallel(int64_t rows, int64_t cols, int64_t block_rows, int64_t block_cols, bool pieces, Fn&& fn) {
  const bool parallel = rows * cols >= kParallelElements;
  if (pieces && block_rows >= rows && block_cols >= cols) {
    constexpr int64_t kPieceRows = 16;
#pragma omp parallel for schedule(static) if (parallel)
    for (int64_t r0 = 0; r0 < rows; r0 += kPieceRows) fn(int64_t{0}, r0, int64_t{0}, std::min(kPieceRows, rows - r0), cols);
    return;
  }
  // block extents clamped to the tensor (FP8's one block is "unbounded"), so the grid sizes cannot overflow
  const int64_t step_rows = std::min(block_rows, std::max<int64_t>(rows, 1));
  const int64_t step_cols = std::min(block_cols, std::max<int64_t>(cols, 1));
  const int64_t grid_rows = (rows + step_rows - 1) / step_rows, grid_cols = (cols + step_cols - 1) / step_cols;
#pragma omp parallel for schedule(static) if (parallel)
  for (int64_t br = 0; br < grid_rows; ++br) {
    const int64_t r0 = br * step_rows;
    for (int64_t bc = 0; bc < grid_cols; ++bc) {
      const int64_t c0 = bc * step_cols;
      fn(br * grid_cols + bc, r0, c0, std::min(step_rows, rows - r0), std::min(step_cols, cols - c0));
    }
  }
}

/** MXFP8 block exponent under the chosen rule (before clamping to E8M0). */
int mx_block_exponent(float amax, ElementFormat element, MxScaleRule rule) {
  if (amax == 0.0f) return 0;
  const double element_max = spec_of(element).max_finite;
  if (rule == MxScaleRule::Ocp) {
    const int element_emax = std::ilogb(element_max);  // E4M3: 8, E5M2: 15
    return std::ilogb(static_cast<double>(amax)) - element_emax;
  }
  // Round up: smallest e with amax / 2^e <= element_max, i.e. e = ceil(log2(amax / element_max)).
  const double ratio = static_cast<double>(amax) / element_max;
  int exponent = std::ilogb(ratio);
  if (ratio > std::ldexp(1.0, exponent)) ++exponent;
  return exponent;
}

/** Computes tensor scale and block scale bytes (everything but the elements). */
void encode_scales(const float* x, Encoded& encoded, const QuantConfig& config) {
  const auto [block_rows, block_cols] = block_shape(config.format, config.layout);
  encoded.scale_rows = ceil_div(encoded.rows, block_rows);
  encoded.scale_cols = ceil_div(encoded.cols, block_cols);
  const float tensor_amax = finite_amax(x, encoded.cols, 0, 0, encoded.rows, encoded.cols, nullptr);
  if (config.format == Format::Fp8E4M3 || config.format == Format::Fp8E5M2) {
    float scale = tensor_amax > 0.0f ? spec_of(encoded.element).max_finite / tensor_amax : 1.0f;
    if (!std::isfinite(scale)) scale = FLT_MAX;
    encoded.tensor_scale = scale;
    return;
  }
  encoded.block_scales.assign(static_cast<size_t>(encoded.scale_rows * encoded.scale_cols), 0);
  if (config.format == Format::Mxfp8) {
    for_each_block_parallel(encoded.rows, encoded.cols, block_rows, block_cols, /*pieces=*/false,
                   [&](int64_t b, int64_t r0, int64_t c0, int64_t nr, int64_t nc) {
                     const float amax = finite_amax(x, encoded.cols, r0, c0, nr, nc, nullptr);
                     encoded.block_scales[b] = e8m0_from_exponent(mx_block_exponent(amax, encoded.element, config.mx_scale_rule));
                   });
    return;
  }
  float global_scale = tensor_amax > 0.0f ? kNvfp4GlobalNumerator / tensor_amax : 1.0f;
  if (!std::isfinite(global_scale)) global_scale = FLT_MAX;
  encoded.tensor_scale = global_scale;
  for_each_block_parallel(encoded.rows, encoded.cols, block_rows, block_cols, /*pieces=*/false,
                 [&](int64_t b, int64_t r0, int64_t c0, int64_t nr, int64_t nc) {
                   bool nonfinite = false;
                   const float amax = finite_amax(x, encoded.cols, r0, c0, nr, nc, &nonfinite);
                   if (nonfinite) {
                     encoded.block_scales[b] = kE4M3NaNCode;
                     return;
                   }
                   const float block_decode_scale = amax / kNvfp4ElementMax;
                   encoded.block_scales[b] = encode_element(block_decode_scale * global_scale, ElementFormat::E4M3);
                 });
}

Encoded encode_blocks(const float* x, int64_t rows, int64_t cols, const QuantConfig& config) {
  Encoded encoded;
  encoded.format = config.format;
  encoded.element = element_of(config);
  encoded.layout = is_block_format(config.format) ? config.layout : BlockLayout::AlongRow;
  encoded.rows = rows;
  encoded.cols = cols;
  encoded.hadamard = config.hadamard;
  encoded.hadamard_seed = config.hadamard_seed;
  encoded.elements.assign(static_cast<size_t>(rows * cols), 0);
  encode_scales(x, encoded, config);
  const auto [block_rows, block_cols] = block_shape(config.format, encoded.layout);
  const uint8_t sign_bit = encoded.element == ElementFormat::E2M1 ? 0x08 : 0x80;
  for_each_block_parallel(rows, cols, block_rows, block_cols, /*pieces=*/true,
                          [&](int64_t b, int64_t r0, int64_t c0, int64_t nr, int64_t nc) {
    const BlockScaling scaling = scaling_of_block(encoded, b);
    for (int64_t r = r0; r < r0 + nr; ++r) {
      for (int64_t c = c0; c < c0 + nc; ++c) {
        const int64_t i = r * cols + c;
        if (scaling.nan_block) continue;  // codes stay 0; the NaN scale marks the block
        if (scaling.zero_block) {
          encoded.elements[i] = std::signbit(x[i]) ? sign_bit : 0;
          continue;
        }
        const uint32_t random_bits =
            config.rounding == Rounding::Stochastic ? counter_random32(config.seed, static_cast<uint64_t>(i)) : 0;
        encoded.elements[i] =
            encode_element(scale_into_element(x[i], config.format, scaling.factor), encoded.element, config.rounding, random_bits);
      }
    }
  });
  return encoded;
}

/** Dequantizes without the inverse Hadamard transform (values in the stored domain). */
void decode_blocks(const Encoded& encoded, float* out) {
  const auto [block_rows, block_cols] = block_shape(encoded.format, encoded.layout);
  for_each_block_parallel(encoded.rows, encoded.cols, block_rows, block_cols, /*pieces=*/true,
                 [&](int64_t b, int64_t r0, int64_t c0, int64_t nr, int64_t nc) {
                   const BlockScaling scaling = scaling_of_block(encoded, b);
                   for (int64_t r = r0; r < r0 + nr; ++r) {
                     for (int64_t c = c0; c < c0 + nc; ++c) {
                       const int64_t i = r * encoded.cols + c;
                       if (scaling.nan_block) {
                         out[i] = std::numeric_limits<float>::quiet_NaN();
                         continue;
                       }
                       const float element = decode_element(encoded.elements[i], encoded.element);
                       out[i] = scale_from_element(element, encoded.format, scaling.factor, scaling.mx_power);
                     }
                   }
                 });
}

void add_scale_statistic(QuantStats& stats, double decode_scale, bool stored_zero) {
  if (stats.scale_blocks == 0) {
    stats.scale_min = decode_scale;
    stats.scale_max = decode_scale;
  } else {
    stats.scale_min = std::min(stats.scale_min, decode_scale);
    stats.scale_max = std::max(stats.scale_max, decode_scale);
  }
  stats.scale_mean += decode_scale;  // divided at the end
  ++stats.scale_blocks;
  if (stored_zero) ++stats.zero_scale_blocks;
}

void add_element_statistic(QuantStats& stats, float x, float q, bool clipped) {
  ++stats.elements;
  if (!std::isfinite(x)) {
    ++stats.nonfinite;
    return;
  }
  stats.amax = std::max(stats.amax, static_cast<double>(std::fabs(x)));
  if (clipped) ++stats.clipped;
  if (x == 0.0f) {
    ++stats.histogram_zeros;
  } else {
    ++stats.nonzero;
    if (q == 0.0f) ++stats.underflow;
    const int bin = std::clamp(std::ilogb(x) - kHistogramMinExponent, 0, kHistogramBins - 1);
    ++stats.log2_histogram[bin];
  }
  if (std::isfinite(q)) {
    const double error = static_cast<double>(x) - static_cast<double>(q);
    stats.signal_energy += static_cast<double>(x) * static_cast<double>(x);
    stats.error_energy += error * error;
  }
}

/** Statistics of x -> q (both in the stored domain). `encoded` is null for bf16 and fp32. */
QuantStats measure(const float* x, const float* q, int64_t rows, int64_t cols, const Encoded* encoded) {
  QuantStats stats;
  if (!encoded) {
    for (int64_t i = 0; i < rows * cols; ++i) {
      add_element_statistic(stats, x[i], q[i], std::isfinite(x[i]) && std::isinf(q[i]));
    }
    return stats;
  }
  const auto [block_rows, block_cols] = block_shape(encoded->format, encoded->layout);
  for_each_block(rows, cols, block_rows, block_cols, [&](int64_t b, int64_t r0, int64_t c0, int64_t nr, int64_t nc) {
    const BlockScaling scaling = scaling_of_block(*encoded, b);
    const float amax = finite_amax(x, cols, r0, c0, nr, nc, nullptr);
    if (amax > 0.0f && !scaling.nan_block) add_scale_statistic(stats, scaling.decode_scale, scaling.zero_block);
    for (int64_t r = r0; r < r0 + nr; ++r) {
      for (int64_t c = c0; c < c0 + nc; ++c) {
        const int64_t i = r * cols + c;
        bool clipped = false;
        if (std::isfinite(x[i]) && !scaling.nan_block && !scaling.zero_block) {
          clipped = saturates(scale_into_element(x[i], encoded->format, scaling.factor), encoded->element);
        }
        add_element_statistic(stats, x[i], q[i], clipped);
      }
    }
  });
  return stats;
}

void finish_statistics(QuantStats& stats) {
  if (stats.scale_blocks > 0) stats.scale_mean /= static_cast<double>(stats.scale_blocks);
}

Axis hadamard_axis(BlockLayout layout) { return layout == BlockLayout::AlongColumn ? Axis::Column : Axis::Row; }

/** The tensor the format stores: x itself, or H x in `buffer` when the config asks for the transform. */
const float* stored_domain_input(const float* in, int64_t rows, int64_t cols, const QuantConfig& config,
                                 std::vector<float>& buffer) {
  if (!config.hadamard) return in;
  buffer.assign(in, in + rows * cols);
  hadamard16_apply(buffer.data(), rows, cols, hadamard_axis(config.layout), hadamard_signs(config.hadamard_seed));
  return buffer.data();
}

}  // namespace

void check_config(const QuantConfig& config, int64_t rows, int64_t cols) {
  const std::string where = std::string("quantize ") + format_name(config.format) + ": ";
  if (rows < 0 || cols < 0) throw std::invalid_argument(where + "negative shape");
  if (config.layout == BlockLayout::Tile2d && config.format != Format::Nvfp4) {
    throw std::invalid_argument(where + "16x16 tiles (Tile2d) exist only for nvfp4");
  }
  if (config.hadamard && (config.format != Format::Nvfp4 || config.layout == BlockLayout::Tile2d)) {
    throw std::invalid_argument(where + "the Hadamard transform applies only to nvfp4 with 1x16 blocks");
  }
  if (config.rounding == Rounding::Stochastic && !is_encoded_format(config.format)) {
    throw std::invalid_argument(where + "stochastic rounding is defined for fp8, mxfp8 and nvfp4 elements only");
  }
  if (config.format == Format::Mxfp8 && config.mx_element == ElementFormat::E2M1) {
    throw std::invalid_argument(where + "mxfp8 elements are e4m3 or e5m2");
  }
}

const char* format_name(Format format) {
  switch (format) {
    case Format::Fp32: return "fp32";
    case Format::Bf16: return "bf16";
    case Format::Fp8E4M3: return "fp8_e4m3";
    case Format::Fp8E5M2: return "fp8_e5m2";
    case Format::Mxfp8: return "mxfp8";
    case Format::Nvfp4: return "nvfp4";
  }
  return "?";
}

std::optional<Format> parse_format(std::string_view name) {
  for (Format f : {Format::Fp32, Format::Bf16, Format::Fp8E4M3, Format::Fp8E5M2, Format::Mxfp8, Format::Nvfp4}) {
    if (name == format_name(f)) return f;
  }
  return std::nullopt;
}

std::array<int64_t, 2> block_shape(Format format, BlockLayout layout) {
  if (format == Format::Fp8E4M3 || format == Format::Fp8E5M2 || !is_block_format(format)) {
    return {std::numeric_limits<int64_t>::max(), std::numeric_limits<int64_t>::max()};  // one block: the tensor
  }
  const int64_t size = format == Format::Mxfp8 ? kMxfp8BlockSize : kNvfp4BlockSize;
  switch (layout) {
    case BlockLayout::AlongRow: return {1, size};
    case BlockLayout::AlongColumn: return {size, 1};
    case BlockLayout::Tile2d: return {size, size};
  }
  return {1, size};
}

double QuantStats::rel_err() const {
  return signal_energy > 0.0 ? std::sqrt(error_energy / signal_energy) : 0.0;
}

double QuantStats::snr_db() const {
  if (error_energy == 0.0) return std::numeric_limits<double>::infinity();
  return 10.0 * std::log10(signal_energy / error_energy);
}

double QuantStats::underflow_share() const {
  return nonzero > 0 ? static_cast<double>(underflow) / static_cast<double>(nonzero) : 0.0;
}

double QuantStats::clipped_share() const {
  const int64_t finite = elements - nonfinite;
  return finite > 0 ? static_cast<double>(clipped) / static_cast<double>(finite) : 0.0;
}

void accumulate(QuantStats& into, const QuantStats& from) {
  if (from.scale_blocks > 0) {
    into.scale_min = into.scale_blocks > 0 ? std::min(into.scale_min, from.scale_min) : from.scale_min;
    into.scale_max = into.scale_blocks > 0 ? std::max(into.scale_max, from.scale_max) : from.scale_max;
    const double blocks = static_cast<double>(into.scale_blocks + from.scale_blocks);
    into.scale_mean = (into.scale_mean * static_cast<double>(into.scale_blocks) +
                       from.scale_mean * static_cast<double>(from.scale_blocks)) / blocks;
  }
  into.scale_blocks += from.scale_blocks;
  into.zero_scale_blocks += from.zero_scale_blocks;
  into.elements += from.elements;
  into.nonfinite += from.nonfinite;
  into.nonzero += from.nonzero;
  into.underflow += from.underflow;
  into.clipped += from.clipped;
  into.amax = std::max(into.amax, from.amax);
  into.signal_energy += from.signal_energy;
  into.error_energy += from.error_energy;
  for (int b = 0; b < kHistogramBins; ++b) into.log2_histogram[b] += from.log2_histogram[b];
  into.histogram_zeros += from.histogram_zeros;
}

Encoded quantize(const float* in, int64_t rows, int64_t cols, const QuantConfig& config, QuantStats* stats) {
  check_config(config, rows, cols);
  if (!is_encoded_format(config.format)) {
    throw std::invalid_argument(std::string("quantize: ") + format_name(config.format) +
                                " has no stored block form; use fake_quantize");
  }
  std::vector<float> transformed;
  const float* x = stored_domain_input(in, rows, cols, config, transformed);
  Encoded encoded = encode_blocks(x, rows, cols, config);
  if (stats) {
    std::vector<float> values(static_cast<size_t>(rows * cols));
    decode_blocks(encoded, values.data());
    *stats = measure(x, values.data(), rows, cols, &encoded);
    finish_statistics(*stats);
  }
  return encoded;
}

void dequantize(const Encoded& encoded, float* out) {
  decode_blocks(encoded, out);
  if (encoded.hadamard) {
    hadamard16_apply(out, encoded.rows, encoded.cols, hadamard_axis(encoded.layout), hadamard_signs(encoded.hadamard_seed),
                     /*inverse=*/true);
  }
}

void fake_quantize(const float* in, float* out, int64_t rows, int64_t cols, const QuantConfig& config, QuantStats* stats) {
  check_config(config, rows, cols);
  const int64_t n = rows * cols;
  if (!is_encoded_format(config.format)) {
    std::vector<float> input_copy;
    const float* x = in;
    if (stats && in == out) {
      input_copy.assign(in, in + n);
      x = input_copy.data();
    }
    if (config.format == Format::Bf16) {
      bf16_round_n(in, out, n);
    } else if (out != in) {
      std::copy(in, in + n, out);
    }
    if (stats) {
      *stats = measure(x, out, rows, cols, nullptr);
      finish_statistics(*stats);
    }
    return;
  }
  std::vector<float> transformed;
  const float* x = stored_domain_input(in, rows, cols, config, transformed);
  if (stats && x == out) {  // in-place call: keep the input for the statistics
    transformed.assign(in, in + n);
    x = transformed.data();
  }
  const Encoded encoded = encode_blocks(x, rows, cols, config);
  decode_blocks(encoded, out);
  if (stats) {
    *stats = measure(x, out, rows, cols, &encoded);
    finish_statistics(*stats);
  }
  if (config.hadamard) {
    hadamard16_apply(out, rows, cols, hadamard_axis(config.layout), hadamard_signs(config.hadamard_seed), /*inverse=*/true);
  }
}

}  // namespace strata::quant

namespace strata {

void fake_quantize_tensor(Backend& backend, const FakeQuantizeArgs& a) {
  const std::string op = std::string("fake_quantize[") + (a.label ? a.label : "") + "]";
  require_support(backend, OpKind::Quantize, op.c_str());
  STRATA_CHECK(a.rows >= 0 && a.cols >= 0, op, ": negative shape ", a.rows, " x ", a.cols);
  if (a.rows * a.cols == 0) return;
  STRATA_CHECK(a.in && a.out, op, ": null tensor");
  STRATA_CHECK(a.ld >= a.cols, op, ": leading dimension ", a.ld, " below ", a.cols, " columns");
  const auto in_begin = reinterpret_cast<uintptr_t>(a.in);
  const auto in_end = reinterpret_cast<uintptr_t>(a.in + (a.rows - 1) * a.ld + a.cols);
  const auto out_begin = reinterpret_cast<uintptr_t>(a.out);
  const auto out_end = reinterpret_cast<uintptr_t>(a.out + a.rows * a.cols);
  const bool in_place = a.in == a.out && a.ld == a.cols;
  STRATA_CHECK(in_place || out_end <= in_begin || in_end <= out_begin, op,
               ": out overlaps in (only an in-place call with ld == cols may)");
  try {
    quant::check_config(a.config, a.rows, a.cols);
  } catch (const std::invalid_argument& error) {
    throw Error(op + ": " + error.what());
  }
  backend.fake_quantize(a);
}

}  // namespace strata
