// Arena: owns the memory behind tensors for one purpose (a model's parameters, one step's
// activations, a decode cache) and frees it all at once. Every tensor it hands out is zero-filled,
// named, and remembered, so profiles and memory reports can list the named intermediates.
// Memory comes from a Backend, so the same code allocates on CPU or on a GPU.
// This is not a caching allocator and not a liveness planner: memory is freed only by clear() or
// destruction.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <string>
#include <vector>

#include "backend.h"
#include "tensor.h"

namespace strata {

class Arena {
 public:
  explicit Arena(Backend& backend) : backend_(&backend) {}
  ~Arena() { clear(); }
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  Tensor tensor(std::string name, std::initializer_list<int64_t> shape);
  TensorI32 tensor_i32(std::string name, std::initializer_list<int64_t> shape);

  // Frees every allocation; tensors handed out before become dangling.
  void clear();

  struct Entry {
    std::string name;
    std::string shape;
    std::size_t bytes;
  };
  const std::vector<Entry>& entries() const { return entries_; }
  std::size_t bytes() const { return bytes_; }
  Backend& backend() const { return *backend_; }

 private:
  void* allocate_zeroed(std::size_t bytes);

  Backend* backend_;
  std::vector<void*> blocks_;
  std::vector<Entry> entries_;
  std::size_t bytes_ = 0;
};

}  // namespace strata
