// GEMM benchmark (not a test): GFLOP/s of the CPU GEMM for each micro-kernel this CPU supports, on
// the shapes a small hybrid model trains with (fprop / dgrad / wgrad layouts), and the ratio to a
// plain triple-loop peer measured in the same run. Usage: strata_gemm_bench [repeats]
// Prints one line per (shape, kernel); wall-clock numbers are for reading, never asserted.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "cpu/cpu_backend.h"
#include "ops/gemm.h"

using namespace strata;

namespace {

struct Shape {
  const char* label;
  int64_t m, n, k;
  bool trans_a, trans_b;
};

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// The peer: i-p-j loops, compiler-vectorized, single thread, same layouts.
void naive_gemm(const Shape& s, const float* a, const float* b, float* c) {
  for (int64_t i = 0; i < s.m; ++i) {
    float* row = c + i * s.n;
    for (int64_t j = 0; j < s.n; ++j) row[j] = 0.0f;
    for (int64_t p = 0; p < s.k; ++p) {
      float av = s.trans_a ? a[p * s.m + i] : a[i * s.k + p];
      if (s.trans_b) {
        for (int64_t j = 0; j < s.n; ++j) row[j] += av * b[j * s.k + p];
      } else {
        const float* brow = b + p * s.n;
        for (int64_t j = 0; j < s.n; ++j) row[j] += av * brow[j];
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  int repeats = argc > 1 ? std::atoi(argv[1]) : 5;
  const Shape shapes[] = {
      {"fprop 512x1024x1024", 512, 1024, 1024, false, true},
      {"dgrad 512x1024x1024", 512, 1024, 1024, false, false},
      {"wgrad 1024x1024x512", 1024, 1024, 512, true, false},
      {"square 1024", 1024, 1024, 1024, false, false},
      {"head 256x8192x512", 256, 8192, 512, false, true},
      {"skinny 64x2048x2048", 64, 2048, 2048, false, true},
  };
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  Backend& cpu = cpu_backend();
  std::printf("%-24s %-9s %10s %10s %8s\n", "shape", "kernel", "GFLOP/s", "peer", "ratio");
  for (const Shape& s : shapes) {
    std::vector<float> a(s.m * s.k), b(s.k * s.n), c(s.m * s.n);
    for (float& x : a) x = dist(rng);
    for (float& x : b) x = dist(rng);
    double flops = 2.0 * s.m * s.n * s.k;
    auto start = std::chrono::steady_clock::now();
    naive_gemm(s, a.data(), b.data(), c.data());
    double peer = flops / seconds_since(start) / 1e9;
    for (const std::string& kernel : cpu_gemm_kernels()) {
      set_cpu_gemm_kernel(kernel);
      GemmCall call = gemm_call(s.m, s.n, s.k, a.data(), s.trans_a, b.data(), s.trans_b, c.data(), 0.0f,
                                GemmTag{GemmPass::Other, "bench", -1, 0});
      gemm(cpu, call);  // warm-up (packing buffers, page faults)
      double best = 1e30;
      for (int r = 0; r < repeats; ++r) {
        start = std::chrono::steady_clock::now();
        gemm(cpu, call);
        best = std::min(best, seconds_since(start));
      }
      double rate = flops / best / 1e9;
      std::printf("%-24s %-9s %10.1f %10.1f %7.1fx\n", s.label, kernel.c_str(), rate, peer, rate / peer);
    }
  }
  return 0;
}
