// ParameterMemory: which allocations hold parameter values, and a generation that changes whenever
// one of them may have been written. A backend that keeps derived copies of parameters (the CUDA
// backend's packed bf16 GEMM operands) stores the generation with each copy and reuses the copy
// only while the generation is unchanged. Writers call note_write() with the destination of a write
// (an upload, a copy, an elementwise op) or note_update() for an optimizer step; adding or removing
// parameter memory also changes the generation, so an address reused by a new parameter never
// matches an old copy. Thread-safe. Not a cache itself, and not an allocator.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <map>
#include <mutex>

namespace strata {

class ParameterMemory {
 public:
  void add(const void* pointer, std::size_t bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (bytes == 0) return;
    ranges_[address(pointer)] = bytes;
    ++generation_;
  }
  // Forgets the allocation starting at `pointer`; returns its size (0 when it was not parameter memory).
  std::size_t remove(const void* pointer) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = ranges_.find(address(pointer));
    if (it == ranges_.end()) return 0;
    const std::size_t bytes = it->second;
    ranges_.erase(it);
    ++generation_;
    return bytes;
  }
  // True when [pointer, pointer + bytes) lies inside one parameter allocation.
  bool covers(const void* pointer, std::size_t bytes) const {
    std::lock_guard<std::mutex> lock(mutex_);
    const uintptr_t begin = address(pointer);
    auto it = ranges_.upper_bound(begin);
    if (it == ranges_.begin()) return false;
    --it;
    return begin + bytes <= it->first + it->second;
  }
  // A write of [pointer, pointer + bytes): changes the generation when it touches parameter memory.
  void note_write(const void* pointer, std::size_t bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    const uintptr_t begin = address(pointer), end = begin + bytes;
    auto it = ranges_.lower_bound(end);  // first range starting at or after the end
    if (bytes == 0 || it == ranges_.begin()) return;
    --it;  // the last range starting before the end
    if (it->first + it->second > begin) ++generation_;
  }
  // A write to parameters that names no single range (an optimizer step).
  void note_update() {
    std::lock_guard<std::mutex> lock(mutex_);
    ++generation_;
  }
  uint64_t generation() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return generation_;
  }

 private:
  static uintptr_t address(const void* pointer) { return reinterpret_cast<uintptr_t>(pointer); }

  mutable std::mutex mutex_;
  std::map<uintptr_t, std::size_t> ranges_;  // start -> bytes, non-overlapping allocations
  uint64_t generation_ = 0;
};

}  // namespace strata
