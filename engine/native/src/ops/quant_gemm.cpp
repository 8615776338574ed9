// GEMM precision hook: per-operand recipe settings, quantized operand copies (host copies for host
// backends, device buffers and GEMM arithmetic for device backends), inspection records and their
// event lines. See quant_gemm.h for the recipe; this file is the mechanics.
#include "quant_gemm.h"

#include "../core/error.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>

namespace strata::quant {
namespace {

uint64_t role_hash(const char* role) {
  uint64_t h = 0xCBF29CE484222325ull;  // FNV-1a
  for (const char* p = role ? role : ""; *p; ++p) h = (h ^ static_cast<unsigned char>(*p)) * 0x100000001B3ull;
  return h;
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buffer[8];
      std::snprintf(buffer, sizeof buffer, "\\u%04x", c);
      out += buffer;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::atomic<uint64_t>& weights_version() {
  static std::atomic<uint64_t> version{0};
  return version;
}

std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.9g", v);
  return buffer;
}

}  // namespace

void note_weights_changed() { weights_version().fetch_add(1, std::memory_order_relaxed); }

uint64_t operand_seed(uint64_t base, int64_t step, const GemmTag& tag, Operand operand) {
  const uint64_t per_step = counter_random64(base ^ role_hash(tag.role), static_cast<uint64_t>(step));
  const uint64_t site = (static_cast<uint64_t>(tag.layer + 1) << 16) ^ (static_cast<uint64_t>(tag.mtp_depth) << 8) ^
                        (static_cast<uint64_t>(tag.pass) << 4) ^ static_cast<uint64_t>(operand);
  return counter_random64(per_step, site);
}

const char* operand_name(Operand operand) {
  switch (operand) {
    case Operand::Activation: return "activation";
    case Operand::Weight: return "weight";
    case Operand::Gradient: return "gradient";
  }
  return "?";
}

QuantConfig operand_config(Format pass_format, GemmPass pass, Operand operand, bool reduction_is_contiguous) {
  QuantConfig config;
  config.format = pass_format;
  if (pass_format == Format::Fp8E5M2 && pass != GemmPass::Fprop && operand != Operand::Gradient) {
    config.format = Format::Fp8E4M3;  // HYBRID: only the gradient operand is E5M2
  }
  if (config.format == Format::Mxfp8 || config.format == Format::Nvfp4) {
    config.layout = reduction_is_contiguous ? BlockLayout::AlongRow : BlockLayout::AlongColumn;
  }
  if (config.format == Format::Nvfp4) {
    if (operand == Operand::Weight) config.layout = BlockLayout::Tile2d;
    if (operand == Operand::Gradient) config.rounding = Rounding::Stochastic;
    if (pass == GemmPass::Wgrad) config.hadamard = true;
  }
  return config;
}

std::string inspection_event_json(const InspectionRecord& r, double t_seconds) {
  const QuantStats& s = r.stats;
  std::string out = "{\"type\":\"precision\",\"t\":" + json_number(t_seconds) + ",\"step\":" + std::to_string(r.step) +
                    ",\"layer\":" + std::to_string(r.layer) + ",\"role\":" + json_string(r.role) + ",\"pass\":\"" +
                    gemm_pass_name(r.pass) + "\",\"operand\":\"" + operand_name(r.operand) + "\",\"format\":\"" +
                    format_name(r.format) + "\",\"gemms\":" + std::to_string(r.gemms) +
                    ",\"elements\":" + std::to_string(s.elements) + ",\"amax\":" + json_number(s.amax) +
                    ",\"rel_err\":" + json_number(s.rel_err()) + ",\"snr_db\":" + json_number(s.snr_db()) +
                    ",\"underflow\":" + json_number(s.underflow_share()) +
                    ",\"clipped\":" + json_number(s.clipped_share()) + ",\"nonfinite\":" + std::to_string(s.nonfinite) +
                    ",\"scale_min\":" + json_number(s.scale_min) + ",\"scale_max\":" + json_number(s.scale_max) +
                    ",\"scale_mean\":" + json_number(s.scale_mean) +
                    ",\"zero_scale_blocks\":" + std::to_string(s.zero_scale_blocks) + ",\"histogram\":[";
  for (int b = 0; b < kHistogramBins; ++b) {
    if (b) out += ',';
    out += std::to_string(s.log2_histogram[b]);
  }
  out += "],\"histogram_min_exp\":" + std::to_string(kHistogramMinExponent) +
         ",\"histogram_zeros\":" + std::to_string(s.histogram_zeros) + "}";
  return out;
}

GemmPrecision::GemmPrecision(FormatResolver resolver, uint64_t seed) : resolver_(std::move(resolver)), seed_(seed) {}

GemmPrecision::~GemmPrecision() {
  uninstall();
  release_device_buffers();
}

void GemmPrecision::release_device_buffers() {
  std::lock_guard<std::mutex> lock(device_mutex_);
  if (!device_) return;
  device_->synchronize();  // queued GEMMs may still read the buffers
  for (DeviceBuffer& b : device_operands_) {
    if (b.data) device_->release(b.data);
    b = DeviceBuffer{};
  }
  for (auto& [key, weight] : device_weights_) {
    if (weight.buffer.data) device_->release(weight.buffer.data);
  }
  device_weights_.clear();
  device_ = nullptr;
}

void GemmPrecision::install() {
  // Device backends run bf16 cells in their grouped expert GEMMs; every other format needs one gemm()
  // per expert (per-expert scaling, as on the host).
  set_gemm_input_transform([this](Backend& backend, GemmCall& call) { transform(backend, call); },
                           [this](const GemmTag& tag) {
                             return tag.pass != GemmPass::Other && resolver_(tag) != Format::Bf16;
                           });
  installed_ = true;
}

void GemmPrecision::uninstall() {
  if (installed_) clear_gemm_input_transform();
  installed_ = false;
}

void GemmPrecision::begin_step(int64_t step, bool inspect) {
  step_ = step;
  inspect_ = inspect;
  std::lock_guard<std::mutex> lock(cache_mutex_);
  ++cache_epoch_;
}

void GemmPrecision::set_fused_bf16(bool enabled) { fused_bf16_ = enabled; }

void GemmPrecision::set_weight_cache(bool enabled) {
  std::lock_guard<std::mutex> lock(cache_mutex_);
  weight_cache_ = enabled;
  weight_cache_entries_.clear();
}

std::vector<InspectionRecord> GemmPrecision::take_inspections() {
  std::lock_guard<std::mutex> lock(records_mutex_);
  std::vector<InspectionRecord> out;
  out.reserve(records_.size());
  for (auto& [key, record] : records_) out.push_back(std::move(record));
  records_.clear();
  return out;
}

const float* GemmPrecision::quantize_operand(const float* data, int64_t rows, int64_t cols, int64_t ld,
                                             const QuantConfig& config, const GemmTag& tag, Operand operand,
                                             std::vector<float>& buffer) {
  buffer.resize(static_cast<size_t>(rows * cols));
  if (config.format == Format::Bf16 && !inspect_) {  // the hot path: round straight from the strided source
    if (ld == cols) {
      bf16_round_n(data, buffer.data(), rows * cols);
    } else {
#pragma omp parallel for schedule(static) if (rows * cols >= (int64_t{1} << 15))
      for (int64_t r = 0; r < rows; ++r) bf16_round_n(data + r * ld, buffer.data() + r * cols, cols);
    }
    return buffer.data();
  }
  for (int64_t r = 0; r < rows; ++r) std::memcpy(buffer.data() + r * cols, data + r * ld, sizeof(float) * cols);
  if (!inspect_) {
    fake_quantize(buffer.data(), buffer.data(), rows, cols, config);
    return buffer.data();
  }
  QuantStats stats;
  fake_quantize(buffer.data(), buffer.data(), rows, cols, config, &stats);
  const std::string role = tag.role ? tag.role : "";
  std::lock_guard<std::mutex> lock(records_mutex_);
  InspectionRecord& record =
      records_[Key{tag.layer, role, static_cast<int>(tag.pass), static_cast<int>(operand)}];
  if (record.gemms == 0) {
    record.step = step_;
    record.layer = tag.layer;
    record.role = role;
    record.pass = tag.pass;
    record.operand = operand;
    record.format = config.format;
  }
  ++record.gemms;
  accumulate(record.stats, stats);
  return buffer.data();
}

GemmPrecision::WeightKey GemmPrecision::weight_key(const float* data, int64_t rows, int64_t cols, int64_t ld,
                                                  const QuantConfig& config) {
  // Formats without blocks ignore the layout: fprop (W) and dgrad (W read as (K,N)) share one copy.
  const bool blocks = config.format == Format::Mxfp8 || config.format == Format::Nvfp4;
  return WeightKey{data, rows, cols, ld, static_cast<int>(config.format), blocks ? static_cast<int>(config.layout) : 0,
                   static_cast<int>(config.mx_element), static_cast<int>(config.mx_scale_rule)};
}

GemmPrecision::OperandPlan GemmPrecision::plan_operands(const GemmCall& call, Format format) const {
  OperandPlan p;
  const GemmPass pass = call.tag.pass;
  p.operand_a = pass == GemmPass::Fprop ? Operand::Activation : Operand::Gradient;
  p.operand_b = pass == GemmPass::Wgrad ? Operand::Activation : Operand::Weight;
  p.a_rows = call.trans_a ? call.k : call.m, p.a_cols = call.trans_a ? call.m : call.k;
  p.b_rows = call.trans_b ? call.n : call.k, p.b_cols = call.trans_b ? call.k : call.n;
  p.config_a = operand_config(format, pass, p.operand_a, /*reduction_is_contiguous=*/!call.trans_a);
  p.config_b = operand_config(format, pass, p.operand_b, /*reduction_is_contiguous=*/call.trans_b);
  p.config_a.seed = operand_seed(seed_, step_, call.tag, p.operand_a);
  p.config_b.seed = operand_seed(seed_, step_, call.tag, p.operand_b);
  return p;
}

const float* GemmPrecision::cached_weight(const float* data, int64_t rows, int64_t cols, int64_t ld,
                                          const QuantConfig& config, const GemmTag& tag) {
  const WeightKey key = weight_key(data, rows, cols, ld, config);
  const uint64_t version = weights_version().load(std::memory_order_relaxed);
  std::lock_guard<std::mutex> lock(cache_mutex_);
  CachedWeight& entry = weight_cache_entries_[key];
  if (entry.values.empty() || entry.epoch != cache_epoch_ || entry.weights_version != version) {
    quantize_operand(data, rows, cols, ld, config, tag, Operand::Weight, entry.values);
    entry.epoch = cache_epoch_;
    entry.weights_version = version;
  }
  return entry.values.data();
}

void GemmPrecision::transform(Backend& backend, GemmCall& call) {
  const GemmPass pass = call.tag.pass;
  if (pass == GemmPass::Other || call.m * call.n * call.k == 0) return;
  const Format format = resolver_(call.tag);
  if (!backend.host_accessible()) {
    device_transform(backend, call, format);
    return;
  }
  if (format == Format::Fp32) return;
  if (format == Format::Bf16 && !inspect_ && fused_bf16_) {  // no copies: the kernel rounds while packing
    call.a_bf16 = true;
    call.b_bf16 = true;
    return;
  }
  thread_local std::vector<float> buffer_a, buffer_b;
  const OperandPlan plan = plan_operands(call, format);
  const auto& [operand_a, operand_b, a_rows, a_cols, b_rows, b_cols, config_a, config_b] = plan;
  call.a = quantize_operand(call.a, a_rows, a_cols, call.lda, config_a, call.tag, operand_a, buffer_a);
  call.lda = a_cols;
  const bool cache_b = weight_cache_ && !inspect_ && operand_b == Operand::Weight &&
                       config_b.rounding == Rounding::NearestEven && !config_b.hadamard;
  call.b = cache_b ? cached_weight(call.b, b_rows, b_cols, call.ldb, config_b, call.tag)
                   : quantize_operand(call.b, b_rows, b_cols, call.ldb, config_b, call.tag, operand_b, buffer_b);
  call.ldb = b_cols;
}

// ---- device backends ----------------------------------------------------------------------------------

float* GemmPrecision::device_buffer(Backend& backend, DeviceBuffer& buffer, int64_t floats) {
  if (buffer.floats >= floats) return buffer.data;
  // Stream order keeps this safe: GEMMs queued on the old buffer run before anything queued later
  // writes the memory the allocator hands out again.
  if (buffer.data) backend.release(buffer.data);
  buffer.data = static_cast<float*>(backend.allocate(sizeof(float) * static_cast<size_t>(floats)));
  buffer.floats = floats;
  return buffer.data;
}

const float* GemmPrecision::device_quantize(Backend& backend, DeviceBuffer& buffer, const float* data, int64_t rows,
                                            int64_t cols, int64_t ld, const QuantConfig& config, const GemmTag& tag) {
  FakeQuantizeArgs args;
  args.in = data, args.ld = ld, args.out = device_buffer(backend, buffer, rows * cols);
  args.rows = rows, args.cols = cols, args.config = config, args.label = tag.role ? tag.role : "";
  fake_quantize_tensor(backend, args);
  return args.out;
}

void GemmPrecision::record_device_statistics(Backend& backend, const float* data, int64_t rows, int64_t cols,
                                             int64_t ld, const QuantConfig& config, const GemmTag& tag,
                                             Operand operand) {
  std::vector<float> host, quantized;
  if (rows * cols <= kDeviceInspectElements) {
    host.resize(static_cast<size_t>((rows - 1) * ld + cols));
    backend.download(host.data(), data, host.size() * sizeof(float));
    quantize_operand(host.data(), rows, cols, ld, config, tag, operand, quantized);  // records the statistics
    return;
  }
  // Evenly spaced groups of 32 whole rows (1x32 / 32x1 / 16x16 blocks and 16-row Hadamard runs stay
  // whole), about kDeviceInspectElements values; per-tensor scales come from the sample's amax.
  constexpr int64_t kGroup = 32;
  const int64_t groups = std::max<int64_t>(1, rows / kGroup);
  const int64_t take = std::clamp<int64_t>(kDeviceInspectElements / (kGroup * cols), 1, groups);
  const int64_t group_rows = std::min(kGroup, rows);
  host.resize(static_cast<size_t>(take * group_rows * cols));
  for (int64_t i = 0; i < take; ++i) {
    const int64_t r0 = (i * groups / take) * kGroup;
    float* to = host.data() + i * group_rows * cols;
    if (ld == cols) {  // the group is one contiguous range: one download
      backend.download(to, data + r0 * ld, sizeof(float) * static_cast<size_t>(group_rows * cols));
      continue;
    }
    for (int64_t r = 0; r < group_rows; ++r) backend.download(to + r * cols, data + (r0 + r) * ld, sizeof(float) * cols);
  }
  quantize_operand(host.data(), take * group_rows, cols, cols, config, tag, operand, quantized);
}

void GemmPrecision::device_transform(Backend& backend, GemmCall& call, Format format) {
  // fp32, bf16 and fp8_e4m3 cells: the device multiplies in that arithmetic itself (the common case,
  // nothing else to do outside inspected steps); fp8_e5m2, mxfp8, nvfp4: quantize-dequantize on the
  // device, multiply in bf16.
  const GemmArithmetic native = format == Format::Fp32      ? GemmArithmetic::Fp32
                                : format == Format::Bf16    ? GemmArithmetic::Bf16
                                : format == Format::Fp8E4M3 ? GemmArithmetic::Fp8E4M3
                                                            : GemmArithmetic::Default;
  if (native != GemmArithmetic::Default && (!inspect_ || format == Format::Fp32)) {
    call.arithmetic = native;
    return;
  }
  const OperandPlan plan = plan_operands(call, format);
  const auto& [operand_a, operand_b, a_rows, a_cols, b_rows, b_cols, config_a, config_b] = plan;
  if (inspect_) {
    record_device_statistics(backend, call.a, a_rows, a_cols, call.lda, config_a, call.tag, operand_a);
    record_device_statistics(backend, call.b, b_rows, b_cols, call.ldb, config_b, call.tag, operand_b);
  }
  if (native != GemmArithmetic::Default) {
    call.arithmetic = native;
    return;
  }
  std::lock_guard<std::mutex> lock(device_mutex_);
  STRATA_CHECK(!device_ || device_ == &backend, "precision hook: GEMMs on two device backends (", device_->name(),
               ", ", backend.name(), ")");
  device_ = &backend;
  call.a = device_quantize(backend, device_operands_[0], call.a, a_rows, a_cols, call.lda, config_a, call.tag);
  call.lda = a_cols;
  const bool cache_b = weight_cache_ && operand_b == Operand::Weight && config_b.rounding == Rounding::NearestEven &&
                       !config_b.hadamard;
  if (cache_b) {
    const WeightKey key = weight_key(call.b, b_rows, b_cols, call.ldb, config_b);
    const uint64_t version = weights_version().load(std::memory_order_relaxed);
    std::lock_guard<std::mutex> cache_lock(cache_mutex_);
    DeviceWeight& entry = device_weights_[key];
    if (!entry.buffer.data || entry.epoch != cache_epoch_ || entry.weights_version != version) {
      device_quantize(backend, entry.buffer, call.b, b_rows, b_cols, call.ldb, config_b, call.tag);
      entry.epoch = cache_epoch_;
      entry.weights_version = version;
    }
    call.b = entry.buffer.data;
  } else {
    call.b = device_quantize(backend, device_operands_[1], call.b, b_rows, b_cols, call.ldb, config_b, call.tag);
  }
  call.ldb = b_cols;
  call.arithmetic = GemmArithmetic::Bf16;
}

}  // namespace strata::quant
