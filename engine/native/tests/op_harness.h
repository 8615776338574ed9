// The op harness's framework (op_harness.cpp has the how-to-add-an-op recipe and main; the tests are
// in op_harness.cpp and op_harness_sequence.cpp): the tolerances, the per-backend context (upload,
// download, comparisons that count checks and report failures, finite-difference gradient checks)
// and small helpers for references. Not a test framework for anything but the op harness.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "core/arena.h"
#include "cpu/cpu_backend.h"
#include "ops/activation.h"
#include "ops/adamw.h"
#include "ops/attention.h"
#include "ops/conv1d.h"
#include "ops/cross_entropy.h"
#include "ops/elementwise.h"
#include "ops/embedding.h"
#include "ops/gated_rmsnorm.h"
#include "ops/gemm.h"
#include "ops/linear.h"
#include "ops/moe.h"
#include "ops/quant.h"
#include "ops/rmsnorm.h"
#include "ops/ssd.h"
#ifdef STRATA_HAVE_CUDA
#include "cuda/cuda_backend.h"
#endif

namespace strata::harness {


using Vec = std::vector<double>;
using Inputs = std::map<std::string, Vec>;
using Reference = std::function<Vec(const Inputs&)>;

struct Tolerance {
  double atol, rtol;
};
constexpr Tolerance kForwardF32{2e-5, 2e-4};
constexpr Tolerance kGradientF32{1e-4, 1e-3};
// bf16 tensor-core results: atol is a fraction of the largest |want| of the compared tensor.
constexpr Tolerance kForwardBf16{1e-2, 1e-2};
constexpr Tolerance kGradientBf16{2e-2, 2e-2};
constexpr double kFiniteDifferenceStep = 1e-6;

inline int g_failures = 0;
inline int g_checks = 0;

// One backend under test: memory helpers and comparisons that report failures with context.
struct Ctx {
  Backend& backend;
  Arena arena;
  std::mt19937_64 rng{1234};
  std::string test;

  explicit Ctx(Backend& be) : backend(be), arena(be) {}

  Vec random(int64_t n, double lo = -1.0, double hi = 1.0) {
    std::uniform_real_distribution<double> dist(lo, hi);
    Vec v(n);
    for (double& x : v) x = dist(rng);
    return v;
  }
  Tensor up(const std::string& name, std::initializer_list<int64_t> shape, const Vec& values) {
    Tensor t = arena.tensor(name, shape);
    STRATA_CHECK(static_cast<int64_t>(values.size()) == t.numel(), "harness: ", name, " has ", values.size(),
                 " values for shape ", t.shape_string());
    std::vector<float> host(values.begin(), values.end());
    backend.upload(t.data, host.data(), host.size() * sizeof(float));
    return t;
  }
  Tensor zeros(const std::string& name, std::initializer_list<int64_t> shape) { return arena.tensor(name, shape); }
  TensorI32 up_i32(const std::string& name, std::initializer_list<int64_t> shape, const std::vector<int32_t>& values) {
    TensorI32 t = arena.tensor_i32(name, shape);
    backend.upload(t.data, values.data(), values.size() * sizeof(int32_t));
    return t;
  }
  Vec down(const Tensor& t) {
    std::vector<float> host(t.numel());
    backend.download(host.data(), t.data, host.size() * sizeof(float));
    return Vec(host.begin(), host.end());
  }
  std::vector<int32_t> down_i32(const TensorI32& t) {
    std::vector<int32_t> host(t.numel());
    backend.download(host.data(), t.data, host.size() * sizeof(int32_t));
    return host;
  }

  void expect_close(const std::string& what, const Vec& got, const Vec& want, Tolerance tol) {
    ++g_checks;
    if (got.size() != want.size()) {
      std::printf("  FAIL %s / %s: %zu values, expected %zu\n", test.c_str(), what.c_str(), got.size(), want.size());
      ++g_failures;
      return;
    }
    double worst = 0.0;
    size_t worst_index = 0;
    bool ok = true;
    for (size_t i = 0; i < got.size(); ++i) {
      const double err = std::fabs(got[i] - want[i]);
      const double allowed = tol.atol + tol.rtol * std::fabs(want[i]);
      if (!(err <= allowed) || !std::isfinite(got[i])) {  // NaN / inf never pass
        if (ok || !(err <= worst)) worst_index = i;
        ok = false;
      }
      if (err > worst) worst = err;
    }
    if (!ok) {
      std::printf("  FAIL %s / %s: index %zu got %.9g want %.9g (max abs err %.3g)\n", test.c_str(), what.c_str(),
                  worst_index, got[worst_index], want[worst_index], worst);
      ++g_failures;
    }
  }
  void expect_true(const std::string& what, bool condition) {
    ++g_checks;
    if (!condition) {
      std::printf("  FAIL %s / %s\n", test.c_str(), what.c_str());
      ++g_failures;
    }
  }

  // Central differences of L = sum(upstream * ref(inputs)) w.r.t. each input named in analytic.
  void check_gradients(Inputs inputs, const Reference& ref, const Vec& upstream,
                       const std::map<std::string, Vec>& analytic) {
    auto loss = [&](const Inputs& in) {
      Vec out = ref(in);
      STRATA_CHECK(out.size() == upstream.size(), "harness: reference returned ", out.size(), " outputs, upstream has ",
                   upstream.size());
      double l = 0.0;
      for (size_t i = 0; i < out.size(); ++i) l += upstream[i] * out[i];
      return l;
    };
    for (const auto& [name, grad] : analytic) {
      Vec& x = inputs.at(name);
      Vec numeric(x.size());
      for (size_t i = 0; i < x.size(); ++i) {
        const double saved = x[i];
        x[i] = saved + kFiniteDifferenceStep;
        const double plus = loss(inputs);
        x[i] = saved - kFiniteDifferenceStep;
        const double minus = loss(inputs);
        x[i] = saved;
        numeric[i] = (plus - minus) / (2 * kFiniteDifferenceStep);
      }
      expect_close("d" + name, grad, numeric, kGradientF32);
    }
  }
};

// Rounds values to float32, so references see exactly the inputs the backend sees.
inline Vec f32(Vec v) {
  for (double& x : v) x = static_cast<float>(x);
  return v;
}
inline Vec concat(Vec a, const Vec& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}
// atol as a fraction of the largest |want| (the bf16 tolerances)
inline Tolerance relative_to_max(const Vec& want, Tolerance tol) {
  double largest = 0.0;
  for (double x : want) largest = std::max(largest, std::fabs(x));
  return {tol.atol * largest, tol.rtol};
}

// Row-pitched operands: a (rows, cols) block at column col0 of a (rows, ld) row-major buffer.
inline Vec embed_columns(Vec buffer, const Vec& block, int64_t rows, int64_t cols, int64_t ld, int64_t col0) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) buffer[r * ld + col0 + c] = block[r * cols + c];
  return buffer;
}
inline Vec extract_columns(const Vec& buffer, int64_t rows, int64_t cols, int64_t ld, int64_t col0) {
  Vec block(rows * cols);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) block[r * cols + c] = buffer[r * ld + col0 + c];
  return block;
}
// A pitched block's buffer must come back unchanged outside the block (the op touches only its columns).
inline void expect_outside_unchanged(Ctx& ctx, const std::string& what, const Vec& after, const Vec& before, int64_t rows,
                              int64_t cols, int64_t ld, int64_t col0) {
  const Vec restored = embed_columns(after, extract_columns(before, rows, cols, ld, col0), rows, cols, ld, col0);
  ctx.expect_close(what + " outside its columns", restored, before, {0.0, 0.0});
}
inline double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }
inline double softplus(double x) { return std::log1p(std::exp(x)); }

// The tests of op_harness_sequence.cpp (Mamba-2 SSD, attention, MoE).
void test_ssd(Ctx& ctx);
void test_ssd_step(Ctx& ctx);
void test_attention(Ctx& ctx);
void test_attention_head_dims(Ctx& ctx);
void test_rope(Ctx& ctx);
void test_moe_router(Ctx& ctx);
void test_moe_dispatch(Ctx& ctx);
void test_moe_expert_gemm(Ctx& ctx);

}  // namespace strata::harness
