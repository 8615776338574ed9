// GPU timing tool (not a test: it asserts nothing about time): GEMM throughput of the CUDA backend
// in fp32, bf16 and fp8 e4m3 modes on LLM-shaped problems, measured end to end from the engine's
// float32 tensors (operand conversion included) and, for comparison in the same run, the CPU GEMM
// on the smallest shape; plus forward+backward timings of the SSD scan and attention on CPU and GPU;
// plus causal GQA attention at the ~1B / ~125M model layers (fp32 kernels vs bf16 tensor-core
// kernels, forward and backward apart) and the decode step at 16k context. `strata_cuda_bench
// attention` runs only the attention tables.
// Device memory mode (no per-op synchronization); wall time over repeated calls after a warm-up,
// with a synchronize before and after. Prints a Markdown table. Run by scripts/gpu/visit.sh.
#include <chrono>
#include <cstdio>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "core/arena.h"
#include "cpu/cpu_backend.h"
#include "cuda/cuda_backend.h"
#include "ops/attention.h"
#include "ops/gemm.h"
#include "ops/ssd.h"

using namespace strata;

namespace {

std::mt19937_64 g_rng(7);

Tensor filled(Arena& arena, const std::string& name, std::initializer_list<int64_t> shape, float lo, float hi) {
  Tensor t = arena.tensor(name, shape);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> host(static_cast<size_t>(t.numel()));
  for (float& v : host) v = dist(g_rng);
  arena.backend().upload(t.data, host.data(), host.size() * sizeof(float));
  return t;
}

// Seconds per call: warm-up, then enough repetitions for ~0.3 s (at most `max_reps`).
double seconds_per_call(Backend& backend, const std::function<void()>& call, int max_reps = 50) {
  call();
  backend.synchronize();
  auto now = [] { return std::chrono::steady_clock::now(); };
  auto start = now();
  call();
  backend.synchronize();
  const double once = std::chrono::duration<double>(now() - start).count();
  const int reps = std::max(1, std::min(max_reps, static_cast<int>(0.3 / std::max(once, 1e-6))));
  start = now();
  for (int i = 0; i < reps; ++i) call();
  backend.synchronize();
  return std::chrono::duration<double>(now() - start).count() / reps;
}

void gemm_table(CudaBackend& gpu) {
  struct Shape {
    const char* label;
    int64_t m, n, k;
    bool ta, tb;
  };
  const Shape shapes[] = {{"fprop 8k tok x 4096 -> 4096", 8192, 4096, 4096, false, true},
                          {"fprop 8k tok x 2688 -> 10304 (Nano in_proj)", 8192, 10304, 2688, false, true},
                          {"dgrad 8k tok x 4096 <- 4096", 8192, 4096, 4096, false, false},
                          {"wgrad 4096 x 4096 over 8k tok", 4096, 4096, 8192, true, false},
                          {"square 2048", 2048, 2048, 2048, false, true}};
  std::printf("\n| GEMM (M x N x K) | fp32 TFLOP/s | bf16 TFLOP/s | fp8 TFLOP/s | bf16/fp32 | fp8/bf16 |\n");
  std::printf("|---|---|---|---|---|---|\n");
  const CudaGemmMode modes[] = {CudaGemmMode::Fp32, CudaGemmMode::Bf16, CudaGemmMode::Fp8E4m3};
  for (const Shape& s : shapes) {
    Arena arena(gpu);
    Tensor a = filled(arena, "a", {s.ta ? s.k : s.m, s.ta ? s.m : s.k}, -1, 1);
    Tensor b = filled(arena, "b", {s.tb ? s.n : s.k, s.tb ? s.k : s.n}, -0.05f, 0.05f);
    Tensor c = arena.tensor("c", {s.m, s.n});
    double tflops[3];
    for (int i = 0; i < 3; ++i) {
      gpu.set_gemm_mode(modes[i]);
      try {
        const double sec = seconds_per_call(gpu, [&] {
          gemm(gpu, gemm_call(s.m, s.n, s.k, a.data, s.ta, b.data, s.tb, c.data, 0.0f, GemmTag{}));
        });
        tflops[i] = 2.0 * s.m * s.n * s.k / sec / 1e12;
      } catch (const std::exception& error) {
        std::fprintf(stderr, "%s gemm failed: %s\n", cuda_gemm_mode_name(modes[i]), error.what());
        tflops[i] = 0.0;
      }
    }
    std::printf("| %s (%lld x %lld x %lld) | %.1f | %.1f | %.1f | %.2fx | %.2fx |\n", s.label, (long long)s.m,
                (long long)s.n, (long long)s.k, tflops[0], tflops[1], tflops[2], tflops[1] / tflops[0],
                tflops[2] / tflops[1]);
  }
  gpu.set_gemm_mode(CudaGemmMode::Fp32);
  // CPU peer in the same run, on the smallest shape
  Arena ca(cpu_backend()), ga(gpu);
  const int64_t m = 1024, n = 1024, k = 1024;
  Tensor a = filled(ca, "a", {m, k}, -1, 1), b = filled(ca, "b", {n, k}, -1, 1), c = ca.tensor("c", {m, n});
  Tensor ag = filled(ga, "a", {m, k}, -1, 1), bg = filled(ga, "b", {n, k}, -1, 1), cg = ga.tensor("c", {m, n});
  const double cpu_sec = seconds_per_call(cpu_backend(), [&] {
    gemm(cpu_backend(), gemm_call(m, n, k, a.data, false, b.data, true, c.data, 0.0f, GemmTag{}));
  }, 5);
  gpu.set_gemm_mode(CudaGemmMode::Bf16);
  const double gpu_sec = seconds_per_call(gpu, [&] {
    gemm(gpu, gemm_call(m, n, k, ag.data, false, bg.data, true, cg.data, 0.0f, GemmTag{}));
  });
  gpu.set_gemm_mode(CudaGemmMode::Fp32);
  std::printf("\nCPU GEMM 1024^3 (%s kernel): %.1f GFLOP/s; GPU bf16 same shape: %.1f GFLOP/s (%.0fx)\n",
              cpu_gemm_kernel_name(), 2.0 * m * n * k / cpu_sec / 1e9, 2.0 * m * n * k / gpu_sec / 1e9,
              cpu_sec / gpu_sec);
}

void op_table(CudaBackend& gpu) {
  std::printf("\n| op (fwd+bwd) | shape | CPU ms | GPU ms | speedup |\n|---|---|---|---|---|\n");
  const int64_t b = 4, t = 1024, h = 16, p = 64, g = 2, n = 64, chunk = 128, chunks = ssd_num_chunks(t, chunk);
  auto ssd_time = [&](Backend& be) {
    Arena ar(be);
    Tensor x = filled(ar, "x", {b, t, h, p}, -1, 1), dt_raw = filled(ar, "dt_raw", {b, t, h}, -3, 0);
    Tensor dt_bias = filled(ar, "dt_bias", {h}, -1, 0), a_log = filled(ar, "a_log", {h}, 0, 1.5f);
    Tensor bm = filled(ar, "b", {b, t, g, n}, -1, 1), cm = filled(ar, "c", {b, t, g, n}, -1, 1);
    Tensor y = ar.tensor("y", {b, t, h, p}), dt = ar.tensor("dt", {b, t, h}), st = ar.tensor("st", {b * chunks, h, p, n});
    Tensor dy = filled(ar, "dy", {b, t, h, p}, -1, 1), dx = ar.tensor("dx", {b, t, h, p});
    Tensor ddt = ar.tensor("ddt", {b, t, h}), ddtb = ar.tensor("ddtb", {h}), dal = ar.tensor("dal", {h});
    Tensor db = ar.tensor("db", {b, t, g, n}), dc = ar.tensor("dc", {b, t, g, n});
    SsdParams params;
    params.chunk = chunk;
    return seconds_per_call(be, [&] {
      SsdFwd f;
      f.y = y, f.dt = dt, f.chunk_states = st, f.x = x, f.dt_raw = dt_raw, f.dt_bias = dt_bias, f.a_log = a_log;
      f.b = bm, f.c = cm, f.params = params;
      ssd_forward(be, f);
      SsdBwd k;
      k.dx = dx, k.ddt_raw = ddt, k.ddt_bias = ddtb, k.da_log = dal, k.db = db, k.dc = dc, k.dy = dy, k.x = x;
      k.dt_raw = dt_raw, k.dt_bias = dt_bias, k.a_log = a_log, k.b = bm, k.c = cm, k.dt = dt, k.chunk_states = st;
      k.params = params;
      ssd_backward(be, k);
    }, 5);
  };
  const double ssd_cpu = ssd_time(cpu_backend()), ssd_gpu = ssd_time(gpu);
  std::printf("| ssd scan | B4 T1024 H16 P64 N64 G2 L128 | %.1f | %.2f | %.0fx |\n", ssd_cpu * 1e3, ssd_gpu * 1e3,
              ssd_cpu / ssd_gpu);
  const int64_t ah = 16, akv = 4, ap = 64;
  auto attn_time = [&](Backend& be) {
    Arena ar(be);
    Tensor q = filled(ar, "q", {b, t, ah, ap}, -1, 1), k = filled(ar, "k", {b, t, akv, ap}, -1, 1);
    Tensor v = filled(ar, "v", {b, t, akv, ap}, -1, 1), out = ar.tensor("out", {b, t, ah, ap});
    Tensor lse = ar.tensor("lse", {b, ah, t}), dout = filled(ar, "dout", {b, t, ah, ap}, -1, 1);
    Tensor dq = ar.tensor("dq", {b, t, ah, ap}), dk = ar.tensor("dk", {b, t, akv, ap}), dv = ar.tensor("dv", {b, t, akv, ap});
    return seconds_per_call(be, [&] {
      attention_forward(be, {out, lse, q, k, v, 0.0f, 0});
      attention_backward(be, {dq, dk, dv, dout, q, k, v, out, lse, 0.0f, 0});
    }, 5);
  };
  const double at_cpu = attn_time(cpu_backend()), at_gpu = attn_time(gpu);
  std::printf("| causal GQA attention | B4 T1024 H16 Hkv4 P64 | %.1f | %.2f | %.0fx |\n", at_cpu * 1e3, at_gpu * 1e3,
              at_cpu / at_gpu);
}

// Forward and backward apart, fp32 mode (the fp32 kernels) and bf16 mode (the tensor-core kernels).
// TFLOP/s counts the causal half of the score matrix: forward 4 B H T^2 P / 2 FLOP, backward 2.5x
// that (the usual convention: five products instead of two).
void attention_table(CudaBackend& gpu) {
  struct Shape {
    const char* label;
    int64_t b, t, h, hkv, p;
  };
  const Shape shapes[] = {{"~1B layer", 4, 2048, 16, 4, 128}, {"~125M layer", 8, 2048, 12, 4, 64}};
  std::printf("\n| attention | shape | mode | fwd ms | fwd TFLOP/s | bwd ms | bwd TFLOP/s |\n|---|---|---|---|---|---|---|\n");
  const CudaGemmMode saved = gpu.gemm_mode();
  for (const Shape& s : shapes) {
    Arena ar(gpu);
    Tensor q = filled(ar, "q", {s.b, s.t, s.h, s.p}, -1, 1), k = filled(ar, "k", {s.b, s.t, s.hkv, s.p}, -1, 1);
    Tensor v = filled(ar, "v", {s.b, s.t, s.hkv, s.p}, -1, 1), out = ar.tensor("out", {s.b, s.t, s.h, s.p});
    Tensor lse = ar.tensor("lse", {s.b, s.h, s.t}), dout = filled(ar, "dout", {s.b, s.t, s.h, s.p}, -1, 1);
    Tensor dq = ar.tensor("dq", {s.b, s.t, s.h, s.p}), dk = ar.tensor("dk", {s.b, s.t, s.hkv, s.p});
    Tensor dv = ar.tensor("dv", {s.b, s.t, s.hkv, s.p});
    const double flops = 4.0 * s.b * s.h * double(s.t) * s.t * s.p / 2;
    for (CudaGemmMode mode : {CudaGemmMode::Fp32, CudaGemmMode::Bf16}) {
      gpu.set_gemm_mode(mode);
      const double fwd = seconds_per_call(gpu, [&] { attention_forward(gpu, {out, lse, q, k, v, 0.0f, 0}); }, 20);
      const double bwd = seconds_per_call(
          gpu, [&] { attention_backward(gpu, {dq, dk, dv, dout, q, k, v, out, lse, 0.0f, 0}); }, 20);
      std::printf("| %s | B%lld T%lld H%lld Hkv%lld P%lld | %s | %.3f | %.1f | %.3f | %.1f |\n", s.label,
                  (long long)s.b, (long long)s.t, (long long)s.h, (long long)s.hkv, (long long)s.p,
                  cuda_gemm_mode_name(mode), fwd * 1e3, flops / fwd / 1e12, bwd * 1e3, 2.5 * flops / bwd / 1e12);
    }
  }
  gpu.set_gemm_mode(saved);
  // decode: one token per sequence against a KV cache filled up to `position`
  struct DecodeShape {
    const char* label;
    int64_t b, context, h, hkv, p;
  };
  const DecodeShape decodes[] = {{"decode hybrid layer", 8, 16384, 16, 2, 64}, {"~1B layer", 8, 16384, 16, 4, 128}};
  std::printf("\n| attention decode | shape | ms | KV GB/s |\n|---|---|---|---|\n");
  for (const DecodeShape& s : decodes) {
    Arena ar(gpu);
    Tensor q = filled(ar, "q", {s.b, s.h, s.p}, -1, 1), out = ar.tensor("out", {s.b, s.h, s.p});
    Tensor kn = filled(ar, "k_new", {s.b, s.hkv, s.p}, -1, 1), vn = filled(ar, "v_new", {s.b, s.hkv, s.p}, -1, 1);
    Tensor kc = filled(ar, "k_cache", {s.b, s.context, s.hkv, s.p}, -1, 1);
    Tensor vc = filled(ar, "v_cache", {s.b, s.context, s.hkv, s.p}, -1, 1);
    const int64_t position = s.context - 1;
    const double sec = seconds_per_call(gpu, [&] {
      attention_decode(gpu, {out, q, kn, vn, kc, vc, position, 0.0f, 0});
    }, 200);
    const double bytes = 2.0 * s.b * (position + 1) * s.hkv * s.p * sizeof(float);
    std::printf("| %s | B%lld ctx %lld H%lld Hkv%lld P%lld | %.4f | %.0f |\n", s.label, (long long)s.b,
                (long long)s.context, (long long)s.h, (long long)s.hkv, (long long)s.p, sec * 1e3, bytes / sec / 1e9);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const bool attention_only = argc > 1 && std::string(argv[1]) == "attention";
  if (!cuda_device_present()) {
    std::printf("no CUDA device: nothing to time\n");
    return 1;
  }
  try {
    CudaBackendOptions options;
    options.memory = CudaMemoryMode::Device;
    CudaBackend gpu(options);
    std::printf("device %s\n", gpu.device_description().c_str());
    if (!attention_only) {
      gemm_table(gpu);
      op_table(gpu);
    }
    attention_table(gpu);
  } catch (const std::exception& error) {
    std::printf("error: %s\n", error.what());
    return 1;
  }
  return 0;
}
