// CPU backend memory management and the process-wide CPU backend instance.
// Large blocks (activations of a training step, freed together when the step's arena clears) are
// kept in a size-keyed cache and handed out again to the next step: without it every step maps
// fresh pages from the OS and pays a page fault per 4 KiB (about a tenth of a tiny model's step).
// The cache holds at most kMaxCachedBytes; small blocks go straight to the C allocator.
// Kernels live in the per-family files cpu/<family>_cpu.cpp.
#include "cpu_backend.h"

#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <unordered_map>

#include "../core/error.h"

namespace strata {
namespace {

constexpr std::size_t kCachedBlockMin = 64 * 1024;          // smaller blocks are not cached
constexpr std::size_t kMaxCachedBytes = std::size_t{1} << 30;  // idle bytes kept for reuse

// Free blocks by size, and the size of every live cached-class block (to file it on release).
class BlockCache {
 public:
  void* take(std::size_t bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    // reuse a free block of the same size or up to 1/8 larger
    auto it = free_.lower_bound(bytes);
    void* pointer = nullptr;
    if (it != free_.end() && it->first <= bytes + bytes / 8) {
      pointer = it->second;
      cached_bytes_ -= it->first;
      bytes = it->first;
      free_.erase(it);
    } else {
      pointer = std::aligned_alloc(64, bytes);
      if (pointer == nullptr) return nullptr;
    }
    live_[pointer] = bytes;
    return pointer;
  }
  // True when the block belonged to the cache (then it is kept or freed here).
  bool give_back(void* pointer) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = live_.find(pointer);
    if (it == live_.end()) return false;
    const std::size_t bytes = it->second;
    live_.erase(it);
    if (cached_bytes_ + bytes > kMaxCachedBytes) {
      std::free(pointer);
    } else {
      free_.emplace(bytes, pointer);
      cached_bytes_ += bytes;
    }
    return true;
  }

 private:
  std::mutex mutex_;
  std::multimap<std::size_t, void*> free_;
  std::unordered_map<void*, std::size_t> live_;
  std::size_t cached_bytes_ = 0;
};

// Never destroyed: arenas released by other static destructors at exit may still return blocks.
BlockCache& block_cache() {
  static BlockCache* cache = new BlockCache;
  return *cache;
}

}  // namespace

void* CpuBackend::allocate(std::size_t bytes) {
  const std::size_t rounded = bytes == 0 ? 64 : (bytes + 63) / 64 * 64;
  void* pointer = rounded >= kCachedBlockMin ? block_cache().take(rounded) : std::aligned_alloc(64, rounded);
  STRATA_CHECK(pointer != nullptr, "cpu backend: out of memory allocating ", bytes, " bytes");
  return pointer;
}
void CpuBackend::release(void* pointer) {
  if (pointer != nullptr && !block_cache().give_back(pointer)) std::free(pointer);
}
void CpuBackend::fill_zero(void* pointer, std::size_t bytes) {
  if (bytes) std::memset(pointer, 0, bytes);
}
void CpuBackend::upload(void* device_destination, const void* host_source, std::size_t bytes) {
  if (bytes) std::memcpy(device_destination, host_source, bytes);
}
void CpuBackend::download(void* host_destination, const void* device_source, std::size_t bytes) {
  if (bytes) std::memcpy(host_destination, device_source, bytes);
}

Backend& cpu_backend() {
  static CpuBackend backend;
  return backend;
}

}  // namespace strata
