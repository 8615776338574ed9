// safetensors reader/writer (see safetensors.h). Strict validation of headers and data ranges;
// atomic writes. Not a lazy or memory-mapped loader.
#include "safetensors.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "files.h"
#include "json.h"

namespace strata::io {

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::F32: return "F32";
    case DType::BF16: return "BF16";
    case DType::F16: return "F16";
    case DType::F64: return "F64";
    case DType::I64: return "I64";
    case DType::I32: return "I32";
    case DType::U8: return "U8";
  }
  return "?";
}

size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::F32: case DType::I32: return 4;
    case DType::BF16: case DType::F16: return 2;
    case DType::F64: case DType::I64: return 8;
    case DType::U8: return 1;
  }
  return 0;
}

namespace {
bool dtype_from_name(const std::string& s, DType& out) {
  static const std::pair<const char*, DType> table[] = {
      {"F32", DType::F32}, {"BF16", DType::BF16}, {"F16", DType::F16}, {"F64", DType::F64},
      {"I64", DType::I64}, {"I32", DType::I32},   {"U8", DType::U8}};
  for (const auto& [name, dt] : table) {
    if (s == name) { out = dt; return true; }
  }
  return false;
}
}  // namespace

uint16_t float_to_bf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if (std::isnan(f)) return static_cast<uint16_t>((bits >> 16) | 0x40);
  uint32_t rounding = 0x7FFF + ((bits >> 16) & 1);
  return static_cast<uint16_t>((bits + rounding) >> 16);
}

float bf16_to_float(uint16_t b) {
  uint32_t bits = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

float f16_to_float(uint16_t h) {
  uint32_t sign = (h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1F;
  uint32_t mant = h & 0x3FF;
  float f;
  if (exp == 0) {
    f = std::ldexp(static_cast<float>(mant), -24);
    uint32_t bits;
    std::memcpy(&bits, &f, 4);
    bits |= sign;
    std::memcpy(&f, &bits, 4);
    return f;
  }
  uint32_t bits = exp == 31 ? (sign | 0x7F800000u | (mant << 13)) : (sign | ((exp + 112) << 23) | (mant << 13));
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t float_to_f16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000);
  if (std::isnan(f)) return static_cast<uint16_t>(sign | 0x7E00);
  float a = std::fabs(f);
  if (a >= 65520.0f) return static_cast<uint16_t>(sign | 0x7C00);
  if (a < 6.103515625e-05f) {  // subnormal: value = m * 2^-24, round to nearest even
    float m = std::nearbyint(a * 16777216.0f);
    return static_cast<uint16_t>(sign | static_cast<uint16_t>(m));
  }
  uint32_t abits = bits & 0x7FFFFFFFu;
  uint32_t rounding = 0xFFF + ((abits >> 13) & 1);
  abits += rounding;
  uint32_t exp = (abits >> 23) - 112;
  uint32_t mant = (abits >> 13) & 0x3FF;
  return static_cast<uint16_t>(sign | (exp << 10) | mant);
}

int64_t StoredTensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::vector<float> StoredTensor::to_float() const {
  int64_t n = numel();
  std::vector<float> out(static_cast<size_t>(n));
  const uint8_t* p = bytes.data();
  switch (dtype) {
    case DType::F32: std::memcpy(out.data(), p, static_cast<size_t>(n) * 4); break;
    case DType::BF16:
      for (int64_t i = 0; i < n; i++) { uint16_t b; std::memcpy(&b, p + 2 * i, 2); out[i] = bf16_to_float(b); }
      break;
    case DType::F16:
      for (int64_t i = 0; i < n; i++) { uint16_t b; std::memcpy(&b, p + 2 * i, 2); out[i] = f16_to_float(b); }
      break;
    case DType::F64:
      for (int64_t i = 0; i < n; i++) { double d; std::memcpy(&d, p + 8 * i, 8); out[i] = static_cast<float>(d); }
      break;
    default:
      throw std::runtime_error("tensor " + name + ": dtype " + dtype_name(dtype) + " is not a floating-point type");
  }
  return out;
}

const StoredTensor* SafetensorsFile::find(const std::string& name) const {
  for (const auto& t : tensors) if (t.name == name) return &t;
  return nullptr;
}

const StoredTensor& SafetensorsFile::get(const std::string& name, const std::string& file_label) const {
  const StoredTensor* t = find(name);
  if (!t) throw std::runtime_error(file_label + ": missing tensor " + name);
  return *t;
}

SafetensorsFile parse_safetensors(const std::string& bytes, const std::string& label) {
  auto fail = [&](const std::string& what) -> std::runtime_error {
    return std::runtime_error(label + ": " + what);
  };
  if (bytes.size() < 8) throw fail("truncated file (" + std::to_string(bytes.size()) + " bytes, need at least 8)");
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; i--) header_len = (header_len << 8) | static_cast<uint8_t>(bytes[i]);
  if (header_len > bytes.size() - 8) {
    throw fail("truncated or corrupt file: header length " + std::to_string(header_len) + " exceeds file size " +
               std::to_string(bytes.size()));
  }
  std::string header_text = bytes.substr(8, header_len);
  json::Value header;
  try {
    header = json::parse(header_text, label + " (safetensors header)");
  } catch (const json::ParseError& e) {
    throw std::runtime_error(std::string(e.what()));
  }
  if (!header.is_object()) throw fail("header is not a JSON object");
  const size_t data_start = 8 + header_len;
  const uint64_t data_size = bytes.size() - data_start;

  SafetensorsFile out;
  struct Range { uint64_t begin, end; size_t index; };
  std::vector<Range> ranges;
  for (const auto& [name, entry] : header.members()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) throw fail("__metadata__ is not an object");
      for (const auto& [k, v] : entry.members()) {
        if (!v.is_string()) throw fail("__metadata__." + k + " is not a string");
        out.metadata[k] = v.as_string();
      }
      continue;
    }
    auto tfail = [&](const std::string& what) { return fail("tensor " + name + ": " + what); };
    if (!entry.is_object()) throw tfail("header entry is not an object");
    const json::Value* dt = entry.find("dtype");
    const json::Value* shape = entry.find("shape");
    const json::Value* offsets = entry.find("data_offsets");
    if (!dt || !dt->is_string()) throw tfail("missing or invalid dtype");
    if (!shape || !shape->is_array()) throw tfail("missing or invalid shape");
    if (!offsets || !offsets->is_array() || offsets->size() != 2) throw tfail("missing or invalid data_offsets");
    StoredTensor t;
    t.name = name;
    if (!dtype_from_name(dt->as_string(), t.dtype)) throw tfail("unsupported dtype " + dt->as_string());
    uint64_t numel = 1;
    for (const auto& d : shape->items()) {
      if (!d.is_number()) throw tfail("shape entries must be integers");
      int64_t v;
      try { v = d.as_int64(); } catch (const std::exception&) { throw tfail("shape entries must be integers"); }
      if (v < 0) throw tfail("negative dimension in shape");
      t.shape.push_back(v);
      numel *= static_cast<uint64_t>(v);
    }
    uint64_t begin, end;
    try {
      begin = (*offsets)[0].as_uint64();
      end = (*offsets)[1].as_uint64();
    } catch (const std::exception&) {
      throw tfail("data_offsets must be non-negative integers");
    }
    if (end < begin) throw tfail("data_offsets end before begin");
    if (end > data_size) {
      throw tfail("truncated or corrupt file: data ends at " + std::to_string(end) + " but only " +
                  std::to_string(data_size) + " data bytes are present");
    }
    if (end - begin != numel * dtype_size(t.dtype)) {
      throw tfail("byte size " + std::to_string(end - begin) + " does not match shape and dtype (" +
                  std::to_string(numel * dtype_size(t.dtype)) + " bytes expected)");
    }
    t.bytes.assign(bytes.begin() + static_cast<std::ptrdiff_t>(data_start + begin),
                   bytes.begin() + static_cast<std::ptrdiff_t>(data_start + end));
    ranges.push_back({begin, end, out.tensors.size()});
    out.tensors.push_back(std::move(t));
  }
  std::sort(ranges.begin(), ranges.end(), [](const Range& a, const Range& b) { return a.begin < b.begin; });
  uint64_t cursor = 0;
  for (const auto& r : ranges) {
    if (r.begin < cursor) throw fail("tensor " + out.tensors[r.index].name + ": data overlaps another tensor");
    if (r.begin > cursor) throw fail("corrupt file: unindexed bytes before tensor " + out.tensors[r.index].name);
    cursor = r.end;
  }
  if (cursor != data_size) {
    throw fail("corrupt file: " + std::to_string(data_size - cursor) + " trailing bytes after the last tensor");
  }
  return out;
}

SafetensorsFile read_safetensors(const std::string& path) { return parse_safetensors(read_file(path), path); }

std::string serialize_safetensors(const SafetensorsFile& file) {
  json::Value header = json::Value::object();
  if (!file.metadata.empty()) {
    json::Value meta = json::Value::object();
    for (const auto& [k, v] : file.metadata) meta.set(k, v);
    header.set("__metadata__", meta);
  }
  uint64_t offset = 0;
  for (const auto& t : file.tensors) {
    if (static_cast<uint64_t>(t.numel()) * dtype_size(t.dtype) != t.bytes.size()) {
      throw std::runtime_error("tensor " + t.name + ": byte count does not match its shape and dtype");
    }
    if (header.has(t.name)) throw std::runtime_error("tensor " + t.name + ": duplicate name");
    json::Value entry = json::Value::object();
    entry.set("dtype", dtype_name(t.dtype));
    json::Value shape = json::Value::array();
    for (int64_t d : t.shape) shape.push_back(json::Value(d));
    entry.set("shape", shape);
    json::Value offs = json::Value::array();
    offs.push_back(json::Value(offset));
    offs.push_back(json::Value(offset + t.bytes.size()));
    entry.set("data_offsets", offs);
    header.set(t.name, entry);
    offset += t.bytes.size();
  }
  std::string header_text = json::dump(header);
  while ((header_text.size() + 8) % 8 != 0) header_text += ' ';  // align data to 8 bytes
  std::string out;
  out.reserve(8 + header_text.size() + offset);
  uint64_t len = header_text.size();
  for (int i = 0; i < 8; i++) out += static_cast<char>((len >> (8 * i)) & 0xFF);
  out += header_text;
  for (const auto& t : file.tensors) out.append(reinterpret_cast<const char*>(t.bytes.data()), t.bytes.size());
  return out;
}

void write_safetensors(const std::string& path, const SafetensorsFile& file) {
  write_file_atomic(path, serialize_safetensors(file));
}

StoredTensor tensor_from_floats(const std::string& name, const std::vector<int64_t>& shape, const float* data,
                                DType dtype) {
  StoredTensor t;
  t.name = name;
  t.dtype = dtype;
  t.shape = shape;
  int64_t n = t.numel();
  t.bytes.resize(static_cast<size_t>(n) * dtype_size(dtype));
  switch (dtype) {
    case DType::F32: std::memcpy(t.bytes.data(), data, static_cast<size_t>(n) * 4); break;
    case DType::BF16:
      for (int64_t i = 0; i < n; i++) { uint16_t b = float_to_bf16(data[i]); std::memcpy(t.bytes.data() + 2 * i, &b, 2); }
      break;
    case DType::F16:
      for (int64_t i = 0; i < n; i++) { uint16_t b = float_to_f16(data[i]); std::memcpy(t.bytes.data() + 2 * i, &b, 2); }
      break;
    default: throw std::runtime_error("tensor " + name + ": cannot write floats as " + dtype_name(dtype));
  }
  return t;
}

}  // namespace strata::io
