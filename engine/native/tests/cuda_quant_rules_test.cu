// CTest (no GPU needed): runs the element and block rules of the GPU quantize-dequantize
// (src/cuda/quant_cuda_rules.cuh, the same code the kernels execute) on the host and checks them bit
// for bit against the CPU reference quant::fake_quantize, over every format, layout, scale rule and
// rounding mode the GPU path supports, on a tensor with magnitudes from 2^-30 to 2^12, signed zeros,
// partial edge blocks, a NaN and an infinity. Exit status 1 on any difference.
// strata_cuda_compare repeats the comparison with the real kernels on a GPU.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "cuda/quant_cuda_rules.cuh"
#include "ops/quant.h"

using namespace strata;
using namespace strata::cuda_quant;

namespace {

float finite_amax(const std::vector<float>& x) {
  float amax = 0.0f;
  for (float v : x)
    if (std::isfinite(v)) amax = std::max(amax, std::fabs(v));
  return amax;
}

// The host run of the GPU rules for one configuration.
std::vector<float> gpu_rules(const std::vector<float>& x, int64_t rows, int64_t cols, const quant::QuantConfig& c) {
  using quant::Format;
  std::vector<float> out(x.size());
  if (c.format == Format::Bf16 || c.format == Format::Fp32) {
    for (size_t i = 0; i < x.size(); ++i) out[i] = c.format == Format::Fp32 ? x[i] : bf16_element(x[i]);
    return out;
  }
  QuantLaunch q{rows, cols, 1, cols, 1, {}, c.rounding == quant::Rounding::Stochastic, c.seed};
  q.element = element_spec(c.format == Format::Fp8E4M3   ? quant::ElementFormat::E4M3
                           : c.format == Format::Fp8E5M2 ? quant::ElementFormat::E5M2
                           : c.format == Format::Mxfp8   ? c.mx_element
                                                         : quant::ElementFormat::E2M1);
  if (c.format == Format::Fp8E4M3 || c.format == Format::Fp8E5M2) {
    const float amax = finite_amax(x);
    for (int64_t i = 0; i < rows * cols; ++i) out[i] = fp8_tensor_element(x[i], q, amax, i);
    return out;
  }
  const int64_t size = c.format == Format::Mxfp8 ? quant::kMxfp8BlockSize : quant::kNvfp4BlockSize;
  q.block_rows = c.layout == quant::BlockLayout::AlongRow ? 1 : size;
  q.block_cols = c.layout == quant::BlockLayout::AlongColumn ? 1 : size;
  q.grid_cols = (cols + q.block_cols - 1) / q.block_cols;
  const int64_t blocks = ((rows + q.block_rows - 1) / q.block_rows) * q.grid_cols;
  const float amax = finite_amax(x);
  for (int64_t b = 0; b < blocks; ++b) {
    if (c.format == Format::Mxfp8) mxfp8_block(x.data(), out.data(), q, c.mx_scale_rule == quant::MxScaleRule::RoundUp, b);
    else nvfp4_block(x.data(), out.data(), q, amax, b);
  }
  return out;
}

}  // namespace

int main() {
  using namespace quant;
  const int64_t rows = 96, cols = 200;
  std::mt19937_64 rng(31);
  std::uniform_real_distribution<double> exponent(-30.0, 12.0), unit(0.0, 1.0);
  std::vector<float> values(static_cast<size_t>(rows * cols));
  for (float& v : values) {
    const double u = unit(rng);
    v = u < 0.02 ? (u < 0.01 ? 0.0f : -0.0f)
                 : static_cast<float>((unit(rng) < 0.5 ? -1.0 : 1.0) * std::exp2(exponent(rng)));
  }
  struct Case {
    const char* label;
    Format format;
    BlockLayout layout;
    Rounding rounding;
    ElementFormat mx;
    MxScaleRule rule;
    bool specials;
  };
  const Case cases[] = {
      {"bf16", Format::Bf16, BlockLayout::AlongRow, Rounding::NearestEven, ElementFormat::E4M3, MxScaleRule::RoundUp, true},
      {"fp8_e4m3", Format::Fp8E4M3, BlockLayout::AlongRow, Rounding::NearestEven, ElementFormat::E4M3, MxScaleRule::RoundUp, false},
      {"fp8_e5m2", Format::Fp8E5M2, BlockLayout::AlongRow, Rounding::NearestEven, ElementFormat::E4M3, MxScaleRule::RoundUp, false},
      {"fp8_e4m3 stochastic", Format::Fp8E4M3, BlockLayout::AlongRow, Rounding::Stochastic, ElementFormat::E4M3, MxScaleRule::RoundUp, false},
      {"mxfp8 e4m3 round-up 1x32", Format::Mxfp8, BlockLayout::AlongRow, Rounding::NearestEven, ElementFormat::E4M3, MxScaleRule::RoundUp, true},
      {"mxfp8 e4m3 ocp 1x32", Format::Mxfp8, BlockLayout::AlongRow, Rounding::NearestEven, ElementFormat::E4M3, MxScaleRule::Ocp, true},
      {"mxfp8 e5m2 ocp 32x1", Format::Mxfp8, BlockLayout::AlongColumn, Rounding::NearestEven, ElementFormat::E5M2, MxScaleRule::Ocp, true},
      {"mxfp8 e5m2 round-up 32x1 stochastic", Format::Mxfp8, BlockLayout::AlongColumn, Rounding::Stochastic, ElementFormat::E5M2, MxScaleRule::RoundUp, true},
      {"nvfp4 1x16", Format::Nvfp4, BlockLayout::AlongRow, Rounding::NearestEven, ElementFormat::E4M3, MxScaleRule::RoundUp, true},
      {"nvfp4 16x1 stochastic", Format::Nvfp4, BlockLayout::AlongColumn, Rounding::Stochastic, ElementFormat::E4M3, MxScaleRule::RoundUp, true},
      {"nvfp4 16x16", Format::Nvfp4, BlockLayout::Tile2d, Rounding::NearestEven, ElementFormat::E4M3, MxScaleRule::RoundUp, true},
  };
  int failures = 0;
  for (const Case& cs : cases) {
    QuantConfig config;
    config.format = cs.format, config.layout = cs.layout, config.rounding = cs.rounding;
    config.mx_element = cs.mx, config.mx_scale_rule = cs.rule, config.seed = 1234;
    std::vector<float> x = values;
    if (cs.specials) {
      x[5 * cols + 7] = std::nanf("");
      x[9 * cols + 40] = -INFINITY;
    }
    std::vector<float> want(x.size());
    fake_quantize(x.data(), want.data(), rows, cols, config);
    const std::vector<float> got = gpu_rules(x, rows, cols, config);
    int64_t differ = 0, first = -1;
    for (size_t i = 0; i < x.size(); ++i) {
      uint32_t a, b;
      std::memcpy(&a, &want[i], 4);
      std::memcpy(&b, &got[i], 4);
      if (a != b && !(std::isnan(want[i]) && std::isnan(got[i]))) {
        if (first < 0) first = static_cast<int64_t>(i);
        ++differ;
      }
    }
    std::printf("%s %-38s %lld of %zu differ", differ == 0 ? "PASS" : "FAIL", cs.label, (long long)differ, x.size());
    if (first >= 0) std::printf(" (first at %lld: input %.9g cpu %.9g rules %.9g)", (long long)first, x[first], want[first], got[first]);
    std::printf("\n");
    failures += differ != 0;
  }
  std::printf("%d failure(s)\n", failures);
  return failures == 0 ? 0 : 1;
}
