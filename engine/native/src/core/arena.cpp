// Arena implementation: zero-filled, named allocations from a Backend, freed all at once.
#include "arena.h"

namespace strata {

void* Arena::allocate_zeroed(std::size_t bytes) {
  void* block = backend_->allocate(bytes == 0 ? 64 : bytes);
  STRATA_CHECK(block != nullptr, "arena: out of memory allocating ", bytes, " bytes on ", backend_->name());
  backend_->fill_zero(block, bytes);
  blocks_.push_back(block);
  bytes_ += bytes;
  return block;
}

Tensor Arena::tensor(std::string name, std::initializer_list<int64_t> shape) {
  Tensor shaped(nullptr, shape, name);
  std::size_t bytes = static_cast<std::size_t>(shaped.numel()) * sizeof(float);
  Tensor out(static_cast<float*>(allocate_zeroed(bytes)), shape, std::move(name));
  entries_.push_back({out.name, out.shape_string(), bytes});
  return out;
}

TensorI32 Arena::tensor_i32(std::string name, std::initializer_list<int64_t> shape) {
  TensorI32 shaped(nullptr, shape, name);
  std::size_t bytes = static_cast<std::size_t>(shaped.numel()) * sizeof(int32_t);
  TensorI32 out(static_cast<int32_t*>(allocate_zeroed(bytes)), shape, std::move(name));
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
