// SIMD path test (CTest `simd_paths`): the AVX2+FMA kernels (cpu/simd.h) against the scalar
// reference kernels on model-sized shapes, where the vector code runs its full-width blocks and its
// tails (the op harness checks the scalar kernels against fp64 references on small shapes, and runs
// again with STRATA_CPU_SIMD=scalar). Also the vector exp against std::exp over its whole range,
// the saturation ends and NaN. Every op runs once per path on the same inputs; outputs must agree
// to 2e-5 relative (norm of the difference over the norm of the scalar output) per tensor.
// On a CPU without AVX2 there is one path only, and the test says so and passes.
// Not a speed test.
#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "cpu/cpu_backend.h"
#include "cpu/simd.h"
#include "ops/activation.h"
#include "ops/attention.h"
#include "ops/conv1d.h"
#include "ops/cross_entropy.h"
#include "ops/gated_rmsnorm.h"
#include "ops/ssd.h"

using namespace strata;

namespace {

int g_failures = 0;
int g_checks = 0;
constexpr double kTolerance = 2e-5;

void fail(const std::string& what) {
  ++g_failures;
  std::printf("  FAIL %s\n", what.c_str());
}

struct Buffers {
  std::map<std::string, std::vector<float>> data;
  std::mt19937 rng{1234};
  Tensor random(const std::string& name, std::initializer_list<int64_t> shape, float lo = -1.0f, float hi = 1.0f) {
    Tensor t(nullptr, shape, name);
    std::uniform_real_distribution<float> dist(lo, hi);
    auto& v = data[name];
    v.resize(static_cast<size_t>(t.numel()));
    for (float& x : v) x = dist(rng);
    t.data = v.data();
    return t;
  }
  Tensor zeros(const std::string& name, std::initializer_list<int64_t> shape) {
    Tensor t(nullptr, shape, name);
    auto& v = data[name];
    v.assign(static_cast<size_t>(t.numel()), 0.0f);
    t.data = v.data();
    return t;
  }
};

// Runs `op` with the scalar kernels and with the AVX2 kernels (outputs re-zeroed in between) and
// compares every named output.
void compare_paths(const std::string& test, Buffers& buffers, const std::vector<std::string>& outputs,
                   const std::function<void()>& op) {
  std::map<std::string, std::vector<float>> scalar;
  set_cpu_simd_level("scalar");
  for (const auto& name : outputs) std::fill(buffers.data[name].begin(), buffers.data[name].end(), 0.0f);
  op();
  for (const auto& name : outputs) scalar[name] = buffers.data[name];
  set_cpu_simd_level("avx2-fma");
  for (const auto& name : outputs) std::fill(buffers.data[name].begin(), buffers.data[name].end(), 0.0f);
  op();
  bool ok = true;
  for (const auto& name : outputs) {
    const auto& want = scalar[name];
    const auto& got = buffers.data[name];
    double diff = 0.0, norm = 0.0;
    bool finite = true;
    for (size_t i = 0; i < want.size(); ++i) {
      finite = finite && std::isfinite(got[i]);
      diff += (double(got[i]) - want[i]) * (double(got[i]) - want[i]);
      norm += double(want[i]) * want[i];
    }
    ++g_checks;
    const double rel = std::sqrt(diff) / std::max(std::sqrt(norm), 1e-30);
    if (!finite || rel > kTolerance) {
      ok = false;
      fail(test + " / " + name + ": avx2 vs scalar relative difference " + std::to_string(rel));
    }
  }
  if (ok) std::printf("  ok   %s\n", test.c_str());
}

void test_exp() {
#if STRATA_SIMD_X86
  float worst = 0.0f;
  for (float x = -87.0f; x <= 88.5f; x += 0.0137f) {
    alignas(32) float in[8], out[8];
    for (int i = 0; i < 8; ++i) in[i] = x + 0.0017f * i;
    [&]() __attribute__((target("avx2,fma"))) { _mm256_store_ps(out, avx2::exp(_mm256_load_ps(in))); }();
    for (int i = 0; i < 8; ++i) {
      const double want = std::exp(double(in[i]));
      worst = std::max(worst, float(std::fabs(out[i] - want) / want));
    }
  }
  ++g_checks;
  if (worst > 4e-7f) fail("exp: worst relative error " + std::to_string(worst) + " over [-87, 88.5]");
  alignas(32) float ends[8] = {-1000.0f, -87.5f, 89.0f, 1000.0f, std::numeric_limits<float>::quiet_NaN(), 0.0f,
                               -std::numeric_limits<float>::infinity(), std::numeric_limits<float>::infinity()};
  alignas(32) float got[8];
  [&]() __attribute__((target("avx2,fma"))) { _mm256_store_ps(got, avx2::exp(_mm256_load_ps(ends))); }();
  ++g_checks;
  const bool ends_ok = got[0] == 0.0f && got[1] == 0.0f && std::isinf(got[2]) && std::isinf(got[3]) && std::isnan(got[4]) &&
                       got[5] == 1.0f && got[6] == 0.0f && std::isinf(got[7]);
  if (!ends_ok) fail("exp: saturation / NaN ends");
  else std::printf("  ok   exp (worst relative error %.2e)\n", worst);
#endif
}

void test_activation(Buffers& b) {
  for (ActivationKind kind : {ActivationKind::Relu2, ActivationKind::Silu, ActivationKind::Swiglu}) {
    const int64_t m = 301, f = 383, in_cols = kind == ActivationKind::Swiglu ? 2 * f : f;
    Tensor x = b.random("act.x", {m, in_cols}, -6.0f, 6.0f), dy = b.random("act.dy", {m, f});
    Tensor y = b.zeros("act.y", {m, f}), dx = b.zeros("act.dx", {m, in_cols});
    compare_paths(std::string("activation/") + activation_name(kind), b, {"act.y", "act.dx"}, [&] {
      activation_forward(cpu_backend(), {kind, y, x});
      activation_backward(cpu_backend(), {kind, dx, dy, x});
    });
  }
}

// (B, G) = (2, 2) splits the AVX2 backward over (batch, group); (1, 1) over heads.
void test_ssd(Buffers& b, int64_t B, int64_t G) {
  const int64_t T = 150, H = 4, P = 64, N = 32, L = 64, C = ssd_num_chunks(T, L);
  SsdFwd f;
  f.x = b.random("ssd.x", {B, T, H, P});
  f.dt_raw = b.random("ssd.dt_raw", {B, T, H}, -3.0f, 1.0f);
  f.dt_bias = b.random("ssd.dt_bias", {H}, -1.0f, 0.0f);
  f.a_log = b.random("ssd.a_log", {H}, 0.0f, 1.5f);
  f.b = b.random("ssd.b", {B, T, G, N});
  f.c = b.random("ssd.c", {B, T, G, N});
  f.d = b.random("ssd.d", {H});
  f.initial_state = b.random("ssd.h0", {B, H, P, N});
  f.y = b.zeros("ssd.y", {B, T, H, P});
  f.dt = b.zeros("ssd.dt", {B, T, H});
  f.chunk_states = b.zeros("ssd.states", {B * C, H, P, N});
  f.final_state = b.zeros("ssd.final", {B, H, P, N});
  f.params.chunk = L;
  SsdBwd g;
  g.dx = b.zeros("ssd.dx", {B, T, H, P});
  g.ddt_raw = b.zeros("ssd.ddt_raw", {B, T, H});
  g.ddt_bias = b.zeros("ssd.ddt_bias", {H});
  g.da_log = b.zeros("ssd.da_log", {H});
  g.db = b.zeros("ssd.db", {B, T, G, N});
  g.dc = b.zeros("ssd.dc", {B, T, G, N});
  g.dd = b.zeros("ssd.dd", {H});
  g.dinitial_state = b.zeros("ssd.dh0", {B, H, P, N});
  g.dy = b.random("ssd.dy", {B, T, H, P});
  g.dfinal_state = b.random("ssd.dfinal", {B, H, P, N});
  g.x = f.x, g.dt_raw = f.dt_raw, g.dt_bias = f.dt_bias, g.a_log = f.a_log, g.b = f.b, g.c = f.c, g.d = f.d;
  g.dt = f.dt, g.chunk_states = f.chunk_states, g.params = f.params;
  compare_paths("ssd/B" + std::to_string(B) + "_G" + std::to_string(G) + "_T150_P64_N32_L64", b,
                {"ssd.y", "ssd.dt", "ssd.states", "ssd.final", "ssd.dx", "ssd.ddt_raw", "ssd.ddt_bias", "ssd.da_log", "ssd.db",
                 "ssd.dc", "ssd.dd", "ssd.dh0"},
                [&] {
                  ssd_forward(cpu_backend(), f);
                  ssd_backward(cpu_backend(), g);
                });
}

void test_attention(Buffers& b) {
  for (int64_t window : {int64_t{0}, int64_t{40}}) {
    const int64_t B = 2, T = 150, H = 6, Hkv = 2, P = 32;
    Tensor q = b.random("att.q", {B, T, H, P}, -2.0f, 2.0f), k = b.random("att.k", {B, T, Hkv, P}, -2.0f, 2.0f);
    Tensor v = b.random("att.v", {B, T, Hkv, P}), dout = b.random("att.dout", {B, T, H, P});
    Tensor out = b.zeros("att.out", {B, T, H, P}), lse = b.zeros("att.lse", {B, H, T});
    Tensor dq = b.zeros("att.dq", {B, T, H, P}), dk = b.zeros("att.dk", {B, T, Hkv, P}), dv = b.zeros("att.dv", {B, T, Hkv, P});
    compare_paths("attention/T150_P32" + std::string(window ? "_window40" : ""), b,
                  {"att.out", "att.lse", "att.dq", "att.dk", "att.dv"}, [&] {
                    attention_forward(cpu_backend(), {out, lse, q, k, v, 0.0f, window});
                    attention_backward(cpu_backend(), {dq, dk, dv, dout, q, k, v, out, lse, 0.0f, window});
                  });
  }
}

void test_conv1d(Buffers& b) {
  const int64_t B = 2, T = 97, C = 203, K = 4;
  Tensor x = b.random("conv.x", {B, T, C}), w = b.random("conv.w", {C, K}), bias = b.random("conv.bias", {C});
  Tensor dy = b.random("conv.dy", {B, T, C});
  Tensor y = b.zeros("conv.y", {B, T, C}), dx = b.zeros("conv.dx", {B, T, C}), dw = b.zeros("conv.dw", {C, K});
  Tensor dbias = b.zeros("conv.dbias", {C});
  compare_paths("conv1d/C203_K4_silu", b, {"conv.y", "conv.dx", "conv.dw", "conv.dbias"}, [&] {
    conv1d_forward(cpu_backend(), {y, x, w, bias, true});
    conv1d_backward(cpu_backend(), {dx, dw, dbias, dy, x, w, bias, true});
  });
}

void test_gated_rmsnorm(Buffers& b) {
  for (bool before : {false, true}) {
    const int64_t M = 157, Di = 390, G = 2;
    Tensor y = b.random("gn.y", {M, Di}, -2.0f, 2.0f), z = b.random("gn.z", {M, Di}, -4.0f, 4.0f);
    Tensor w = b.random("gn.w", {Di}, 0.5f, 1.5f), dout = b.random("gn.dout", {M, Di});
    Tensor out = b.zeros("gn.out", {M, Di}), rstd = b.zeros("gn.rstd", {M, G});
    Tensor dy = b.zeros("gn.dy", {M, Di}), dz = b.zeros("gn.dz", {M, Di}), dw = b.zeros("gn.dw", {Di});
    compare_paths(std::string("gated_rmsnorm/") + (before ? "norm_before_gate" : "gate_then_norm"), b,
                  {"gn.out", "gn.rstd", "gn.dy", "gn.dz", "gn.dw"}, [&] {
                    gated_rmsnorm_forward(cpu_backend(), {out, rstd, y, z, w, G, before, 1e-5f});
                    gated_rmsnorm_backward(cpu_backend(), {dy, dz, dw, dout, y, z, w, rstd, G, before});
                  });
  }
}

void test_cross_entropy(Buffers& b) {
  const int64_t M = 301, V = 267;
  Tensor logits = b.random("ce.logits", {M, V}, -8.0f, 8.0f);
  std::vector<int32_t> target_ids(M);
  for (int64_t i = 0; i < M; ++i) target_ids[i] = i % 17 == 0 ? -100 : static_cast<int32_t>((i * 31) % V);
  TensorI32 targets(target_ids.data(), {M}, "ce.targets");
  Tensor losses = b.zeros("ce.losses", {M}), lse = b.zeros("ce.lse", {M}), dlogits = b.zeros("ce.dlogits", {M, V});
  compare_paths("cross_entropy/V267_ignore", b, {"ce.losses", "ce.lse", "ce.dlogits"}, [&] {
    cross_entropy_forward(cpu_backend(), {losses, lse, logits, targets, -100});
    cross_entropy_backward(cpu_backend(), {dlogits, logits, lse, targets, 0.5f, -100});
  });
}

}  // namespace

int main() {
  const auto levels = cpu_simd_levels();
  if (levels.front() != "avx2-fma") {
    std::printf("this CPU has no AVX2+FMA: only the scalar kernels exist, nothing to compare\n");
    return 0;
  }
  Buffers buffers;
  test_exp();
  test_activation(buffers);
  test_ssd(buffers, 2, 2);
  test_ssd(buffers, 1, 1);
  test_attention(buffers);
  test_conv1d(buffers);
  test_gated_rmsnorm(buffers);
  test_cross_entropy(buffers);
  std::printf("%d checks, %d failures\n", g_checks, g_failures);
  return g_failures == 0 ? 0 : 1;
}
