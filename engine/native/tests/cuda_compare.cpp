// CPU-vs-CUDA comparison at training-sized shapes (the op harness checks every op family against
// float64 references at small shapes; this tool checks that the CUDA kernels agree with the CPU
// backend where tiles, chunks and grids are large), plus the GEMM modes with per-dtype tolerances:
//   metric: relative error ||cuda - cpu||_2 / ||cpu||_2 over the whole output (GEMMs with beta 0
//   start from a NaN-filled C on the GPU: C must never be read)
//   fp32 ops and fp32 GEMM: <= 1e-4;  bf16 GEMM: <= 1.5e-2;  fp8 e4m3 GEMM: <= 8e-2
//   bf16 tensor-core attention (bf16 GEMM mode, head dims 64 / 128): out 1e-2, lse 2e-3, grads 2e-2
//   grouped expert GEMM (moe_expert_gemm): fp32 mode <= 1e-4, bf16 tensor cores <= 1.5e-2
// Weight packs: bf16 GEMMs whose weight lies in parameter memory (fprop and dgrad layouts, and a
// recorded CUDA graph replayed) must follow every change of the weight (upload, axpy, adamw_step):
// each is compared with the CPU at the bf16 limit, so a stale pack fails.
// And the GPU quantize-dequantize (cuda/quant_cuda.h) against quant::fake_quantize: bit-identical
// (every NaN counts as equal to every NaN).
// Prints one line per check and exits 1 on any failure (or when no GPU is present, which makes the
// comparison impossible). Run by scripts/gpu/visit.sh on the GPU machine; not a CTest test.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "core/arena.h"
#include "cpu/cpu_backend.h"
#include "cuda/cuda_backend.h"
#include "cuda/quant_cuda.h"
#include "ops/adamw.h"
#include "ops/attention.h"
#include "ops/conv1d.h"
#include "ops/elementwise.h"
#include "ops/gemm.h"
#include "ops/moe.h"
#include "ops/rmsnorm.h"
#include "ops/ssd.h"

using namespace strata;

namespace {

int g_failures = 0;
std::mt19937_64 g_rng(2024);

std::vector<float> random_values(int64_t n, float lo = -1.0f, float hi = 1.0f) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = dist(g_rng);
  return v;
}

// The same named tensors on both backends.
struct Pair {
  Arena cpu{cpu_backend()};
  Arena gpu;
  explicit Pair(Backend& cuda) : gpu(cuda) {}
  struct Both {
    Tensor c, g;
  };
  Both make(const std::string& name, std::initializer_list<int64_t> shape, const std::vector<float>* values) {
    Both t{cpu.tensor(name, shape), gpu.tensor(name, shape)};
    if (values) {
      cpu.backend().upload(t.c.data, values->data(), values->size() * sizeof(float));
      gpu.backend().upload(t.g.data, values->data(), values->size() * sizeof(float));
    }
    return t;
  }
};

std::vector<float> download(Backend& backend, const Tensor& t) {
  std::vector<float> host(static_cast<size_t>(t.numel()));
  backend.download(host.data(), t.data, host.size() * sizeof(float));
  return host;
}

void compare(const std::string& what, const std::vector<float>& want, const std::vector<float>& got, double limit) {
  double diff = 0.0, norm = 0.0;
  bool finite = true;
  for (size_t i = 0; i < want.size(); ++i) {
    finite = finite && std::isfinite(got[i]);
    diff += (static_cast<double>(got[i]) - want[i]) * (static_cast<double>(got[i]) - want[i]);
    norm += static_cast<double>(want[i]) * want[i];
  }
  const double rel = std::sqrt(diff) / std::max(std::sqrt(norm), 1e-30);
  const bool ok = finite && rel <= limit;
  if (!ok) ++g_failures;
  std::printf("%-4s %-58s rel_err %.3e (limit %.1e)\n", ok ? "ok" : "FAIL", what.c_str(), rel, limit);
}
void compare(const std::string& what, CudaBackend& cuda, const Pair::Both& t, double limit) {
  compare(what, download(cpu_backend(), t.c), download(cuda, t.g), limit);
}

void gemm_modes(CudaBackend& cuda) {
  struct Shape {
    int64_t m, n, k;
    bool ta, tb;
  };
  const Shape shapes[] = {{512, 768, 1024, false, true}, {1000, 600, 300, false, false}, {640, 1024, 2048, true, false},
                          {4096, 256, 64, false, true},   {33, 77, 250, true, true}};
  const std::pair<CudaGemmMode, double> modes[] = {
      {CudaGemmMode::Fp32, 1e-4}, {CudaGemmMode::Bf16, 1.5e-2}, {CudaGemmMode::Fp8E4m3, 8e-2}};
  const CudaGemmMode saved = cuda.gemm_mode();
  for (const Shape& s : shapes) {
    Pair p(cuda);
    const int64_t a_rows = s.ta ? s.k : s.m, a_cols = s.ta ? s.m : s.k;
    const int64_t b_rows = s.tb ? s.n : s.k, b_cols = s.tb ? s.k : s.n;
    std::vector<float> av = random_values(a_rows * a_cols), bv = random_values(b_rows * b_cols, -0.05f, 0.05f);
    std::vector<float> cv = random_values(s.m * s.n);
    auto a = p.make("a", {a_rows, a_cols}, &av), b = p.make("b", {b_rows, b_cols}, &bv);
    for (const auto& [mode, limit] : modes) {
      for (float beta : {0.0f, 1.0f}) {
        auto c = p.make("c", {s.m, s.n}, &cv);
        if (beta == 0.0f) cuda.fill_bytes(c.g.data, sizeof(float) * static_cast<size_t>(s.m * s.n), 0xFF);  // NaN: never read
        gemm(cpu_backend(), gemm_call(s.m, s.n, s.k, a.c.data, s.ta, b.c.data, s.tb, c.c.data, beta, GemmTag{}));
        cuda.set_gemm_mode(mode);
        char what[160];
        try {
          gemm(cuda, gemm_call(s.m, s.n, s.k, a.g.data, s.ta, b.g.data, s.tb, c.g.data, beta, GemmTag{}));
        } catch (const std::exception& error) {
          std::printf("FAIL gemm %s m%lld n%lld k%lld: %s\n", cuda_gemm_mode_name(mode), (long long)s.m,
                      (long long)s.n, (long long)s.k, error.what());
          ++g_failures;
          continue;
        }
        std::snprintf(what, sizeof what, "gemm %s m%lld n%lld k%lld ta%d tb%d beta%g",
                      cuda_gemm_mode_name(cuda.effective_gemm_mode()), (long long)s.m, (long long)s.n,
                      (long long)s.k, s.ta, s.tb, beta);
        compare(what, cuda, c, limit);
      }
    }
  }
  cuda.set_gemm_mode(saved);
}

// The grouped expert GEMM at training-like sizes (uneven experts, one empty, R = 4000 rows) and at
// decode sizes (R = 16 rows over 16 experts; R = 20 with K = 1540: Fprop on the GEMV path, Dgrad
// split-K), fp32 mode against the CPU within 1e-4 and bf16 (tensor cores) within 1.5e-2, all three passes.
void moe_expert_gemm_case(CudaBackend& cuda, int64_t in, int64_t o, const std::vector<int32_t>& off) {
  const int64_t e = static_cast<int64_t>(off.size()) - 1, r = off.back();
  const CudaGemmMode saved = cuda.gemm_mode();
  for (const auto& [mode, limit] : {std::pair{CudaGemmMode::Fp32, 1e-4}, std::pair{CudaGemmMode::Bf16, 1.5e-2}}) {
    Pair p(cuda);
    auto xv = random_values(r * in), wv = random_values(e * o * in, -0.05f, 0.05f), dyv = random_values(r * o);
    auto dw0 = random_values(e * o * in, -0.01f, 0.01f);
    auto x = p.make("x", {r, in}, &xv), w = p.make("w", {e, o, in}, &wv), dy = p.make("dy", {r, o}, &dyv);
    auto y = p.make("y", {r, o}, nullptr), dx = p.make("dx", {r, in}, nullptr), dw = p.make("dw", {e, o, in}, &dw0);
    TensorI32 off_c = p.cpu.tensor_i32("offsets", {e + 1}), off_g = p.gpu.tensor_i32("offsets", {e + 1});
    cpu_backend().upload(off_c.data, off.data(), off.size() * sizeof(int32_t));
    cuda.upload(off_g.data, off.data(), off.size() * sizeof(int32_t));
    cuda.set_gemm_mode(mode);
    for (auto [be, side] : {std::pair<Backend*, int>{&cpu_backend(), 0}, std::pair<Backend*, int>{&cuda, 1}}) {
      auto pick = [&](const Pair::Both& t) { return side == 0 ? t.c : t.g; };
      const TensorI32& offsets = side == 0 ? off_c : off_g;
      moe_expert_gemm(*be, {GemmPass::Fprop, pick(y), pick(x), pick(w), offsets});
      moe_expert_gemm(*be, {GemmPass::Dgrad, pick(dx), pick(dy), pick(w), offsets});
      moe_expert_gemm(*be, {GemmPass::Wgrad, pick(dw), pick(dy), pick(x), offsets});
    }
    const std::string tag = std::string("moe expert gemm R") + std::to_string(r) + " " + cuda_gemm_mode_name(mode);
    compare(tag + " fprop", cuda, y, limit);
    compare(tag + " dgrad", cuda, dx, limit);
    compare(tag + " wgrad (accumulated)", cuda, dw, limit);
  }
  cuda.set_gemm_mode(saved);
}
void moe_expert_gemm_large(CudaBackend& cuda) {
  moe_expert_gemm_case(cuda, 384, 640, {0, 700, 700, 1500, 1501, 2600, 3000, 3900, 4000});
  moe_expert_gemm_case(cuda, 1024, 1024, {0, 2, 2, 3, 5, 5, 6, 8, 9, 9, 10, 12, 12, 13, 14, 16, 16});
  // the Fprop GEMV path: K over one 1024-input chunk, an expert over one 8-row chunk, N not a multiple of 16
  moe_expert_gemm_case(cuda, 1540, 1000, {0, 1, 12, 12, 20});
}

void rmsnorm_large(CudaBackend& cuda) {
  Pair p(cuda);
  const int64_t m = 4096, d = 1536;
  auto xv = random_values(m * d), rv = random_values(m * d), wv = random_values(d, 0.5f, 1.5f), gv = random_values(m * d);
  auto x = p.make("x", {m, d}, &xv), r = p.make("res", {m, d}, &rv), w = p.make("w", {d}, &wv);
  auto y = p.make("y", {m, d}, nullptr), s = p.make("s", {m, d}, nullptr), rstd = p.make("rstd", {m}, nullptr);
  rmsnorm_forward(cpu_backend(), {y.c, rstd.c, x.c, w.c, r.c, s.c, 1e-5f});
  rmsnorm_forward(cuda, {y.g, rstd.g, x.g, w.g, r.g, s.g, 1e-5f});
  compare("rmsnorm+residual forward (4096x1536)", cuda, y, 1e-5);
  auto dy = p.make("dy", {m, d}, &gv), dx = p.make("dx", {m, d}, nullptr), dw = p.make("dw", {d}, nullptr);
  rmsnorm_backward(cpu_backend(), {dx.c, dw.c, dy.c, s.c, w.c, rstd.c, false});
  rmsnorm_backward(cuda, {dx.g, dw.g, dy.g, s.g, w.g, rstd.g, false});
  compare("rmsnorm backward dx", cuda, dx, 1e-5);
  compare("rmsnorm backward dw", cuda, dw, 1e-5);
}

void conv_large(CudaBackend& cuda) {
  Pair p(cuda);
  const int64_t b = 4, t = 512, c = 1280, k = 4;
  auto xv = random_values(b * t * c), wv = random_values(c * k), bv = random_values(c), gv = random_values(b * t * c);
  auto x = p.make("x", {b, t, c}, &xv), w = p.make("w", {c, k}, &wv), bias = p.make("bias", {c}, &bv);
  auto y = p.make("y", {b, t, c}, nullptr);
  conv1d_forward(cpu_backend(), {y.c, x.c, w.c, bias.c, true});
  conv1d_forward(cuda, {y.g, x.g, w.g, bias.g, true});
  compare("conv1d+silu forward (4x512x1280, k4)", cuda, y, 1e-5);
  auto dy = p.make("dy", {b, t, c}, &gv), dx = p.make("dx", {b, t, c}, nullptr);
  auto dw = p.make("dw", {c, k}, nullptr), db = p.make("db", {c}, nullptr);
  conv1d_backward(cpu_backend(), {dx.c, dw.c, db.c, dy.c, x.c, w.c, bias.c, true});
  conv1d_backward(cuda, {dx.g, dw.g, db.g, dy.g, x.g, w.g, bias.g, true});
  compare("conv1d backward dx", cuda, dx, 1e-5);
  compare("conv1d backward dw", cuda, dw, 1e-4);
  compare("conv1d backward dbias", cuda, db, 1e-4);
}

// SSD at (B2, T, H, P, N, G, L): the grouped kernels (default; the backward's chunk gradients as batched
// products when every chunk is full) or the per-head ones (STRATA_CUDA_SSD=tiled).
// In a bf16 GEMM mode the grouped kernels run the chunk products on bf16 tensor cores (fp32
// accumulation), the chunk states and their gradients included: limits 1e-2 for y, the final state,
// dx, dB, dC and 2e-2 for the dt / A_log gradients (a float64 emulation of the kernels' bf16 operand
// rounding at these shapes gives 2e-3 .. 5e-3 relative); dD stays an fp32 product (1e-4), as does
// everything in fp32 mode.
void ssd_large(CudaBackend& cuda, int64_t t, int64_t chunk, int64_t h = 8, int64_t pd = 32, int64_t n = 32,
               int64_t g = 2, CudaGemmMode mode = CudaGemmMode::Fp32) {
  Pair p(cuda);
  const CudaGemmMode saved = cuda.gemm_mode();
  cuda.set_gemm_mode(mode);
  const bool bf16 = mode != CudaGemmMode::Fp32;
  const double products = bf16 ? 1e-2 : 1e-4, scalars = bf16 ? 2e-2 : 1e-4;
  const int64_t b = 2, chunks = ssd_num_chunks(t, chunk);
  auto xv = random_values(b * t * h * pd), dtv = random_values(b * t * h, -3.0f, 0.0f);
  auto dtbv = random_values(h, -1.0f, 0.0f), alv = random_values(h, 0.0f, 1.5f);
  auto bv = random_values(b * t * g * n), cv = random_values(b * t * g * n), dv = random_values(h);
  auto x = p.make("x", {b, t, h, pd}, &xv), dt_raw = p.make("dt_raw", {b, t, h}, &dtv);
  auto dt_bias = p.make("dt_bias", {h}, &dtbv), a_log = p.make("a_log", {h}, &alv);
  auto bm = p.make("b", {b, t, g, n}, &bv), cm = p.make("c", {b, t, g, n}, &cv), d = p.make("d", {h}, &dv);
  auto y = p.make("y", {b, t, h, pd}, nullptr), dt = p.make("dt", {b, t, h}, nullptr);
  auto states = p.make("states", {b * chunks, h, pd, n}, nullptr), fin = p.make("final", {b, h, pd, n}, nullptr);
  SsdParams params;
  params.chunk = chunk;
  auto fwd = [&](Backend& be, bool gpu) {
    auto pick = [&](const Pair::Both& t2) { return gpu ? t2.g : t2.c; };
    SsdFwd f;
    f.y = pick(y), f.dt = pick(dt), f.chunk_states = pick(states), f.final_state = pick(fin), f.x = pick(x);
    f.dt_raw = pick(dt_raw), f.dt_bias = pick(dt_bias), f.a_log = pick(a_log), f.b = pick(bm), f.c = pick(cm);
    f.d = pick(d), f.params = params;
    ssd_forward(be, f);
  };
  fwd(cpu_backend(), false);
  fwd(cuda, true);
  char what[128];
  std::snprintf(what, sizeof what, "ssd forward y (B2 T%lld H%lld P%lld N%lld G%lld L%lld %s)", (long long)t,
                (long long)h, (long long)pd, (long long)n, (long long)g, (long long)chunk, cuda_gemm_mode_name(mode));
  compare(what, cuda, y, products);
  compare("ssd forward final state", cuda, fin, bf16 ? products : 1e-4);
  auto gyv = random_values(b * t * h * pd);
  auto dy = p.make("dy", {b, t, h, pd}, &gyv);
  auto dx = p.make("dx", {b, t, h, pd}, nullptr), ddt = p.make("ddt_raw", {b, t, h}, nullptr);
  auto ddtb = p.make("ddt_bias", {h}, nullptr), dal = p.make("da_log", {h}, nullptr);
  auto db = p.make("db", {b, t, g, n}, nullptr), dc = p.make("dc", {b, t, g, n}, nullptr), dd = p.make("dd", {h}, nullptr);
  auto bwd = [&](Backend& be, bool gpu) {
    auto pick = [&](const Pair::Both& t2) { return gpu ? t2.g : t2.c; };
    SsdBwd k;
    k.dx = pick(dx), k.ddt_raw = pick(ddt), k.ddt_bias = pick(ddtb), k.da_log = pick(dal), k.db = pick(db);
    k.dc = pick(dc), k.dd = pick(dd), k.dy = pick(dy), k.x = pick(x), k.dt_raw = pick(dt_raw);
    k.dt_bias = pick(dt_bias), k.a_log = pick(a_log), k.b = pick(bm), k.c = pick(cm), k.d = pick(d);
    k.dt = pick(dt), k.chunk_states = pick(states), k.params = params;
    ssd_backward(be, k);
  };
  bwd(cpu_backend(), false);
  bwd(cuda, true);
  compare("ssd backward dx", cuda, dx, products);
  compare("ssd backward ddt_raw", cuda, ddt, scalars);
  compare("ssd backward db", cuda, db, products);
  compare("ssd backward dc", cuda, dc, products);
  compare("ssd backward da_log", cuda, dal, scalars);
  compare("ssd backward ddt_bias", cuda, ddtb, scalars);
  compare("ssd backward dd", cuda, dd, 1e-4);
  cuda.set_gemm_mode(saved);
}

// Causal GQA attention at training-like sizes; fp32 mode runs the fp32 kernels, bf16 mode the
// tensor-core kernels (head dims 64 / 128), each against the CPU backend with its own limits.
void attention_large(CudaBackend& cuda, int64_t window, int64_t pd, CudaGemmMode mode) {
  Pair p(cuda);
  const int64_t b = 2, t = 300, h = 8, hkv = 2;
  const bool bf16 = mode != CudaGemmMode::Fp32;
  const double out_limit = bf16 ? 1e-2 : 1e-5, lse_limit = bf16 ? 2e-3 : 1e-5, grad_limit = bf16 ? 2e-2 : 1e-4;
  const CudaGemmMode saved = cuda.gemm_mode();
  cuda.set_gemm_mode(mode);
  auto qv = random_values(b * t * h * pd), kv = random_values(b * t * hkv * pd), vv = random_values(b * t * hkv * pd);
  auto q = p.make("q", {b, t, h, pd}, &qv), k = p.make("k", {b, t, hkv, pd}, &kv), v = p.make("v", {b, t, hkv, pd}, &vv);
  auto out = p.make("out", {b, t, h, pd}, nullptr), lse = p.make("lse", {b, h, t}, nullptr);
  attention_forward(cpu_backend(), {out.c, lse.c, q.c, k.c, v.c, 0.0f, window});
  attention_forward(cuda, {out.g, lse.g, q.g, k.g, v.g, 0.0f, window});
  char what[128];
  std::snprintf(what, sizeof what, "attention %s forward (B2 T300 H8 Hkv2 P%lld window %lld)", cuda_gemm_mode_name(mode),
                (long long)pd, (long long)window);
  compare(what, cuda, out, out_limit);
  compare("attention forward lse", cuda, lse, lse_limit);
  auto gv = random_values(b * t * h * pd);
  auto dout = p.make("dout", {b, t, h, pd}, &gv);
  auto dq = p.make("dq", {b, t, h, pd}, nullptr), dk = p.make("dk", {b, t, hkv, pd}, nullptr);
  auto dv = p.make("dv", {b, t, hkv, pd}, nullptr);
  attention_backward(cpu_backend(), {dq.c, dk.c, dv.c, dout.c, q.c, k.c, v.c, out.c, lse.c, 0.0f, window});
  attention_backward(cuda, {dq.g, dk.g, dv.g, dout.g, q.g, k.g, v.g, out.g, lse.g, 0.0f, window});
  compare("attention backward dq", cuda, dq, grad_limit);
  compare("attention backward dk", cuda, dk, grad_limit);
  compare("attention backward dv", cuda, dv, grad_limit);
  cuda.set_gemm_mode(saved);
}

void quant_formats(CudaBackend& cuda) {
  using namespace quant;
  const int64_t rows = 96, cols = 200;  // partial blocks at the right edge (200 = 6 x 32 + 8)
  // Wide dynamic range: magnitudes 2^-30 .. 2^12, random signs, some exact zeros and negative zeros.
  std::uniform_real_distribution<double> exponent(-30.0, 12.0), unit(0.0, 1.0);
  std::vector<float> values(static_cast<size_t>(rows * cols));
  for (size_t i = 0; i < values.size(); ++i) {
    const double u = unit(g_rng);
    values[i] = u < 0.02 ? (u < 0.01 ? 0.0f : -0.0f)
                         : static_cast<float>((unit(g_rng) < 0.5 ? -1.0 : 1.0) * std::exp2(exponent(g_rng)));
  }
  // one row with a NaN and one with an infinity (block formats mark or saturate them)
  values[5 * cols + 7] = std::nanf("");
  values[9 * cols + 40] = INFINITY;
  struct Case {
    const char* label;
    QuantConfig config;
    bool with_specials;
  };
  auto make = [](Format f, BlockLayout layout, Rounding rounding, ElementFormat mx = ElementFormat::E4M3,
                 MxScaleRule rule = MxScaleRule::RoundUp, bool hadamard = false) {
    QuantConfig c;
    c.format = f, c.layout = layout, c.rounding = rounding, c.mx_element = mx, c.mx_scale_rule = rule, c.seed = 77;
    c.hadamard = hadamard;
    return c;
  };
  const Case cases[] = {
      {"bf16", make(Format::Bf16, BlockLayout::AlongRow, Rounding::NearestEven), true},
      {"fp8_e4m3 tensor", make(Format::Fp8E4M3, BlockLayout::AlongRow, Rounding::NearestEven), false},
      {"fp8_e5m2 tensor stochastic", make(Format::Fp8E5M2, BlockLayout::AlongRow, Rounding::Stochastic), false},
      {"mxfp8 e4m3 round-up 1x32", make(Format::Mxfp8, BlockLayout::AlongRow, Rounding::NearestEven), true},
      {"mxfp8 e5m2 ocp 32x1", make(Format::Mxfp8, BlockLayout::AlongColumn, Rounding::NearestEven,
                                   ElementFormat::E5M2, MxScaleRule::Ocp), true},
      {"mxfp8 e4m3 1x32 stochastic", make(Format::Mxfp8, BlockLayout::AlongRow, Rounding::Stochastic), false},
      {"nvfp4 1x16", make(Format::Nvfp4, BlockLayout::AlongRow, Rounding::NearestEven), true},
      {"nvfp4 16x16", make(Format::Nvfp4, BlockLayout::Tile2d, Rounding::NearestEven), true},
      {"nvfp4 16x1 stochastic", make(Format::Nvfp4, BlockLayout::AlongColumn, Rounding::Stochastic), false},
      {"nvfp4 1x16 hadamard", make(Format::Nvfp4, BlockLayout::AlongRow, Rounding::NearestEven, ElementFormat::E4M3,
                                   MxScaleRule::RoundUp, true), false},
      {"nvfp4 16x1 hadamard stochastic", make(Format::Nvfp4, BlockLayout::AlongColumn, Rounding::Stochastic,
                                              ElementFormat::E4M3, MxScaleRule::RoundUp, true), false},
  };
  for (const Case& cs : cases) {
    std::vector<float> input = values;
    if (!cs.with_specials) {  // tensor-scaled fp8 turns a NaN anywhere into a NaN scale: keep them finite
      input[5 * cols + 7] = 1.0f;
      input[9 * cols + 40] = -3.0f;
    }
    std::vector<float> want(input.size()), got(input.size());
    fake_quantize(input.data(), want.data(), rows, cols, cs.config);
    Arena arena(cuda);
    Tensor t = arena.tensor("x", {rows, cols});
    cuda.upload(t.data, input.data(), input.size() * sizeof(float));
    cuda_fake_quantize(cuda, t.data, t.data, rows, cols, cs.config);
    cuda.download(got.data(), t.data, got.size() * sizeof(float));
    int64_t mismatches = 0, first = -1;
    for (size_t i = 0; i < want.size(); ++i) {
      uint32_t a, b;
      std::memcpy(&a, &want[i], 4);
      std::memcpy(&b, &got[i], 4);
      const bool same = a == b || (std::isnan(want[i]) && std::isnan(got[i]));
      if (!same) {
        if (first < 0) first = static_cast<int64_t>(i);
        ++mismatches;
      }
    }
    const bool ok = mismatches == 0;
    if (!ok) ++g_failures;
    std::printf("%-4s quant %-34s %lld of %lld values differ from quant::fake_quantize", ok ? "ok" : "FAIL",
                cs.label, (long long)mismatches, (long long)want.size());
    if (first >= 0) std::printf(" (first at %lld: cpu %.9g gpu %.9g)", (long long)first, want[first], got[first]);
    std::printf("\n");
  }
}

}  // namespace

// y (M,O) = x W^T and dx (M,I) = dy W with W (O,I) registered as parameter memory, in bf16 mode,
// after each kind of write to W; then a recording of the fprop replayed after W changed.
void weight_packs(CudaBackend& cuda) {
  const int64_t m = 96, o = 320, in = 256;
  const double limit = 1.5e-2;
  Pair p(cuda);
  const std::vector<float> xv = random_values(m * in), dyv = random_values(m * o), w0 = random_values(o * in, -0.05f, 0.05f);
  auto x = p.make("x", {m, in}, &xv), dy = p.make("dy", {m, o}, &dyv);
  auto w = p.make("w", {o, in}, nullptr);
  cuda.note_parameter_memory(w.g.data, sizeof(float) * static_cast<size_t>(o * in));
  cpu_backend().upload(w.c.data, w0.data(), w0.size() * sizeof(float));
  cuda.upload(w.g.data, w0.data(), w0.size() * sizeof(float));
  auto y = p.make("y", {m, o}, nullptr), dx = p.make("dx", {m, in}, nullptr);
  const CudaGemmMode saved = cuda.gemm_mode();
  cuda.set_gemm_mode(CudaGemmMode::Bf16);
  auto both = [&](const std::function<void(Backend&, const Pair::Both&)>& write) {
    write(cpu_backend(), w);
    write(cuda, w);
  };
  auto check = [&](const std::string& after) {
    for (Backend* be : {static_cast<Backend*>(&cpu_backend()), static_cast<Backend*>(&cuda)}) {
      const bool gpu = be == &cuda;
      const float* wd = gpu ? w.g.data : w.c.data;
      gemm(*be, gemm_call(m, o, in, gpu ? x.g.data : x.c.data, false, wd, true, gpu ? y.g.data : y.c.data, 0.0f,
                          GemmTag{GemmPass::Fprop, "mlp.fc1", 0, 0}));
      gemm(*be, gemm_call(m, in, o, gpu ? dy.g.data : dy.c.data, false, wd, false, gpu ? dx.g.data : dx.c.data, 0.0f,
                          GemmTag{GemmPass::Dgrad, "mlp.fc1", 0, 0}));
    }
    compare("weight pack fprop " + after, cuda, y, limit);
    compare("weight pack dgrad " + after, cuda, dx, limit);
  };
  check("first use");
  check("reused");
  const std::vector<float> w1 = random_values(o * in, -0.05f, 0.05f);
  both([&](Backend& be, const Pair::Both& t) { be.upload(&be == &cuda ? t.g.data : t.c.data, w1.data(), w1.size() * sizeof(float)); });
  check("after upload");
  const std::vector<float> deltav = random_values(o * in, -0.05f, 0.05f);
  auto delta = p.make("delta", {o * in}, &deltav);
  both([&](Backend& be, const Pair::Both& t) {
    const bool gpu = &be == &cuda;
    axpy(be, AxpyArgs{Tensor(gpu ? t.g.data : t.c.data, {o * in}, "w"), gpu ? delta.g : delta.c, 1.0f});
  });
  check("after axpy");
  auto am = p.make("adam.m", {o * in}, nullptr), av = p.make("adam.v", {o * in}, nullptr);
  both([&](Backend& be, const Pair::Both& t) {
    const bool gpu = &be == &cuda;
    AdamWStep step;
    step.param = Tensor(gpu ? t.g.data : t.c.data, {o * in}, "w");
    step.grad = gpu ? delta.g : delta.c;
    step.m = gpu ? am.g : am.c;
    step.v = gpu ? av.g : av.c;
    step.lr = 1e-2f;
    adamw_step(be, step);
  });
  check("after adamw_step");
  std::string why;
  if (cuda.begin_recording(&why)) {
    gemm(cuda, gemm_call(m, o, in, x.g.data, false, w.g.data, true, y.g.data, 0.0f, GemmTag{GemmPass::Fprop, "mlp.fc1", 0, 0}));
    std::unique_ptr<OpRecording> recording = cuda.end_recording(&why);
    if (recording) {
      const std::vector<float> w2 = random_values(o * in, -0.05f, 0.05f);
      both([&](Backend& be, const Pair::Both& t) { be.upload(&be == &cuda ? t.g.data : t.c.data, w2.data(), w2.size() * sizeof(float)); });
      gemm(cpu_backend(), gemm_call(m, o, in, x.c.data, false, w.c.data, true, y.c.data, 0.0f, GemmTag{}));
      recording->replay();
      compare("weight pack fprop, graph replayed after upload", cuda, y, limit);
    }
  }
  if (!why.empty()) {
    std::printf("FAIL weight pack recording: %s\n", why.c_str());
    ++g_failures;
  }
  cuda.set_gemm_mode(saved);
}

int main() {
  CudaBackend* cuda = cuda_backend_if_present();
  if (!cuda) {
    std::printf("FAIL no CUDA device: the CPU-vs-CUDA comparison needs a GPU\n");
    return 1;
  }
  std::printf("device %s\n", cuda->device_description().c_str());
  // Each section runs on its own, so one failure does not hide the others.
  const std::pair<const char*, std::function<void()>> sections[] = {
      {"gemm modes", [&] { gemm_modes(*cuda); }},
      {"weight packs", [&] { weight_packs(*cuda); }},
      {"moe expert gemm", [&] { moe_expert_gemm_large(*cuda); }},
      {"rmsnorm", [&] { rmsnorm_large(*cuda); }},
      {"conv1d", [&] { conv_large(*cuda); }},
      {"ssd L64", [&] { ssd_large(*cuda, 256, 64); }},
      {"ssd L128", [&] { ssd_large(*cuda, 200, 128); }},
      {"ssd L128 P64 N128 (~1B head)", [&] { ssd_large(*cuda, 320, 128, 4, 64, 128, 1); }},
      {"ssd L32 one head per group", [&] { ssd_large(*cuda, 100, 32, 3, 40, 24, 3); }},
      {"ssd L128 P64 N128 bf16", [&] { ssd_large(*cuda, 320, 128, 4, 64, 128, 1, CudaGemmMode::Bf16); }},
      {"ssd L64 bf16", [&] { ssd_large(*cuda, 256, 64, 8, 32, 32, 2, CudaGemmMode::Bf16); }},
      {"ssd L128 P64 N128 8 heads per group bf16",
       [&] { ssd_large(*cuda, 300, 128, 16, 64, 128, 2, CudaGemmMode::Bf16); }},
      {"ssd L64 P37 N40 3 heads per group bf16", [&] { ssd_large(*cuda, 203, 64, 6, 37, 40, 2, CudaGemmMode::Bf16); }},
      // full chunks (T % L == 0): the batched backward (ssd_batched_cuda.cu), exact fp32 / TF32
      {"ssd L128 P64 N128 full chunks", [&] { ssd_large(*cuda, 256, 128, 4, 64, 128, 1); }},
      {"ssd L128 P64 N128 8 heads per group full chunks bf16",
       [&] { ssd_large(*cuda, 384, 128, 16, 64, 128, 2, CudaGemmMode::Bf16); }},
      {"ssd L64 P37 N40 3 heads per group full chunks bf16",
       [&] { ssd_large(*cuda, 192, 64, 6, 37, 40, 2, CudaGemmMode::Bf16); }},
      {"attention", [&] { attention_large(*cuda, 0, 64, CudaGemmMode::Fp32); }},
      {"attention window", [&] { attention_large(*cuda, 100, 64, CudaGemmMode::Fp32); }},
      {"attention bf16 P64", [&] { attention_large(*cuda, 0, 64, CudaGemmMode::Bf16); }},
      {"attention bf16 P64 window", [&] { attention_large(*cuda, 100, 64, CudaGemmMode::Bf16); }},
      {"attention bf16 P128", [&] { attention_large(*cuda, 0, 128, CudaGemmMode::Bf16); }},
      {"attention bf16 P128 window", [&] { attention_large(*cuda, 100, 128, CudaGemmMode::Bf16); }},
      {"quantization formats", [&] { quant_formats(*cuda); }},
  };
  for (const auto& [label, run] : sections) {
    try {
      run();
    } catch (const std::exception& error) {
      std::printf("FAIL %s: exception: %s\n", label, error.what());
      ++g_failures;
    }
  }
  const CudaAllocatorStats stats = cuda->allocator_stats();
  std::printf("allocator: %zu device allocations, %zu reuses, peak %.1f MiB\n", stats.device_allocations, stats.reuses,
              stats.peak_bytes / 1048576.0);
  std::printf("%d failures\n", g_failures);
  return g_failures == 0 ? 0 : 1;
}
