// CPU backend memory management and the process-wide CPU backend instance.
// Kernels live in the per-family files cpu/<family>_cpu.cpp.
#include "cpu_backend.h"

#include <cstdlib>
#include <cstring>

#include "../core/error.h"

namespace strata {

void* CpuBackend::allocate(std::size_t bytes) {
  std::size_t rounded = (bytes + 63) / 64 * 64;
  void* pointer = std::aligned_alloc(64, rounded == 0 ? 64 : rounded);
  STRATA_CHECK(pointer != nullptr, "cpu backend: out of memory allocating ", bytes, " bytes");
  return pointer;
}
void CpuBackend::release(void* pointer) { std::free(pointer); }
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
