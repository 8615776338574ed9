// safetensors reader and writer for weights, gradients and optimizer state.
//
// Format: 8-byte little-endian header length, a JSON header
// {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}}, then the data
// bytes (offsets relative to the end of the header). Supported dtypes: F32, BF16, F16, F64, I64,
// I32, U8 (F32/BF16/F16/F64 convert to float). Reads validate everything (lengths, offsets, dtype
// sizes, overlap, holes, trailing bytes) and name the file and the tensor in errors. Writes are
// atomic (files.h). It is not a memory-mapped or lazy loader: tensors are read whole.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace strata::io {

enum class DType { F32, BF16, F16, F64, I64, I32, U8 };

const char* dtype_name(DType dtype);
size_t dtype_size(DType dtype);

struct StoredTensor {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;  // little-endian element data

  int64_t numel() const;
  /** Element values as float (F32/BF16/F16/F64 only); throws naming the tensor otherwise. */
  std::vector<float> to_float() const;
};

struct SafetensorsFile {
  std::vector<StoredTensor> tensors;  // in file order
  std::map<std::string, std::string> metadata;

  /** nullptr when absent. */
  const StoredTensor* find(const std::string& name) const;
  /** Throws "FILE: missing tensor NAME" when absent. */
  const StoredTensor& get(const std::string& name, const std::string& file_label) const;
};

/** Reads and validates a safetensors file; errors name the path (and the tensor where relevant). */
SafetensorsFile read_safetensors(const std::string& path);
/** Parses safetensors bytes already in memory; `label` names them in errors. */
SafetensorsFile parse_safetensors(const std::string& bytes, const std::string& label);

/** Serializes (tensors in the given order, header keys sorted as written). */
std::string serialize_safetensors(const SafetensorsFile& file);
/** Atomic write (temp + fsync + rename). */
void write_safetensors(const std::string& path, const SafetensorsFile& file);

/** Builds a tensor from floats, converting to F32 or BF16 (round to nearest even) or F16. */
StoredTensor tensor_from_floats(const std::string& name, const std::vector<int64_t>& shape, const float* data,
                                DType dtype = DType::F32);

/** bf16 <-> float conversions (round to nearest even; NaN stays NaN). */
uint16_t float_to_bf16(float f);
float bf16_to_float(uint16_t b);
float f16_to_float(uint16_t h);
uint16_t float_to_f16(float f);

}  // namespace strata::io
