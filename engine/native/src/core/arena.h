// Arena: owns the memory behind tensors for one purpose (a model's parameters, one step's
// activations, a decode cache) and frees it all at once. Every tensor it hands out is named and
// remembered, so profiles and memory reports can list the named intermediates. A tensor is
// zero-filled unless the caller asks for Fill::Overwritten: its first writer sets every element
// (a GEMM with beta 0, an activation, a norm, a copy...), so filling it first would be wasted work.
// Environment switches (read once per process):
//   STRATA_ARENA_ZERO=1    Overwritten tensors are zero-filled as well (the old behaviour).
//   STRATA_ARENA_POISON=1  Overwritten tensors are filled with NaN (bytes 0xFF) on every backend, so a
//                          reader that runs before the first full write shows up as NaN in tests.
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
  // Zero: the tensor starts as zeros (accumulators, partially written tensors).
  // Overwritten: the first op writing it sets every element; its contents start undefined.
  enum class Fill { Zero, Overwritten };
  // What Overwritten allocations get (from STRATA_ARENA_ZERO / STRATA_ARENA_POISON).
  enum class OverwrittenMode { Uninitialized, Zero, Poison };
  static OverwrittenMode overwritten_mode();

  explicit Arena(Backend& backend) : backend_(&backend) {}
  ~Arena() { clear(); }
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  Tensor tensor(std::string name, std::initializer_list<int64_t> shape, Fill fill = Fill::Zero);
  TensorI32 tensor_i32(std::string name, std::initializer_list<int64_t> shape, Fill fill = Fill::Zero);

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
  void* allocate(std::size_t bytes, Fill fill);

  Backend* backend_;
  std::vector<void*> blocks_;
  std::vector<Entry> entries_;
  std::size_t bytes_ = 0;
};

}  // namespace strata
