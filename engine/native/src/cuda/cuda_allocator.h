// The CUDA backend's caching allocator: blocks released by the engine (arena clears between steps)
// are kept in size-bucketed free lists and handed out again, so a training step after the first
// makes no cudaMalloc calls. Sizes round up to 512 bytes (small) or 2 MiB multiples (large), which
// keeps every block 256-byte aligned for vectorized and cuBLASLt access.
// This is not a stream-ordered allocator (the backend uses one stream and synchronizes where the
// host reuses memory) and it never splits or merges blocks.
#pragma once

#include <cstddef>
#include <map>
#include <mutex>
#include <unordered_map>

#include "cuda_backend.h"

namespace strata {

class CachingAllocator {
 public:
  explicit CachingAllocator(CudaMemoryMode mode) : mode_(mode) {}
  ~CachingAllocator();
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  void* allocate(std::size_t bytes);
  void release(void* pointer);  // nullptr is a no-op; unknown pointers raise
  void empty_cache();
  CudaAllocatorStats stats() const;
  static std::size_t rounded_size(std::size_t bytes);

 private:
  CudaMemoryMode mode_;
  mutable std::mutex mutex_;
  std::multimap<std::size_t, void*> free_blocks_;      // size -> block
  std::unordered_map<void*, std::size_t> live_blocks_;  // block -> size
  CudaAllocatorStats stats_;
};

}  // namespace strata
