// GEMM benchmark (not a test): GFLOP/s of the CPU GEMM for each micro-kernel this CPU supports, on
// the shapes a small hybrid model trains with (fprop / dgrad / wgrad layouts), and the ratio to a
// plain triple-loop peer measured in the same run.
// Usage: strata_gemm_bench [repeats] [--shapes LABEL:M,N,K,TA,TB;...] [--best-only] [--json]
//   --shapes     replace the built-in shapes (TA/TB: 0 or 1 = operand stored transposed)
//   --best-only  only the best kernel of this CPU (the one training uses), no triple-loop peer
//   --json       one JSON object per (shape, kernel) line instead of the table
// Wall-clock numbers are for reading (scripts/bench/train-bench.py uses --json), never asserted.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "cpu/cpu_backend.h"
#include "ops/gemm.h"

using namespace strata;

namespace {

struct Shape {
  std::string label;
  int64_t m, n, k;
  bool trans_a, trans_b;
};

struct Options {
  int repeats = 5;
  bool best_only = false;
  bool json = false;
  std::vector<Shape> shapes{
      {"fprop 512x1024x1024", 512, 1024, 1024, false, true},
      {"dgrad 512x1024x1024", 512, 1024, 1024, false, false},
      {"wgrad 1024x1024x512", 1024, 1024, 512, true, false},
      {"square 1024", 1024, 1024, 1024, false, false},
      {"head 256x8192x512", 256, 8192, 512, false, true},
      {"skinny 64x2048x2048", 64, 2048, 2048, false, true},
  };
};

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// "LABEL:M,N,K,TA,TB" -> Shape; raises with the offending text on malformed input.
Shape parse_shape(const std::string& text) {
  const size_t colon = text.find(':');
  if (colon == std::string::npos) throw std::invalid_argument("--shapes: '" + text + "' has no 'LABEL:' prefix");
  Shape s{text.substr(0, colon), 0, 0, 0, false, false};
  std::vector<int64_t> values;
  std::stringstream fields(text.substr(colon + 1));
  std::string field;
  while (std::getline(fields, field, ',')) {
    size_t used = 0;
    long long v = -1;
    try {
      v = std::stoll(field, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != field.size() || v < 0) throw std::invalid_argument("--shapes: '" + text + "': '" + field + "' is not a non-negative integer");
    values.push_back(v);
  }
  if (values.size() != 5 || values[3] > 1 || values[4] > 1 || values[0] == 0 || values[1] == 0 || values[2] == 0) {
    throw std::invalid_argument("--shapes: '" + text + "' expected LABEL:M,N,K,TA,TB with M,N,K > 0 and TA,TB in {0,1}");
  }
  s.m = values[0], s.n = values[1], s.k = values[2], s.trans_a = values[3] == 1, s.trans_b = values[4] == 1;
  return s;
}

Options parse_options(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--best-only") {
      o.best_only = true;
    } else if (arg == "--json") {
      o.json = true;
    } else if (arg == "--shapes") {
      if (i + 1 >= argc) throw std::invalid_argument("--shapes needs a value");
      o.shapes.clear();
      std::stringstream list(argv[++i]);
      std::string item;
      while (std::getline(list, item, ';')) {
        if (!item.empty()) o.shapes.push_back(parse_shape(item));
      }
      if (o.shapes.empty()) throw std::invalid_argument("--shapes: no shape given");
    } else {
      o.repeats = std::atoi(arg.c_str());
      if (o.repeats <= 0) throw std::invalid_argument("repeats: expected a positive integer, got '" + arg + "'");
    }
  }
  return o;
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
  Options options;
  try {
    options = parse_options(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "strata_gemm_bench: %s\n", e.what());
    return 2;
  }
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  Backend& cpu = cpu_backend();
  std::vector<std::string> kernels = cpu_gemm_kernels();
  if (options.best_only) kernels.resize(1);
  if (!options.json) std::printf("%-24s %-9s %10s %10s %8s\n", "shape", "kernel", "GFLOP/s", "peer", "ratio");
  for (const Shape& s : options.shapes) {
    std::vector<float> a(s.m * s.k), b(s.k * s.n), c(s.m * s.n);
    for (float& x : a) x = dist(rng);
    for (float& x : b) x = dist(rng);
    const double flops = 2.0 * s.m * s.n * s.k;
    double peer = 0.0;
    if (!options.best_only) {
      const auto start = std::chrono::steady_clock::now();
      naive_gemm(s, a.data(), b.data(), c.data());
      peer = flops / seconds_since(start) / 1e9;
    }
    for (const std::string& kernel : kernels) {
      set_cpu_gemm_kernel(kernel);
      GemmCall call = gemm_call(s.m, s.n, s.k, a.data(), s.trans_a, b.data(), s.trans_b, c.data(), 0.0f,
                                GemmTag{GemmPass::Other, "bench", -1, 0});
      gemm(cpu, call);  // warm-up (packing buffers, page faults)
      double best = 1e30;
      for (int r = 0; r < options.repeats; ++r) {
        const auto start = std::chrono::steady_clock::now();
        gemm(cpu, call);
        best = std::min(best, seconds_since(start));
      }
      const double rate = flops / best / 1e9;
      if (options.json) {
        std::printf("{\"shape\":\"%s\",\"m\":%lld,\"n\":%lld,\"k\":%lld,\"kernel\":\"%s\",\"gflops\":%.3f}\n", s.label.c_str(),
                    static_cast<long long>(s.m), static_cast<long long>(s.n), static_cast<long long>(s.k), kernel.c_str(), rate);
      } else if (options.best_only) {
        std::printf("%-24s %-9s %10.1f %10s %8s\n", s.label.c_str(), kernel.c_str(), rate, "-", "-");
      } else {
        std::printf("%-24s %-9s %10.1f %10.1f %7.1fx\n", s.label.c_str(), kernel.c_str(), rate, peer, rate / peer);
      }
    }
  }
  return 0;
}
