// Run-time choice of the CPU kernels' SIMD level (see simd.h): AVX2+FMA when the CPU has it, unless
// the environment variable STRATA_CPU_SIMD=scalar or set_cpu_simd_level("scalar") selects the
// portable scalar reference (the op harness runs both).
#include "simd.h"

#include <atomic>
#include <cstdlib>

#include "../core/error.h"

namespace strata {
namespace {

bool cpu_has_avx2_fma() {
#if STRATA_SIMD_X86
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

std::atomic<bool>& avx2_active() {
  static std::atomic<bool> active{[] {
    if (!cpu_has_avx2_fma()) return false;
    const char* wanted = std::getenv("STRATA_CPU_SIMD");
    return !(wanted && std::string(wanted) == "scalar");
  }()};
  return active;
}

}  // namespace

bool cpu_simd_avx2() { return avx2_active().load(std::memory_order_relaxed); }

const char* cpu_simd_level() { return cpu_simd_avx2() ? "avx2-fma" : "scalar"; }

std::vector<std::string> cpu_simd_levels() {
  std::vector<std::string> levels;
  if (cpu_has_avx2_fma()) levels.emplace_back("avx2-fma");
  levels.emplace_back("scalar");
  return levels;
}

void set_cpu_simd_level(const std::string& name) {
  if (name == "scalar") {
    avx2_active().store(false);
  } else if (name == "avx2-fma" && cpu_has_avx2_fma()) {
    avx2_active().store(true);
  } else {
    throw Error("set_cpu_simd_level: level '" + name + "' is not supported on this CPU (supported: avx2-fma when the CPU has AVX2 and FMA, scalar)");
  }
}

}  // namespace strata
