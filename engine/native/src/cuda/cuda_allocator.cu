// Caching allocator of the CUDA backend (see cuda_allocator.h): bucketed free lists over
// cudaMallocManaged / cudaMalloc blocks, statistics, and emptying the cache (also on out-of-memory,
// once, before giving up).
#include <cuda_runtime.h>

#include "../core/error.h"
#include "cuda_allocator.h"

namespace strata {

namespace {
constexpr std::size_t kSmallRounding = 512;
constexpr std::size_t kLargeThreshold = std::size_t(1) << 20;
constexpr std::size_t kLargeRounding = std::size_t(2) << 20;
}  // namespace

std::size_t CachingAllocator::rounded_size(std::size_t bytes) {
  if (bytes == 0) bytes = 1;
  const std::size_t unit = bytes >= kLargeThreshold ? kLargeRounding : kSmallRounding;
  return (bytes + unit - 1) / unit * unit;
}

CachingAllocator::~CachingAllocator() {
  // The CUDA runtime may already be shut down at process exit; errors are ignored here.
  for (auto& [size, block] : free_blocks_) cudaFree(block);
  for (auto& [block, size] : live_blocks_) cudaFree(block);
}

void* CachingAllocator::allocate(std::size_t bytes) {
  const std::size_t size = rounded_size(bytes);
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = free_blocks_.lower_bound(size);
  // Reuse a cached block of the same size, or a larger one that wastes at most a quarter.
  if (it != free_blocks_.end() && it->first <= size + size / 4) {
    void* block = it->second;
    const std::size_t block_size = it->first;
    free_blocks_.erase(it);
    live_blocks_[block] = block_size;
    stats_.cached_bytes -= block_size;
    stats_.live_bytes += block_size;
    stats_.peak_bytes = std::max(stats_.peak_bytes, stats_.live_bytes);
    ++stats_.reuses;
    return block;
  }
  void* block = nullptr;
  auto raw_allocate = [&]() {
    return mode_ == CudaMemoryMode::Managed ? cudaMallocManaged(&block, size, cudaMemAttachGlobal)
                                            : cudaMalloc(&block, size);
  };
  cudaError_t status = raw_allocate();
  if (status == cudaErrorMemoryAllocation && !free_blocks_.empty()) {
    cudaGetLastError();  // clear the sticky-free error state of the failed call
    for (auto& [cached_size, cached] : free_blocks_) cudaFree(cached);
    free_blocks_.clear();
    stats_.cached_bytes = 0;
    status = raw_allocate();
  }
  if (status != cudaSuccess) {
    cudaGetLastError();
    throw Error(detail::concat("cuda backend: out of GPU memory allocating ", bytes, " bytes (",
                               stats_.live_bytes, " bytes live): ", cudaGetErrorString(status)));
  }
  live_blocks_[block] = size;
  stats_.live_bytes += size;
  stats_.peak_bytes = std::max(stats_.peak_bytes, stats_.live_bytes);
  ++stats_.device_allocations;
  return block;
}

void CachingAllocator::release(void* pointer) {
  if (pointer == nullptr) return;
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = live_blocks_.find(pointer);
  STRATA_CHECK(it != live_blocks_.end(), "cuda backend: release of a pointer this allocator did not hand out");
  const std::size_t size = it->second;
  live_blocks_.erase(it);
  free_blocks_.emplace(size, pointer);
  stats_.live_bytes -= size;
  stats_.cached_bytes += size;
}

void CachingAllocator::empty_cache() {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& [size, block] : free_blocks_) cudaFree(block);
  free_blocks_.clear();
  stats_.cached_bytes = 0;
}

CudaAllocatorStats CachingAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

}  // namespace strata
