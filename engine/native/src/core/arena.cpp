// Arena implementation: named allocations from a Backend (zero-filled, or left to their first
// writer), freed all at once.
#include "arena.h"

#include <cstdlib>
#include <cstring>

namespace strata {

namespace {
bool env_on(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' && std::strcmp(v, "0") != 0;
}
}  // namespace

Arena::OverwrittenMode Arena::overwritten_mode() {
  static const OverwrittenMode mode = env_on("STRATA_ARENA_POISON") ? OverwrittenMode::Poison
                                      : env_on("STRATA_ARENA_ZERO") ? OverwrittenMode::Zero
                                                                     : OverwrittenMode::Uninitialized;
  return mode;
}

void* Arena::allocate(std::size_t bytes, Fill fill) {
  void* block = backend_->allocate(bytes == 0 ? 64 : bytes);
  STRATA_CHECK(block != nullptr, "arena: out of memory allocating ", bytes, " bytes on ", backend_->name());
  blocks_.push_back(block);
  bytes_ += bytes;
  const OverwrittenMode mode = fill == Fill::Zero ? OverwrittenMode::Zero : overwritten_mode();
  if (mode == OverwrittenMode::Zero) backend_->fill_zero(block, bytes);
  if (mode == OverwrittenMode::Poison) backend_->fill_bytes(block, bytes, 0xFF);  // float NaN in every element
  return block;
}

Tensor Arena::tensor(std::string name, std::initializer_list<int64_t> shape, Fill fill) {
  Tensor shaped(nullptr, shape, name);
  std::size_t bytes = static_cast<std::size_t>(shaped.numel()) * sizeof(float);
  Tensor out(static_cast<float*>(allocate(bytes, fill)), shape, std::move(name));
  entries_.push_back({out.name, out.shape_string(), bytes});
  return out;
}

TensorI32 Arena::tensor_i32(std::string name, std::initializer_list<int64_t> shape, Fill fill) {
  TensorI32 shaped(nullptr, shape, name);
  std::size_t bytes = static_cast<std::size_t>(shaped.numel()) * sizeof(int32_t);
  TensorI32 out(static_cast<int32_t*>(allocate(bytes, fill)), shape, std::move(name));
  entries_.push_back({out.name, out.shape_string(), bytes});
  return out;
}

void Arena::clear() {
  for (void* block : blocks_) backend_->release(block);
  blocks_.clear();
  entries_.clear();
  bytes_ = 0;
}

}  // namespace strata
