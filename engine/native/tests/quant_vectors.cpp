// Generator of tests/fixtures/quant-vectors.json: shared test vectors that pin the C++ quantizers
// (engine/native/src/ops/quant*.h) and let the TS mirror (engine/spec/precision-formats.ts) prove it
// computes the same codes and values bit for bit. Floats are written as their uint32 bit patterns so
// NaN, Inf and signed zeros survive JSON; statistics are plain numbers (null for +infinity).
//
// Usage:  strata_quant_vectors --write PATH   (atomic: temp file + rename)
//         strata_quant_vectors --check PATH   (exit 1 when PATH differs from what this build generates;
//                                              registered with CTest so the fixture cannot drift)
// It is not a test of the quantizers itself (quant_test.cpp is).
#include <cfloat>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "ops/quant.h"

using namespace strata::quant;

namespace {

uint32_t bits_of(float v) {
  uint32_t b;
  std::memcpy(&b, &v, 4);
  return b;
}

template <typename T>
std::string int_array(const std::vector<T>& values) {
  std::string out = "[";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i) out += ",";
    out += std::to_string(static_cast<uint64_t>(values[i]));
  }
  return out + "]";
}

std::string float_bits_array(const std::vector<float>& values) {
  std::vector<uint32_t> bits;
  for (float v : values) bits.push_back(bits_of(v));
  return int_array(bits);
}

std::string number(double v) {
  if (std::isinf(v) && v > 0) return "null";
  char buffer[40];
  std::snprintf(buffer, sizeof buffer, "%.17g", v);
  return buffer;
}

/** Scalar inputs: specials, every grid midpoint region, random values over a wide exponent range. */
std::vector<float> scalar_inputs() {
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> v = {0.0f, -0.0f, std::numeric_limits<float>::quiet_NaN(), inf, -inf, FLT_MAX, -FLT_MAX,
                          1e-45f, -1e-45f, 1e-40f, 0.25f, 0.2500001f, 0.75f, 1.25f, 2.5f, 3.5f, 5.0f, 5.01f,
                          448.0f, 464.0f, 480.0f, 57344.0f, 61440.0f, 1.0f + 1.0f / 256, 1.0f + 3.0f / 256};
  for (int e = -20; e <= 20; ++e) v.push_back(std::ldexp(1.5f, e));
  for (uint64_t i = 0; i < 240; ++i) {
    const uint64_t r = counter_random64(2024, i);
    const int exponent = -24 + static_cast<int>(r % 44);
    const float mantissa = 1.0f + static_cast<float>((r >> 20) & 0x7FFFFF) / 8388608.0f;
    v.push_back(((r >> 63) ? -1.0f : 1.0f) * std::ldexp(mantissa, exponent));
  }
  return v;
}

/** Tensor inputs: a roughly Gaussian body with a few outliers (exercises saturation and underflow). */
std::vector<float> tensor_input(int64_t n, uint64_t seed, float scale) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    double s = 0;
    for (int k = 0; k < 4; ++k) s += static_cast<double>(counter_random32(seed, static_cast<uint64_t>(4 * i + k))) / 4294967296.0;
    float x = static_cast<float>((s - 2.0) * 1.7320508 * scale);
    if (counter_random32(seed + 1, static_cast<uint64_t>(i)) % 61 == 0) x *= 40.0f;
    v[i] = x;
  }
  return v;
}

struct TensorCase {
  std::string name;
  QuantConfig config;
  int64_t rows;
  int64_t cols;
  bool specials;
};

std::string config_json(const QuantConfig& c) {
  std::ostringstream o;
  o << "{\"format\":\"" << format_name(c.format) << "\",\"mx_element\":\"" << element_format_name(c.mx_element)
    << "\",\"mx_scale_rule\":\"" << (c.mx_scale_rule == MxScaleRule::Ocp ? "ocp" : "round_up") << "\",\"layout\":\""
    << (c.layout == BlockLayout::AlongRow ? "row" : c.layout == BlockLayout::AlongColumn ? "column" : "tile2d")
    << "\",\"rounding\":\"" << (c.rounding == Rounding::Stochastic ? "stochastic" : "nearest_even")
    << "\",\"seed\":" << c.seed << ",\"hadamard\":" << (c.hadamard ? "true" : "false") << "}";
  return o.str();
}

std::string stats_json(const QuantStats& s) {
  std::ostringstream o;
  o << "{\"elements\":" << s.elements << ",\"nonfinite\":" << s.nonfinite << ",\"nonzero\":" << s.nonzero
    << ",\"underflow\":" << s.underflow << ",\"clipped\":" << s.clipped << ",\"amax\":" << number(s.amax)
    << ",\"scale_blocks\":" << s.scale_blocks << ",\"zero_scale_blocks\":" << s.zero_scale_blocks
    << ",\"scale_min\":" << number(s.scale_min) << ",\"scale_max\":" << number(s.scale_max)
    << ",\"scale_mean\":" << number(s.scale_mean) << ",\"rel_err\":" << number(s.rel_err())
    << ",\"snr_db\":" << number(s.snr_db()) << ",\"histogram_zeros\":" << s.histogram_zeros
    << ",\"log2_histogram\":" << int_array(std::vector<int64_t>(s.log2_histogram.begin(), s.log2_histogram.end())) << "}";
  return o.str();
}

std::string tensor_case_json(const TensorCase& t, uint64_t seed) {
  std::vector<float> x = tensor_input(t.rows * t.cols, seed, 0.05f);
  if (t.specials) {
    x[3] = std::numeric_limits<float>::quiet_NaN();
    x[t.cols + 5] = -std::numeric_limits<float>::infinity();
    x[7] = 0.0f;
    x[8] = -0.0f;
    for (int64_t c = 0; c < 16 && c < t.cols; ++c) x[2 * t.cols + c] = 1e-9f * static_cast<float>(c + 1);  // tiny block
    x[9] = 1e-41f;
  }
  std::vector<float> out(x.size());
  QuantStats stats;
  fake_quantize(x.data(), out.data(), t.rows, t.cols, t.config, &stats);
  std::ostringstream o;
  o << "{\"name\":\"" << t.name << "\",\"config\":" << config_json(t.config) << ",\"rows\":" << t.rows
    << ",\"cols\":" << t.cols << ",\"input\":" << float_bits_array(x) << ",\"output\":" << float_bits_array(out);
  if (t.config.format != Format::Bf16 && t.config.format != Format::Fp32) {
    const Encoded encoded = quantize(x.data(), t.rows, t.cols, t.config);
    o << ",\"elements\":" << int_array(encoded.elements) << ",\"block_scales\":" << int_array(encoded.block_scales)
      << ",\"tensor_scale\":" << bits_of(encoded.tensor_scale);
  }
  o << ",\"stats\":" << stats_json(stats) << "}";
  return o.str();
}

std::string generate() {
  std::ostringstream o;
  o << "{\n\"generator\":\"engine/native/tests/quant_vectors.cpp (strata_quant_vectors --write)\",\n";
  o << "\"note\":\"floats are uint32 bit patterns; stats are numbers, null meaning +infinity\",\n";

  const std::vector<float> inputs = scalar_inputs();
  std::vector<uint16_t> bf16;
  std::vector<uint8_t> e4m3, e5m2, e2m1, e4m3_sr, e2m1_sr;
  for (size_t i = 0; i < inputs.size(); ++i) {
    bf16.push_back(bf16_encode(inputs[i]));
    e4m3.push_back(encode_element(inputs[i], ElementFormat::E4M3));
    e5m2.push_back(encode_element(inputs[i], ElementFormat::E5M2));
    e2m1.push_back(encode_element(inputs[i], ElementFormat::E2M1));
    const uint32_t random_bits = counter_random32(42, i);
    e4m3_sr.push_back(encode_element(inputs[i], ElementFormat::E4M3, Rounding::Stochastic, random_bits));
    e2m1_sr.push_back(encode_element(inputs[i], ElementFormat::E2M1, Rounding::Stochastic, random_bits));
  }
  o << "\"scalar\":{\"inputs\":" << float_bits_array(inputs) << ",\n\"bf16\":" << int_array(bf16)
    << ",\n\"e4m3\":" << int_array(e4m3) << ",\n\"e5m2\":" << int_array(e5m2) << ",\n\"e2m1\":" << int_array(e2m1)
    << ",\n\"stochastic_seed\":42,\"e4m3_stochastic\":" << int_array(e4m3_sr)
    << ",\n\"e2m1_stochastic\":" << int_array(e2m1_sr) << "},\n";

  std::vector<uint64_t> counters = {0, 1, 2, 1000, 123456789, 0xFFFFFFFFull, 0x123456789ABCull};
  o << "\"random\":{\"seed\":7,\"counters\":" << int_array(counters) << ",\"random32\":[";
  for (size_t i = 0; i < counters.size(); ++i) o << (i ? "," : "") << counter_random32(7, counters[i]);
  o << "]},\n";

  const int64_t hr = 32, hc = 40;
  std::vector<float> hx = tensor_input(hr * hc, 77, 1.0f), h_row = hx, h_col = hx;
  const HadamardSigns signs = hadamard_signs();
  hadamard16_apply(h_row.data(), hr, hc, Axis::Row, signs);
  hadamard16_apply(h_col.data(), hr, hc, Axis::Column, signs);
  std::string sign_list;
  for (int i = 0; i < kHadamardSize; ++i) {
    if (i) sign_list += ',';
    sign_list += std::to_string(static_cast<int>(signs[i]));
  }
  o << "\"hadamard\":{\"seed\":" << kDefaultHadamardSeed << ",\"signs\":[" << sign_list << "],\"rows\":" << hr << ",\"cols\":" << hc << ",\"input\":" << float_bits_array(hx)
    << ",\n\"row\":" << float_bits_array(h_row) << ",\n\"column\":" << float_bits_array(h_col) << "},\n";

  std::vector<TensorCase> cases;
  const auto add = [&](std::string name, Format format, auto&& adjust, int64_t rows, int64_t cols, bool specials) {
    QuantConfig config;
    config.format = format;
    adjust(config);
    cases.push_back({std::move(name), config, rows, cols, specials});
  };
  const auto none = [](QuantConfig&) {};
  add("bf16", Format::Bf16, none, 24, 48, true);
  add("fp8_e4m3 tensor scaling", Format::Fp8E4M3, none, 24, 48, true);
  add("fp8_e5m2 tensor scaling", Format::Fp8E5M2, none, 24, 48, false);
  add("mxfp8 e4m3 round-up rows", Format::Mxfp8, none, 24, 48, true);
  add("mxfp8 e4m3 ocp rows", Format::Mxfp8, [](QuantConfig& c) { c.mx_scale_rule = MxScaleRule::Ocp; }, 24, 48, false);
  add("mxfp8 e5m2 round-up columns", Format::Mxfp8,
      [](QuantConfig& c) {
        c.mx_element = ElementFormat::E5M2;
        c.layout = BlockLayout::AlongColumn;
      },
      40, 24, false);
  add("nvfp4 1x16 rows", Format::Nvfp4, none, 24, 48, true);
  add("nvfp4 16x16 weights", Format::Nvfp4, [](QuantConfig& c) { c.layout = BlockLayout::Tile2d; }, 24, 40, false);
  add("nvfp4 1x16 rows stochastic", Format::Nvfp4,
      [](QuantConfig& c) {
        c.rounding = Rounding::Stochastic;
        c.seed = 11;
      },
      24, 48, false);
  add("nvfp4 wgrad columns hadamard stochastic", Format::Nvfp4,
      [](QuantConfig& c) {
        c.layout = BlockLayout::AlongColumn;
        c.hadamard = true;
        c.rounding = Rounding::Stochastic;
        c.seed = 5;
      },
      40, 24, false);
  o << "\"tensors\":[\n";
  for (size_t i = 0; i < cases.size(); ++i) o << (i ? ",\n" : "") << tensor_case_json(cases[i], 100 + i);
  o << "\n]\n}\n";
  return o.str();
}

bool read_file(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream s;
  s << in.rdbuf();
  *out = s.str();
  return true;
}

bool write_file_atomic(const std::string& path, const std::string& data) {
  const std::string temp = path + ".tmp";
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    if (!out) return false;
    out << data;
    if (!out.flush()) return false;
  }
  return std::rename(temp.c_str(), path.c_str()) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3 || (std::strcmp(argv[1], "--write") != 0 && std::strcmp(argv[1], "--check") != 0)) {
    std::fprintf(stderr, "usage: %s --write|--check tests/fixtures/quant-vectors.json\n", argv[0]);
    return 2;
  }
  const std::string path = argv[2];
  const std::string generated = generate();
  if (std::strcmp(argv[1], "--write") == 0) {
    if (!write_file_atomic(path, generated)) {
      std::fprintf(stderr, "quant-vectors: cannot write %s\n", path.c_str());
      return 1;
    }
    std::printf("wrote %s (%zu bytes)\n", path.c_str(), generated.size());
    return 0;
  }
  std::string existing;
  if (!read_file(path, &existing)) {
    std::fprintf(stderr, "quant-vectors: cannot read %s\n", path.c_str());
    return 1;
  }
  if (existing != generated) {
    std::fprintf(stderr,
                 "quant-vectors: %s is out of date with the C++ quantizers; regenerate it with "
                 "strata_quant_vectors --write %s\n",
                 path.c_str(), path.c_str());
    return 1;
  }
  std::printf("quant-vectors: %s matches\n", path.c_str());
  return 0;
}
