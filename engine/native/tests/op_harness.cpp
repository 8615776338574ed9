// The op harness: checks every op family of the native core on every available backend.
//   forward  : backend (float32) output against a float64 reference written plainly in this file
//   backward : backend gradients against central finite differences of that float64 reference
//              (L = sum(upstream * outputs), step 1e-6 in float64, so the reference side is exact
//              to ~1e-9 and the tolerance measures the backend's float32 error)
// Tolerances (float32 backends): forward |got - want| <= 2e-5 + 2e-4 |want|; gradients
// |got - want| <= 1e-4 + 1e-3 |want|. bf16 tensor-core attention (CUDA in bf16 GEMM mode, head dims
// 64 / 128): forward |got - want| <= 1e-2 max|want| + 1e-2 |want|; gradients 2e-2 max|want| +
// 2e-2 |want| (bf16 keeps 8 significant bits: 2^-9 relative rounding per operand, a few roundings
// deep). NaN or infinity never passes. Exit status 1 on any failure.
// Runs in a few seconds on 2 cores (small shapes chosen to still cross every tile/chunk edge).
//
// How to add an op:
//   1. write `double` reference forward(s) below as plain loops (the definition, not a copy of the
//      kernel: e.g. the SSD reference is the token-by-token recurrence, attention is full softmax);
//   2. add `void test_<op>(Ctx& ctx)`: make inputs with ctx.random(...), upload them with ctx.up(...),
//      run the op through its ops/*.h function on ctx.backend, download with ctx.down(...);
//   3. compare forward with ctx.expect_close(...), gradients with ctx.check_gradients(...);
//   4. register it in kTests at the bottom. Nothing else: every backend picks it up.
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
#include "ops/rmsnorm.h"
#include "ops/ssd.h"
#ifdef STRATA_HAVE_CUDA
#include "cuda/cuda_backend.h"
#endif

using namespace strata;

namespace {

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

int g_failures = 0;
int g_checks = 0;

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
Vec f32(Vec v) {
  for (double& x : v) x = static_cast<float>(x);
  return v;
}
Vec concat(Vec a, const Vec& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}
// atol as a fraction of the largest |want| (the bf16 tolerances)
Tolerance relative_to_max(const Vec& want, Tolerance tol) {
  double largest = 0.0;
  for (double x : want) largest = std::max(largest, std::fabs(x));
  return {tol.atol * largest, tol.rtol};
}

// Row-pitched operands: a (rows, cols) block at column col0 of a (rows, ld) row-major buffer.
Vec embed_columns(Vec buffer, const Vec& block, int64_t rows, int64_t cols, int64_t ld, int64_t col0) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) buffer[r * ld + col0 + c] = block[r * cols + c];
  return buffer;
}
Vec extract_columns(const Vec& buffer, int64_t rows, int64_t cols, int64_t ld, int64_t col0) {
  Vec block(rows * cols);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) block[r * cols + c] = buffer[r * ld + col0 + c];
  return block;
}
// A pitched block's buffer must come back unchanged outside the block (the op touches only its columns).
void expect_outside_unchanged(Ctx& ctx, const std::string& what, const Vec& after, const Vec& before, int64_t rows,
                              int64_t cols, int64_t ld, int64_t col0) {
  const Vec restored = embed_columns(after, extract_columns(before, rows, cols, ld, col0), rows, cols, ld, col0);
  ctx.expect_close(what + " outside its columns", restored, before, {0.0, 0.0});
}
double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }
double softplus(double x) { return std::log1p(std::exp(x)); }

// ---------------------------------------------------------------------------------------------
// GEMM and linear
// ---------------------------------------------------------------------------------------------

Vec ref_gemm(int64_t m, int64_t n, int64_t k, const Vec& a, bool ta, int64_t lda, const Vec& b, bool tb, int64_t ldb,
             const Vec& c, int64_t ldc, double alpha, double beta) {
  Vec out = c;
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double acc = 0.0;
      for (int64_t p = 0; p < k; ++p) {
        acc += (ta ? a[p * lda + i] : a[i * lda + p]) * (tb ? b[j * ldb + p] : b[p * ldb + j]);
      }
      out[i * ldc + j] = alpha * acc + (beta == 0.0 ? 0.0 : beta * c[i * ldc + j]);
    }
  }
  return out;
}

void run_gemm_cases(Ctx& ctx, const std::string& label) {
  struct Case {
    int64_t m, n, k;
    bool ta, tb;
    int64_t pad;
    float alpha, beta;
  };
  const Case cases[] = {{13, 37, 29, false, false, 0, 1.0f, 0.0f}, {13, 37, 29, true, false, 3, 0.5f, 1.0f},
                        {13, 37, 29, false, true, 0, 1.0f, -0.5f}, {13, 37, 29, true, true, 5, 2.0f, 0.0f},
                        {70, 150, 300, false, true, 0, 1.0f, 0.0f}, {1, 1, 1, false, false, 0, 1.0f, 0.0f},
                        {130, 40, 7, true, false, 2, 1.0f, 1.0f},   {8, 3100, 20, false, false, 0, 1.0f, 0.0f}};
  for (const Case& cs : cases) {
    const int64_t a_rows = cs.ta ? cs.k : cs.m, a_cols = (cs.ta ? cs.m : cs.k) + cs.pad;
    const int64_t b_rows = cs.tb ? cs.n : cs.k, b_cols = (cs.tb ? cs.k : cs.n) + cs.pad;
    const int64_t ldc = cs.n + cs.pad;
    Vec a = f32(ctx.random(a_rows * a_cols)), b = f32(ctx.random(b_rows * b_cols)), c = f32(ctx.random(cs.m * ldc));
    Tensor ta = ctx.up("a", {a_rows, a_cols}, a), tb = ctx.up("b", {b_rows, b_cols}, b);
    Tensor tc = ctx.up("c", {cs.m, ldc}, c);
    GemmCall call;
    call.m = cs.m, call.n = cs.n, call.k = cs.k;
    call.a = ta.data, call.lda = a_cols, call.trans_a = cs.ta;
    call.b = tb.data, call.ldb = b_cols, call.trans_b = cs.tb;
    call.c = tc.data, call.ldc = ldc, call.alpha = cs.alpha, call.beta = cs.beta;
    gemm(ctx.backend, call);
    char what[160];
    std::snprintf(what, sizeof what, "%s m%lld n%lld k%lld ta%d tb%d", label.c_str(), (long long)cs.m,
                  (long long)cs.n, (long long)cs.k, cs.ta, cs.tb);
    Vec want = ref_gemm(cs.m, cs.n, cs.k, a, cs.ta, a_cols, b, cs.tb, b_cols, c, ldc, cs.alpha, cs.beta);
    // scale the tolerance with sqrt(k): float32 sums of k products
    ctx.expect_close(what, ctx.down(tc), want, {kForwardF32.atol * std::sqrt(double(cs.k)), kForwardF32.rtol});
  }
  // beta = 0 never reads C: NaN garbage in C must not leak into the result
  Vec a = f32(ctx.random(4 * 5)), b = f32(ctx.random(5 * 6));
  Tensor ta = ctx.up("a", {4, 5}, a), tb = ctx.up("b", {5, 6}, b);
  Tensor tc = ctx.up("c", {4, 6}, Vec(24, std::nan("")));
  gemm(ctx.backend, gemm_call(4, 6, 5, ta.data, false, tb.data, false, tc.data, 0.0f, GemmTag{}));
  ctx.expect_close(label + " beta=0 ignores NaN in C", ctx.down(tc), ref_gemm(4, 6, 5, a, false, 5, b, false, 6,
                                                                              Vec(24, 0.0), 6, 1.0, 0.0),
                   kForwardF32);
}

void test_gemm(Ctx& ctx) {
  if (std::string(ctx.backend.name()) == "cpu") {
    for (const std::string& kernel : cpu_gemm_kernels()) {
      set_cpu_gemm_kernel(kernel);
      run_gemm_cases(ctx, kernel);
    }
    set_cpu_gemm_kernel(cpu_gemm_kernels().front());
  } else {
    run_gemm_cases(ctx, ctx.backend.name());
  }
  // called from inside another parallel region, the GEMM still computes every element
  {
    const int64_t m = 128, n = 256, k = 128;  // above the size where the GEMM goes parallel
    Vec a = f32(ctx.random(m * k)), b = f32(ctx.random(k * n));
    Tensor ta = ctx.up("a", {m, k}, a), tb = ctx.up("b", {k, n}, b);
    Tensor c0 = ctx.zeros("c0", {m, n}), c1 = ctx.zeros("c1", {m, n});
    const Tensor outputs[2] = {c0, c1};
#pragma omp parallel for num_threads(2)
    for (int i = 0; i < 2; ++i) {
      gemm(ctx.backend, gemm_call(m, n, k, ta.data, false, tb.data, false, outputs[i].data, 0.0f, GemmTag{}));
    }
    Vec want = ref_gemm(m, n, k, a, false, k, b, false, n, Vec(m * n, 0.0), n, 1.0, 0.0);
    ctx.expect_close("gemm inside a parallel region (0)", ctx.down(c0), want, kForwardF32);
    ctx.expect_close("gemm inside a parallel region (1)", ctx.down(c1), want, kForwardF32);
  }
  // the precision hook sees every call with its tag and can replace the inputs
  int seen = 0;
  GemmPass seen_pass = GemmPass::Other;
  Vec zeros(12, 0.0);
  Tensor replacement = ctx.up("replacement", {3, 4}, zeros);
  set_gemm_input_transform([&](GemmCall& call) {
    ++seen;
    seen_pass = call.tag.pass;
    call.a = replacement.data;
  });
  Tensor a = ctx.up("a", {3, 4}, ctx.random(12)), b = ctx.up("b", {4, 2}, ctx.random(8));
  Tensor c = ctx.zeros("c", {3, 2});
  gemm(ctx.backend, gemm_call(3, 2, 4, a.data, false, b.data, false, c.data, 0.0f, GemmTag{GemmPass::Wgrad, "mlp.fc1", 3, 0}));
  clear_gemm_input_transform();
  ctx.expect_true("hook called once with the pass tag", seen == 1 && seen_pass == GemmPass::Wgrad);
  ctx.expect_close("hook replaced input A", ctx.down(c), Vec(6, 0.0), kForwardF32);
}

Vec ref_linear(const Inputs& in, int64_t m, int64_t o, int64_t i_dim) {
  const Vec &x = in.at("x"), &w = in.at("w"), &bias = in.at("bias");
  Vec y(m * o);
  for (int64_t r = 0; r < m; ++r)
    for (int64_t j = 0; j < o; ++j) {
      double acc = bias[j];
      for (int64_t p = 0; p < i_dim; ++p) acc += x[r * i_dim + p] * w[j * i_dim + p];
      y[r * o + j] = acc;
    }
  return y;
}

void test_linear(Ctx& ctx) {
  const int64_t m = 9, in_dim = 11, out_dim = 7;
  Inputs in{{"x", f32(ctx.random(m * in_dim))}, {"w", f32(ctx.random(out_dim * in_dim))}, {"bias", f32(ctx.random(out_dim))}};
  Tensor x = ctx.up("x", {m, in_dim}, in["x"]), w = ctx.up("w", {out_dim, in_dim}, in["w"]);
  Tensor bias = ctx.up("bias", {out_dim}, in["bias"]), y = ctx.zeros("y", {m, out_dim});
  linear_forward(ctx.backend, y, x, w, bias, "mlp.fc1", 0);
  auto ref = [&](const Inputs& v) { return ref_linear(v, m, out_dim, in_dim); };
  ctx.expect_close("y", ctx.down(y), ref(in), kForwardF32);
  Vec dy = f32(ctx.random(m * out_dim));
  Tensor tdy = ctx.up("dy", {m, out_dim}, dy), dx = ctx.zeros("dx", {m, in_dim});
  Tensor dw = ctx.zeros("dw", {out_dim, in_dim}), db = ctx.zeros("db", {out_dim});
  linear_backward(ctx.backend, dx, dw, db, tdy, x, w, "mlp.fc1", 0);
  ctx.check_gradients(in, ref, dy, {{"x", ctx.down(dx)}, {"w", ctx.down(dw)}, {"bias", ctx.down(db)}});
}

// Consecutive GEMMs that read the same operand: the CUDA backend in bf16 mode takes a pack the
// previous GEMM left in scratch instead of packing again (gemm_cuda.cu). Every case must match the
// float64 product, and the backend must not reuse a pack across a write of its source: an op in
// between, an upload, the GEMM's own output, a recording that replays after the source changed.
void test_gemm_pack_reuse(Ctx& ctx) {
#ifdef STRATA_HAVE_CUDA
  auto* cuda = dynamic_cast<CudaBackend*>(&ctx.backend);
  struct ModeGuard {  // bf16 GEMMs for this test only, also when a check throws
    CudaBackend* cuda;
    CudaGemmMode saved;
    ~ModeGuard() {
      if (cuda) cuda->set_gemm_mode(saved);
    }
  } guard{cuda, cuda ? cuda->gemm_mode() : CudaGemmMode::Fp32};
  if (cuda) cuda->set_gemm_mode(CudaGemmMode::Bf16);
  auto reuses = [&]() -> int64_t { return cuda ? static_cast<int64_t>(cuda->gemm_pack_reuses()) : 0; };
  const bool packs = cuda != nullptr;
#else
  auto reuses = []() -> int64_t { return 0; };
  const bool packs = false;
#endif
  // bf16 operands: atol 1e-2 of the largest |want| (a wrong or stale pack is off by O(1) of it)
  auto close = [&](const std::string& what, const Tensor& got, const Vec& want) {
    ctx.expect_close(what, ctx.down(got), want, packs ? relative_to_max(want, kForwardBf16) : kForwardF32);
  };
  auto product = [](int64_t m, int64_t n, int64_t k, const Vec& a, bool ta, const Vec& b, bool tb) {
    return ref_gemm(m, n, k, a, ta, ta ? m : k, b, tb, tb ? k : n, Vec(m * n, 0.0), n, 1.0, 0.0);
  };
  // linear_backward: dgrad (dX = dY W) then wgrad (dW += dY^T X) both read dY stored (M, O)
  const int64_t m = 64, in = 32, out = 48;
  Vec x = f32(ctx.random(m * in)), w = f32(ctx.random(out * in)), dy = f32(ctx.random(m * out));
  Tensor tx = ctx.up("x", {m, in}, x), tw = ctx.up("w", {out, in}, w), tdy = ctx.up("dy", {m, out}, dy);
  Tensor dx = ctx.zeros("dx", {m, in}), dw = ctx.zeros("dw", {out, in});
  int64_t before = reuses();
  linear_backward(ctx.backend, dx, dw, Tensor(), tdy, tx, tw, "mlp.fc1", 0);
  ctx.expect_true("wgrad takes dgrad's pack of dY", reuses() == before + (packs ? 1 : 0));
  close("linear dgrad", dx, product(m, in, out, dy, false, w, false));
  close("linear wgrad", dw, product(out, in, m, dy, true, x, false));
  // the same pointer written in between (an op, then an upload): packed again
  const int64_t r = 32, k = 48, n = 16;
  Vec a = f32(ctx.random(r * k)), b1 = f32(ctx.random(k * n)), b2 = f32(ctx.random(k * n));
  Tensor ta = ctx.up("a", {r, k}, a), tb1 = ctx.up("b1", {k, n}, b1), tb2 = ctx.up("b2", {k, n}, b2);
  Tensor c1 = ctx.zeros("c1", {r, n}), c2 = ctx.zeros("c2", {r, n}), c3 = ctx.zeros("c3", {r, n});
  before = reuses();
  gemm(ctx.backend, gemm_call(r, n, k, ta.data, false, tb1.data, false, c1.data, 0.0f, GemmTag{}));
  scale(ctx.backend, ScaleArgs{Tensor(ta.data, {r * k}, "a"), -2.0f});
  gemm(ctx.backend, gemm_call(r, n, k, ta.data, false, tb2.data, false, c2.data, 0.0f, GemmTag{}));
  Vec a2 = f32(ctx.random(r * k));
  std::vector<float> host(a2.begin(), a2.end());
  ctx.backend.upload(ta.data, host.data(), host.size() * sizeof(float));
  gemm(ctx.backend, gemm_call(r, n, k, ta.data, false, tb1.data, false, c3.data, 0.0f, GemmTag{}));
  ctx.expect_true("no reuse across a write of the source", reuses() == before);
  Vec scaled = a;
  for (double& v : scaled) v *= -2.0;
  close("gemm before the write", c1, product(r, n, k, a, false, b1, false));
  close("gemm after an op wrote the source", c2, product(r, n, k, scaled, false, b2, false));
  close("gemm after an upload wrote the source", c3, product(r, n, k, a2, false, b1, false));
  // the operand packed as A, then read as a transposed B: the fresh A pack must not go to its slot
  Vec q = f32(ctx.random(n * k));
  Tensor tq = ctx.up("q", {n, k}, q), cq = ctx.zeros("cq", {n, r});
  before = reuses();
  gemm(ctx.backend, gemm_call(r, n, k, ta.data, false, tb2.data, false, c2.data, 0.0f, GemmTag{}));
  gemm(ctx.backend, gemm_call(n, r, k, tq.data, false, ta.data, true, cq.data, 0.0f, GemmTag{}));
  gemm(ctx.backend, gemm_call(n, r, k, tq.data, false, ta.data, true, c1.data, 0.0f, GemmTag{}));
  ctx.expect_true("B takes A's pack, then both are taken", reuses() == before + (packs ? 3 : 0));
  close("gemm reading the previous A as B", cq, product(n, r, k, q, false, a2, true));
  close("gemm repeated", Tensor(c1.data, {n, r}, "c1"), product(n, r, k, q, false, a2, true));
  if (!packs) return;
#ifdef STRATA_HAVE_CUDA
  // a GEMM writing its own operand (well defined only where operands are packed first): packed again
  const int64_t s = 32;
  Vec sq = f32(ctx.random(s * s)), sb = f32(ctx.random(s * s)), sb2 = f32(ctx.random(s * s));
  Tensor tsq = ctx.up("sq", {s, s}, sq), tsb = ctx.up("sb", {s, s}, sb), tsb2 = ctx.up("sb2", {s, s}, sb2);
  Tensor cs = ctx.zeros("cs", {s, s});
  before = reuses();
  gemm(ctx.backend, gemm_call(s, s, s, tsq.data, false, tsb.data, false, tsq.data, 0.0f, GemmTag{}));
  gemm(ctx.backend, gemm_call(s, s, s, tsq.data, false, tsb2.data, false, cs.data, 0.0f, GemmTag{}));
  ctx.expect_true("no reuse of a pack the GEMM wrote over", reuses() == before);
  const Vec sq_new = product(s, s, s, sq, false, sb, false);
  close("gemm over its own operand", tsq, sq_new);
  close("gemm after a GEMM wrote the source", cs, product(s, s, s, sq_new, false, sb2, false));
  // recording: a pack made before the capture is not in the graph; a replay after the source changed
  // packs the new values (graph GEMMs reuse only packs made inside the graph)
  gemm(ctx.backend, gemm_call(r, n, k, ta.data, false, tb1.data, false, c1.data, 0.0f, GemmTag{}));
  std::string why;
  if (cuda->begin_recording(&why)) {
    gemm(ctx.backend, gemm_call(r, n, k, ta.data, false, tb2.data, false, c2.data, 0.0f, GemmTag{}));
    gemm(ctx.backend, gemm_call(r, n, k, ta.data, false, tb1.data, false, c3.data, 0.0f, GemmTag{}));
    std::unique_ptr<OpRecording> recording = cuda->end_recording(&why);
    ctx.expect_true("recording: " + why, recording != nullptr);
    host.assign(a.begin(), a.end());
    ctx.backend.upload(ta.data, host.data(), host.size() * sizeof(float));
    if (recording) recording->replay();
    close("recorded gemm replayed after the source changed", c2, product(r, n, k, a, false, b2, false));
    close("recorded gemm reusing the recorded pack", c3, product(r, n, k, a, false, b1, false));
  }
#endif
}

void test_elementwise(Ctx& ctx) {
  Vec a = f32(ctx.random(50)), b = f32(ctx.random(50));
  Tensor ta = ctx.up("a", {5, 10}, a), tb = ctx.up("b", {50}, b), out = ctx.zeros("out", {5, 10});
  add(ctx.backend, {out, ta, tb});
  Vec want(50);
  for (int i = 0; i < 50; ++i) want[i] = a[i] + b[i];
  ctx.expect_close("add", ctx.down(out), want, kForwardF32);
  axpy(ctx.backend, {out, tb, -2.0f});
  for (int i = 0; i < 50; ++i) want[i] -= 2.0 * b[i];
  ctx.expect_close("axpy", ctx.down(out), want, kForwardF32);
  scale(ctx.backend, {out, 0.25f});
  for (double& v : want) v *= 0.25;
  ctx.expect_close("scale", ctx.down(out), want, kForwardF32);

  // strided copy: columns [3, 7) of a (2 batches x 4 rows x 9) source into a (2 x 4 x 6) destination
  // at column 1, written, then accumulated onto the written values
  Vec src = f32(ctx.random(72)), dst0 = f32(ctx.random(48));
  Tensor tsrc = ctx.up("src", {2, 4, 9}, src), tdst = ctx.up("dst", {2, 4, 6}, dst0);
  StridedCopyArgs copy;
  copy.dst = tdst;
  copy.src = tsrc;
  copy.batches = 2, copy.rows = 4, copy.cols = 4;
  copy.dst_offset = 1, copy.dst_batch_stride = 24, copy.dst_row_stride = 6;
  copy.src_offset = 3, copy.src_batch_stride = 36, copy.src_row_stride = 9;
  Vec copied = dst0, summed = dst0;
  for (int b = 0; b < 2; ++b) {
    for (int r = 0; r < 4; ++r) {
      for (int c = 0; c < 4; ++c) {
        copied[b * 24 + r * 6 + 1 + c] = src[b * 36 + r * 9 + 3 + c];
        summed[b * 24 + r * 6 + 1 + c] = 2.0 * src[b * 36 + r * 9 + 3 + c];
      }
    }
  }
  copy_strided(ctx.backend, copy);
  ctx.expect_close("copy_strided", ctx.down(tdst), copied, kForwardF32);
  copy.accumulate = true;
  copy_strided(ctx.backend, copy);
  ctx.expect_close("copy_strided accumulate", ctx.down(tdst), summed, kForwardF32);
  bool out_of_range = false;
  try {
    copy.cols = 5;  // column 9 of a 9-wide row is one past the end at the last row of the last batch
    copy.src_offset = 5;
    copy_strided(ctx.backend, copy);
  } catch (const Error& error) {
    out_of_range = std::string(error.what()).find("copy_strided: src 'src'") != std::string::npos;
  }
  ctx.expect_true("copy_strided rejects an index past the end", out_of_range);

  // bias add and bias gradient (column sums, accumulated)
  Vec y0 = f32(ctx.random(5 * 70)), bias = f32(ctx.random(70)), db0 = f32(ctx.random(70));
  Tensor ty = ctx.up("y", {5, 70}, y0), tbias = ctx.up("bias", {70}, bias), tdb = ctx.up("dbias", {70}, db0);
  bias_add(ctx.backend, {ty, tbias});
  Vec want_y = y0, want_db = db0;
  for (int i = 0; i < 5; ++i) {
    for (int j = 0; j < 70; ++j) {
      want_y[i * 70 + j] += bias[j];
      want_db[j] += y0[i * 70 + j];
    }
  }
  ctx.expect_close("bias_add", ctx.down(ty), want_y, kForwardF32);
  bias_grad(ctx.backend, {tdb, ctx.up("dy", {5, 70}, y0)});
  ctx.expect_close("bias_grad", ctx.down(tdb), want_db, kForwardF32);
}

void test_embedding(Ctx& ctx) {
  const int64_t v = 10, d = 6, m = 8;
  std::vector<int32_t> ids{3, 0, 9, 3, 3, 7, 0, 1};
  Vec table = f32(ctx.random(v * d));
  Tensor tt = ctx.up("table", {v, d}, table), out = ctx.zeros("out", {m, d});
  TensorI32 tid = ctx.up_i32("ids", {m}, ids);
  embedding_forward(ctx.backend, {out, tid, tt});
  auto ref = [&](const Inputs& in) {
    Vec y(m * d);
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < d; ++j) y[i * d + j] = in.at("table")[ids[i] * d + j];
    return y;
  };
  Inputs in{{"table", table}};
  ctx.expect_close("out", ctx.down(out), ref(in), kForwardF32);
  Vec dout = f32(ctx.random(m * d));
  Tensor dtable = ctx.zeros("dtable", {v, d});
  embedding_backward(ctx.backend, {dtable, tid, ctx.up("dout", {m, d}, dout)});
  ctx.check_gradients(in, ref, dout, {{"table", ctx.down(dtable)}});
  bool raised = false;
  try {
    TensorI32 bad = ctx.up_i32("bad", {1}, {10});
    embedding_forward(ctx.backend, {ctx.zeros("o", {1, d}), bad, tt});
    ctx.backend.synchronize();  // a device backend reports index errors at its next wait
  } catch (const Error&) {
    raised = true;
  }
  ctx.expect_true("out-of-vocabulary id raises", raised);
}

// ---------------------------------------------------------------------------------------------
// Norms and activations
// ---------------------------------------------------------------------------------------------

Vec ref_rmsnorm(const Vec& x, const Vec& w, int64_t m, int64_t d, double eps) {
  Vec y(m * d);
  for (int64_t i = 0; i < m; ++i) {
    double ss = 0.0;
    for (int64_t j = 0; j < d; ++j) ss += x[i * d + j] * x[i * d + j];
    const double r = 1.0 / std::sqrt(ss / d + eps);
    for (int64_t j = 0; j < d; ++j) y[i * d + j] = x[i * d + j] * r * w[j];
  }
  return y;
}

void rmsnorm_case(Ctx& ctx, int64_t m, int64_t d) {
  ctx.test = "rmsnorm/d" + std::to_string(d);
  const double eps = 1e-5;
  Inputs in{{"x", f32(ctx.random(m * d))}, {"w", f32(ctx.random(d, 0.5, 1.5))}};
  Tensor x = ctx.up("x", {m, d}, in["x"]), w = ctx.up("w", {d}, in["w"]);
  Tensor y = ctx.zeros("y", {m, d}), rstd = ctx.zeros("rstd", {m});
  rmsnorm_forward(ctx.backend, {y, rstd, x, w, {}, {}, static_cast<float>(eps)});
  auto ref = [&](const Inputs& v) { return ref_rmsnorm(v.at("x"), v.at("w"), m, d, eps); };
  ctx.expect_close("y", ctx.down(y), ref(in), kForwardF32);
  Vec dy = f32(ctx.random(m * d));
  Tensor dx = ctx.zeros("dx", {m, d}), dw = ctx.zeros("dw", {d});
  rmsnorm_backward(ctx.backend, {dx, dw, ctx.up("dy", {m, d}, dy), x, w, rstd, false});
  ctx.check_gradients(in, ref, dy, {{"x", ctx.down(dx)}, {"w", ctx.down(dw)}});
  // fused residual: y = rmsnorm(x + r), residual_out = x + r
  Vec r = f32(ctx.random(m * d));
  Tensor tr = ctx.up("r", {m, d}, r), sum = ctx.zeros("sum", {m, d}), y2 = ctx.zeros("y2", {m, d});
  rmsnorm_forward(ctx.backend, {y2, rstd, x, w, tr, sum, static_cast<float>(eps)});
  Vec s(m * d);
  for (int64_t i = 0; i < m * d; ++i) s[i] = in["x"][i] + r[i];
  ctx.expect_close("fused residual_out", ctx.down(sum), s, kForwardF32);
  ctx.expect_close("fused y", ctx.down(y2), ref_rmsnorm(s, in["w"], m, d, eps), kForwardF32);
}

void test_rmsnorm(Ctx& ctx) {
  rmsnorm_case(ctx, 7, 19);  // strided CUDA kernels
  rmsnorm_case(ctx, 7, 20);  // the row held in float4 registers
}

double ref_activation(ActivationKind kind, double x) {
  switch (kind) {
    case ActivationKind::Relu2: return x > 0 ? x * x : 0.0;
    case ActivationKind::Gelu: return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
    case ActivationKind::Silu: return x * sigmoid(x);
    case ActivationKind::Softplus: return softplus(x);
    case ActivationKind::Swiglu: break;
  }
  return 0.0;
}

void test_activation(Ctx& ctx) {
  const int64_t m = 5, f = 12;
  for (ActivationKind kind : {ActivationKind::Relu2, ActivationKind::Gelu, ActivationKind::Silu,
                              ActivationKind::Softplus, ActivationKind::Swiglu}) {
    const bool glu = kind == ActivationKind::Swiglu;
    const int64_t in_cols = glu ? 2 * f : f;
    Inputs in{{"x", f32(ctx.random(m * in_cols, -3.0, 3.0))}};
    auto ref = [&](const Inputs& v) {
      const Vec& x = v.at("x");
      Vec y(m * f);
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < f; ++j)
          y[i * f + j] = glu ? x[i * 2 * f + j] * sigmoid(x[i * 2 * f + j]) * x[i * 2 * f + f + j]
                             : ref_activation(kind, x[i * f + j]);
      return y;
    };
    ctx.test = std::string("activation/") + activation_name(kind);
    Tensor x = ctx.up("x", {m, in_cols}, in["x"]), y = ctx.zeros("y", {m, f});
    activation_forward(ctx.backend, {kind, y, x});
    ctx.expect_close("y", ctx.down(y), ref(in), kForwardF32);
    Vec dy = f32(ctx.random(m * f));
    Tensor dx = ctx.zeros("dx", {m, in_cols});
    activation_backward(ctx.backend, {kind, dx, ctx.up("dy", {m, f}, dy), x});
    ctx.check_gradients(in, ref, dy, {{"x", ctx.down(dx)}});
  }
}

// ld > 0: z and dz are the Di columns at col0 of (M, ld) buffers (Mamba-2 reads z straight out of
// its in_proj output); the rest of the dz buffer must come back untouched.
void gated_rmsnorm_case(Ctx& ctx, int64_t m, int64_t di, int64_t groups, bool norm_before_gate, int64_t ld = 0,
                        int64_t col0 = 0) {
  const int64_t gs = di / groups;
  const double eps = 1e-5;
  ctx.test = std::string(norm_before_gate ? "gated_rmsnorm/norm-then-gate" : "gated_rmsnorm/gate-then-norm") +
             " group " + std::to_string(gs) + (ld ? " z pitch " + std::to_string(ld) : "");
  Inputs in{{"y", f32(ctx.random(m * di))}, {"z", f32(ctx.random(m * di, -2, 2))}, {"w", f32(ctx.random(di, 0.5, 1.5))}};
  auto ref = [&](const Inputs& v) {
    const Vec &y = v.at("y"), &z = v.at("z"), &w = v.at("w");
    Vec out(m * di);
    for (int64_t i = 0; i < m; ++i)
      for (int64_t g = 0; g < groups; ++g) {
        double ss = 0.0;
        Vec pre(gs);
        for (int64_t j = 0; j < gs; ++j) {
          const int64_t idx = i * di + g * gs + j;
          pre[j] = norm_before_gate ? y[idx] : y[idx] * z[idx] * sigmoid(z[idx]);
          ss += pre[j] * pre[j];
        }
        const double r = 1.0 / std::sqrt(ss / gs + eps);
        for (int64_t j = 0; j < gs; ++j) {
          const int64_t idx = i * di + g * gs + j;
          out[idx] = pre[j] * r * w[g * gs + j] * (norm_before_gate ? z[idx] * sigmoid(z[idx]) : 1.0);
        }
      }
    return out;
  };
  Tensor y = ctx.up("y", {m, di}, in["y"]), w = ctx.up("w", {di}, in["w"]);
  Tensor z = ld ? Tensor(ctx.up("z", {m, ld}, embed_columns(f32(ctx.random(m * ld)), in["z"], m, di, ld, col0)).data +
                             col0,
                         {m, di}, "z")
                : ctx.up("z", {m, di}, in["z"]);
  Tensor out = ctx.zeros("out", {m, di}), rstd = ctx.zeros("rstd", {m, groups});
  gated_rmsnorm_forward(ctx.backend, {out, rstd, y, z, w, groups, norm_before_gate, static_cast<float>(eps), ld});
  ctx.expect_close("out", ctx.down(out), ref(in), kForwardF32);
  Vec dout = f32(ctx.random(m * di));
  const Vec dz_before = f32(ctx.random(m * (ld ? ld : di)));
  Tensor dz_buffer = ctx.up("dz", {m, ld ? ld : di}, dz_before);
  Tensor dz(dz_buffer.data + col0, {m, di}, "dz");
  Tensor dy = ctx.zeros("dy", {m, di}), dw = ctx.zeros("dw", {di});
  gated_rmsnorm_backward(ctx.backend, {dy, dz, dw, ctx.up("dout", {m, di}, dout), y, z, w, rstd, groups,
                                       norm_before_gate, ld, ld});
  const Vec dz_after = ctx.down(dz_buffer);
  if (ld) expect_outside_unchanged(ctx, "dz buffer", dz_after, dz_before, m, di, ld, col0);
  ctx.check_gradients(in, ref, dout,
                      {{"y", ctx.down(dy)}, {"z", extract_columns(dz_after, m, di, ld ? ld : di, col0)},
                       {"w", ctx.down(dw)}});
}

void test_gated_rmsnorm(Ctx& ctx) {
  // group size 4: the CUDA kernels holding the group in float4 registers; 5: the strided ones
  for (const int64_t di : {12, 15})
    for (bool norm_before_gate : {false, true}) gated_rmsnorm_case(ctx, 4, di, 3, norm_before_gate);
  // z / dz with a row pitch: float4-aligned columns (pitch 24, column 8), then unaligned ones
  for (bool norm_before_gate : {false, true}) {
    gated_rmsnorm_case(ctx, 4, 12, 3, norm_before_gate, 24, 8);
    gated_rmsnorm_case(ctx, 4, 15, 3, norm_before_gate, 19, 1);
  }
}

// ---------------------------------------------------------------------------------------------
// Causal conv1d
// ---------------------------------------------------------------------------------------------

// ld > 0: x and dx are the C columns at col0 of (B*T, ld) buffers (Mamba-2 reads xBC straight out of
// its in_proj output and writes dxBC into its gradient); the rest of the dx buffer must come back
// untouched. split = {C0, C1} (C2 = C - C0 - C1): y and dy as 3 column parts (Mamba-2's x, B, C).
void conv1d_case(Ctx& ctx, int64_t b, int64_t t, int64_t c, int64_t k, bool silu, int64_t ld = 0, int64_t col0 = 0,
                 std::pair<int64_t, int64_t> split = {0, 0}) {
  ctx.test = std::string(silu ? "conv1d/silu" : "conv1d/linear") + " C" + std::to_string(c) +
             (ld ? " pitch " + std::to_string(ld) : "") +
             (split.first ? " split " + std::to_string(split.first) + "/" + std::to_string(split.second) : "");
  // y / dy parts: columns [begin[i], begin[i + 1])
  const int64_t begin[4] = {0, split.first, split.first + split.second, c};
  const int part_count = split.first ? 3 : 1;
  auto part_end = [&](int i) { return part_count == 1 ? c : begin[i + 1]; };
  const int64_t rows = b * t, pitch = ld ? ld : c;
  Inputs in{{"x", f32(ctx.random(b * t * c))}, {"w", f32(ctx.random(c * k))}, {"bias", f32(ctx.random(c))}};
  auto ref = [&](const Inputs& v) {
    const Vec &x = v.at("x"), &w = v.at("w"), &bias = v.at("bias");
    Vec y(b * t * c);
    for (int64_t bb = 0; bb < b; ++bb)
      for (int64_t tt = 0; tt < t; ++tt)
        for (int64_t cc = 0; cc < c; ++cc) {
          double acc = bias[cc];
          for (int64_t j = 0; j < k; ++j) {
            const int64_t src = tt - k + 1 + j;
            if (src >= 0) acc += w[cc * k + j] * x[(bb * t + src) * c + cc];
          }
          y[(bb * t + tt) * c + cc] = silu ? acc * sigmoid(acc) : acc;
        }
    return y;
  };
  Tensor x_buffer = ctx.up("x", {rows, pitch}, embed_columns(f32(ctx.random(rows * pitch)), in["x"], rows, c, pitch, col0));
  Tensor x(x_buffer.data + col0, {b, t, c}, "x");
  Tensor w = ctx.up("w", {c, k}, in["w"]), bias = ctx.up("bias", {c}, in["bias"]);
  Tensor parts[3];
  for (int i = 0; i < part_count; ++i) parts[i] = ctx.zeros("y" + std::to_string(i), {b, t, part_end(i) - begin[i]});
  Conv1dFwd fwd{{}, x, w, bias, silu, ld};
  for (int i = 0; i < 3; ++i) fwd.y_parts[i] = parts[i];
  if (part_count == 1) std::swap(fwd.y, fwd.y_parts[0]);
  conv1d_forward(ctx.backend, fwd);
  Vec got(b * t * c);
  for (int i = 0; i < part_count; ++i) {
    got = embed_columns(got, ctx.down(parts[i]), b * t, part_end(i) - begin[i], c, begin[i]);
  }
  Vec want = ref(in);
  ctx.expect_close("y", got, want, kForwardF32);
  Vec dy = f32(ctx.random(b * t * c));
  Conv1dBwd bwd;
  for (int i = 0; i < part_count; ++i) {
    const int64_t width = part_end(i) - begin[i];
    bwd.dy_parts[i] = ctx.up("dy" + std::to_string(i), {b, t, width}, extract_columns(dy, b * t, width, c, begin[i]));
  }
  if (part_count == 1) std::swap(bwd.dy, bwd.dy_parts[0]);
  const Vec dx_before = f32(ctx.random(rows * pitch));
  Tensor dx_buffer = ctx.up("dx", {rows, pitch}, dx_before);
  Tensor dx(dx_buffer.data + col0, {b, t, c}, "dx");
  Tensor dw = ctx.zeros("dw", {c, k}), dbias = ctx.zeros("dbias", {c});
  bwd.dx = dx;
  bwd.dw = dw;
  bwd.dbias = dbias;
  bwd.x = x;
  bwd.w = w;
  bwd.bias = bias;
  bwd.silu = silu;
  bwd.x_ld = bwd.dx_ld = ld;
  conv1d_backward(ctx.backend, bwd);
  const Vec dx_after = ctx.down(dx_buffer);
  if (ld) expect_outside_unchanged(ctx, "dx buffer", dx_after, dx_before, rows, c, pitch, col0);
  ctx.check_gradients(in, ref, dy,
                      {{"x", extract_columns(dx_after, rows, c, pitch, col0)}, {"w", ctx.down(dw)},
                       {"bias", ctx.down(dbias)}});
  if (ld || split.first) return;  // the decode step reads a contiguous token
  // decode: stepping token by token reproduces the forward
  Tensor state = ctx.zeros("state", {b, k - 1, c}), ystep = ctx.zeros("ystep", {b, c});
  Vec stepped(b * t * c);
  for (int64_t tt = 0; tt < t; ++tt) {
    Vec xt(b * c);
    for (int64_t bb = 0; bb < b; ++bb)
      for (int64_t cc = 0; cc < c; ++cc) xt[bb * c + cc] = in["x"][(bb * t + tt) * c + cc];
    conv1d_step(ctx.backend, {ystep, state, ctx.up("xt", {b, c}, xt), w, bias, silu});
    Vec yt = ctx.down(ystep);
    for (int64_t bb = 0; bb < b; ++bb)
      for (int64_t cc = 0; cc < c; ++cc) stepped[(bb * t + tt) * c + cc] = yt[bb * c + cc];
  }
  ctx.expect_close("step == forward", stepped, want, kForwardF32);
}

void test_conv1d(Ctx& ctx) {
  // c = 70: scalar channel lanes; c = 72: float4 lanes on CUDA; t = 20 spans two CUDA time tiles
  for (const auto& [t, c] : {std::pair<int64_t, int64_t>{9, 70}, {20, 72}})
    for (bool silu : {true, false}) conv1d_case(ctx, 2, t, c, 4, silu);
  // x / dx with a row pitch: float4-aligned columns (pitch 84, column 8), then unaligned ones
  conv1d_case(ctx, 2, 20, 72, 4, true, 84, 8);
  conv1d_case(ctx, 2, 9, 70, 4, true, 75, 3);
  // y / dy in 3 column parts, alone and with pitched x / dx (Mamba-2's layout); aligned, then not
  conv1d_case(ctx, 2, 20, 72, 4, true, 0, 0, {40, 16});
  conv1d_case(ctx, 2, 20, 72, 4, false, 84, 8, {40, 16});
  conv1d_case(ctx, 2, 9, 70, 4, true, 75, 3, {37, 17});
}

// ---------------------------------------------------------------------------------------------
// Mamba-2 SSD: the reference is the token-by-token recurrence (the definition)
// ---------------------------------------------------------------------------------------------

struct SsdShape {
  int64_t b, t, h, p, g, n;
};

// Outputs: y (B,T,H,P) then the final state (B,H,P,N).
Vec ref_ssd(const Inputs& v, const SsdShape& s, const SsdParams& params) {
  const Vec &x = v.at("x"), &dt_raw = v.at("dt_raw"), &dt_bias = v.at("dt_bias"), &a_log = v.at("a_log");
  const Vec &bm = v.at("b"), &cm = v.at("c"), &d = v.at("d"), &h0 = v.at("initial_state");
  Vec y(s.b * s.t * s.h * s.p), fin(s.b * s.h * s.p * s.n);
  for (int64_t b = 0; b < s.b; ++b)
    for (int64_t h = 0; h < s.h; ++h) {
      const int64_t g = h / (s.h / s.g);
      Vec state(h0.begin() + (b * s.h + h) * s.p * s.n, h0.begin() + (b * s.h + h + 1) * s.p * s.n);
      for (int64_t t = 0; t < s.t; ++t) {
        double dt = softplus(dt_raw[(b * s.t + t) * s.h + h] + dt_bias[h]);
        if (params.dt_limit) dt = std::min<double>(std::max<double>(dt, params.dt_min), params.dt_max);
        const double decay = std::exp(dt * -std::exp(a_log[h]));
        const double* xb = &x[((b * s.t + t) * s.h + h) * s.p];
        const double* bb = &bm[((b * s.t + t) * s.g + g) * s.n];
        const double* cc = &cm[((b * s.t + t) * s.g + g) * s.n];
        for (int64_t p = 0; p < s.p; ++p) {
          double acc = 0.0;
          for (int64_t n = 0; n < s.n; ++n) {
            double& st = state[p * s.n + n];
            st = decay * st + dt * xb[p] * bb[n];
            acc += st * cc[n];
          }
          y[((b * s.t + t) * s.h + h) * s.p + p] = acc + d[h] * xb[p];
        }
      }
      std::copy(state.begin(), state.end(), fin.begin() + (b * s.h + h) * s.p * s.n);
    }
  return concat(y, fin);
}

// Runs ssd_step over the T tokens of `in` (the ref_ssd inputs) from its initial state; returns the
// per-token outputs (B,T,H,P) followed by the final state (B,H,P,N), the layout ref_ssd returns.
Vec ssd_steps(Ctx& ctx, const Inputs& in, const SsdShape& s, const SsdParams& params) {
  Tensor dt_bias = ctx.up("dt_bias", {s.h}, in.at("dt_bias")), a_log = ctx.up("a_log", {s.h}, in.at("a_log"));
  Tensor d = ctx.up("d", {s.h}, in.at("d"));
  Tensor state = ctx.up("state", {s.b, s.h, s.p, s.n}, in.at("initial_state"));
  Tensor ystep = ctx.zeros("ystep", {s.b, s.h, s.p});
  Vec stepped(s.b * s.t * s.h * s.p);
  for (int64_t t = 0; t < s.t; ++t) {
    Vec xt(s.b * s.h * s.p), dtt(s.b * s.h), bt(s.b * s.g * s.n), ct(s.b * s.g * s.n);
    for (int64_t b = 0; b < s.b; ++b) {
      for (int64_t i = 0; i < s.h * s.p; ++i) xt[b * s.h * s.p + i] = in.at("x")[(b * s.t + t) * s.h * s.p + i];
      for (int64_t i = 0; i < s.h; ++i) dtt[b * s.h + i] = in.at("dt_raw")[(b * s.t + t) * s.h + i];
      for (int64_t i = 0; i < s.g * s.n; ++i) {
        bt[b * s.g * s.n + i] = in.at("b")[(b * s.t + t) * s.g * s.n + i];
        ct[b * s.g * s.n + i] = in.at("c")[(b * s.t + t) * s.g * s.n + i];
      }
    }
    ssd_step(ctx.backend, {ystep, state, ctx.up("xt", {s.b, s.h, s.p}, xt), ctx.up("dtt", {s.b, s.h}, dtt), dt_bias,
                           a_log, ctx.up("bt", {s.b, s.g, s.n}, bt), ctx.up("ct", {s.b, s.g, s.n}, ct), d, params});
    Vec yt = ctx.down(ystep);
    for (int64_t b = 0; b < s.b; ++b)
      for (int64_t i = 0; i < s.h * s.p; ++i) stepped[(b * s.t + t) * s.h * s.p + i] = yt[b * s.h * s.p + i];
  }
  return concat(stepped, ctx.down(state));
}

// Random SSD inputs at shape s (dt_raw around softplus's bend, A from a_log in [-1, 1]).
Inputs ssd_inputs(Ctx& ctx, const SsdShape& s) {
  return {{"x", f32(ctx.random(s.b * s.t * s.h * s.p))},
          {"dt_raw", f32(ctx.random(s.b * s.t * s.h, -2.0, 1.0))},
          {"dt_bias", f32(ctx.random(s.h, -1.0, 0.5))},
          {"a_log", f32(ctx.random(s.h, -1.0, 1.0))},
          {"b", f32(ctx.random(s.b * s.t * s.g * s.n))},
          {"c", f32(ctx.random(s.b * s.t * s.g * s.n))},
          {"d", f32(ctx.random(s.h))},
          {"initial_state", f32(ctx.random(s.b * s.h * s.p * s.n, -0.5, 0.5))}};
}

void test_ssd(Ctx& ctx) {
  const SsdShape s{2, 11, 4, 3, 2, 5};
  struct Variant {
    const char* label;
    int64_t chunk;
    bool limit;
  };
  for (const Variant& variant : {Variant{"chunk4", 4, false}, Variant{"chunk16-single", 16, false},
                                 Variant{"chunk3-dt_limit", 3, true}}) {
    ctx.test = std::string("ssd/") + variant.label;
    SsdParams params;
    params.chunk = variant.chunk;
    params.dt_limit = variant.limit;
    params.dt_min = 0.05f;
    params.dt_max = 0.6f;
    const int64_t chunks = ssd_num_chunks(s.t, params.chunk);
    Inputs in = ssd_inputs(ctx, s);
    if (variant.limit) {  // keep every dt away from the clamp edges so finite differences are smooth
      for (int64_t i = 0; i < s.b * s.t * s.h; ++i) {
        const double v = softplus(in["dt_raw"][i] + in["dt_bias"][i % s.h]);
        if (std::fabs(v - params.dt_min) < 1e-3 || std::fabs(v - params.dt_max) < 1e-3) in["dt_raw"][i] += 0.01;
      }
    }
    Tensor x = ctx.up("x", {s.b, s.t, s.h, s.p}, in["x"]), dt_raw = ctx.up("dt_raw", {s.b, s.t, s.h}, in["dt_raw"]);
    Tensor dt_bias = ctx.up("dt_bias", {s.h}, in["dt_bias"]), a_log = ctx.up("a_log", {s.h}, in["a_log"]);
    Tensor bm = ctx.up("b", {s.b, s.t, s.g, s.n}, in["b"]), cm = ctx.up("c", {s.b, s.t, s.g, s.n}, in["c"]);
    Tensor d = ctx.up("d", {s.h}, in["d"]), h0 = ctx.up("h0", {s.b, s.h, s.p, s.n}, in["initial_state"]);
    Tensor y = ctx.zeros("y", {s.b, s.t, s.h, s.p}), dt = ctx.zeros("dt", {s.b, s.t, s.h});
    Tensor states = ctx.zeros("chunk_states", {s.b * chunks, s.h, s.p, s.n});
    Tensor fin = ctx.zeros("final_state", {s.b, s.h, s.p, s.n});
    ssd_forward(ctx.backend, {y, dt, states, fin, x, dt_raw, dt_bias, a_log, bm, cm, d, h0, params});
    auto ref = [&](const Inputs& v) { return ref_ssd(v, s, params); };
    Vec want = ref(in);
    ctx.expect_close("y and final state", concat(ctx.down(y), ctx.down(fin)), want, kForwardF32);

    Vec dy = f32(ctx.random(s.b * s.t * s.h * s.p)), dfin = f32(ctx.random(s.b * s.h * s.p * s.n));
    Tensor gx = ctx.zeros("dx", {s.b, s.t, s.h, s.p}), gdt = ctx.zeros("ddt_raw", {s.b, s.t, s.h});
    Tensor gdtb = ctx.zeros("ddt_bias", {s.h}), gal = ctx.zeros("da_log", {s.h}), gd = ctx.zeros("dd", {s.h});
    Tensor gb = ctx.zeros("db", {s.b, s.t, s.g, s.n}), gc = ctx.zeros("dc", {s.b, s.t, s.g, s.n});
    Tensor gh0 = ctx.zeros("dh0", {s.b, s.h, s.p, s.n});
    SsdBwd bwd{gx, gdt, gdtb, gal, gb, gc, gd, gh0,
               ctx.up("dy", {s.b, s.t, s.h, s.p}, dy), ctx.up("dfin", {s.b, s.h, s.p, s.n}, dfin),
               x, dt_raw, dt_bias, a_log, bm, cm, d, dt, states, params};
    ssd_backward(ctx.backend, bwd);
    ctx.check_gradients(in, ref, concat(dy, dfin),
                        {{"x", ctx.down(gx)}, {"dt_raw", ctx.down(gdt)}, {"dt_bias", ctx.down(gdtb)},
                         {"a_log", ctx.down(gal)}, {"b", ctx.down(gb)}, {"c", ctx.down(gc)}, {"d", ctx.down(gd)},
                         {"initial_state", ctx.down(gh0)}});
    // decode: the recurrent step from the same initial state reproduces y and the final state
    ctx.expect_close("step == recurrence", ssd_steps(ctx, in, s, params), want, kForwardF32);
  }
}

// The decode step alone at a shape crossing its kernel's edges: N = 136 (float4 columns past one warp's
// 32 lanes), P = 37 (past one block's 32 rows), and N = 5 (the scalar path), with and without dt_limit.
void test_ssd_step(Ctx& ctx) {
  struct Variant {
    const char* label;
    SsdShape s;
    bool limit;
  };
  for (const Variant& variant : {Variant{"n136-p37", {2, 3, 4, 37, 2, 136}, false},
                                 Variant{"n5-p33-dt_limit", {3, 2, 2, 33, 1, 5}, true}}) {
    ctx.test = std::string("ssd_step/") + variant.label;
    const SsdShape& s = variant.s;
    SsdParams params;
    params.dt_limit = variant.limit;
    params.dt_min = 0.05f;
    params.dt_max = 0.6f;
    const Inputs in = ssd_inputs(ctx, s);
    ctx.expect_close("step == recurrence", ssd_steps(ctx, in, s, params), ref_ssd(in, s, params), kForwardF32);
  }
}

// ---------------------------------------------------------------------------------------------
// Attention and RoPE
// ---------------------------------------------------------------------------------------------

struct AttnShape {
  int64_t b, t, h, hkv, p, window;
};

Vec ref_attention(const Inputs& v, const AttnShape& s) {
  const Vec &q = v.at("q"), &k = v.at("k"), &val = v.at("v");
  const double scale = 1.0 / std::sqrt(double(s.p));
  Vec out(s.b * s.t * s.h * s.p, 0.0);
  for (int64_t b = 0; b < s.b; ++b)
    for (int64_t h = 0; h < s.h; ++h) {
      const int64_t kh = h / (s.h / s.hkv);
      for (int64_t t = 0; t < s.t; ++t) {
        const int64_t lo = s.window > 0 ? std::max<int64_t>(0, t - s.window + 1) : 0;
        Vec scores(t + 1, -1e300);
        double mx = -1e300, sum = 0.0;
        for (int64_t u = lo; u <= t; ++u) {
          double dot = 0.0;
          for (int64_t p = 0; p < s.p; ++p) dot += q[((b * s.t + t) * s.h + h) * s.p + p] * k[((b * s.t + u) * s.hkv + kh) * s.p + p];
          scores[u] = dot * scale;
          mx = std::max(mx, scores[u]);
        }
        for (int64_t u = lo; u <= t; ++u) sum += std::exp(scores[u] - mx);
        for (int64_t u = lo; u <= t; ++u) {
          const double w = std::exp(scores[u] - mx) / sum;
          for (int64_t p = 0; p < s.p; ++p)
            out[((b * s.t + t) * s.h + h) * s.p + p] += w * val[((b * s.t + u) * s.hkv + kh) * s.p + p];
        }
      }
    }
  return out;
}

// float64 gradients of L = sum(dout * attention(q, k, v)) by the softmax formulas: with P the
// probabilities, dP = dout v^T, dS = P (dP - rowsum(P dP)), dq = scale dS k, dk = scale dS^T q,
// dv = P^T dout. test_attention checks this against finite differences at small shapes;
// test_attention_head_dims uses it where finite differences would take minutes.
std::map<std::string, Vec> ref_attention_grads(const Inputs& v, const Vec& dout, const AttnShape& s) {
  const Vec &q = v.at("q"), &k = v.at("k"), &val = v.at("v");
  const double scale = 1.0 / std::sqrt(double(s.p));
  std::map<std::string, Vec> g{{"q", Vec(q.size(), 0.0)}, {"k", Vec(k.size(), 0.0)}, {"v", Vec(val.size(), 0.0)}};
  auto qi = [&](int64_t b, int64_t t, int64_t h) { return ((b * s.t + t) * s.h + h) * s.p; };
  auto ki = [&](int64_t b, int64_t t, int64_t kh) { return ((b * s.t + t) * s.hkv + kh) * s.p; };
  for (int64_t b = 0; b < s.b; ++b)
    for (int64_t h = 0; h < s.h; ++h) {
      const int64_t kh = h / (s.h / s.hkv);
      for (int64_t t = 0; t < s.t; ++t) {
        const int64_t lo = s.window > 0 ? std::max<int64_t>(0, t - s.window + 1) : 0;
        Vec prob(t + 1, 0.0), dprob(t + 1, 0.0);
        double mx = -1e300, sum = 0.0;
        for (int64_t u = lo; u <= t; ++u) {
          double dot = 0.0;
          for (int64_t p = 0; p < s.p; ++p) dot += q[qi(b, t, h) + p] * k[ki(b, u, kh) + p];
          prob[u] = dot * scale;
          mx = std::max(mx, prob[u]);
        }
        for (int64_t u = lo; u <= t; ++u) sum += std::exp(prob[u] - mx);
        double row = 0.0;  // rowsum(P dP)
        for (int64_t u = lo; u <= t; ++u) {
          prob[u] = std::exp(prob[u] - mx) / sum;
          for (int64_t p = 0; p < s.p; ++p) dprob[u] += dout[qi(b, t, h) + p] * val[ki(b, u, kh) + p];
          row += prob[u] * dprob[u];
        }
        for (int64_t u = lo; u <= t; ++u) {
          const double ds = prob[u] * (dprob[u] - row) * scale;
          for (int64_t p = 0; p < s.p; ++p) {
            g["q"][qi(b, t, h) + p] += ds * k[ki(b, u, kh) + p];
            g["k"][ki(b, u, kh) + p] += ds * q[qi(b, t, h) + p];
            g["v"][ki(b, u, kh) + p] += prob[u] * dout[qi(b, t, h) + p];
          }
        }
      }
    }
  return g;
}

// Decode check shared by the attention tests: feeding the tokens of `in` (q, k, v) one by one through
// the KV cache (attention_decode) reproduces the forward output `want` (B,T,H,P).
void check_decode_matches_forward(Ctx& ctx, const AttnShape& s, Inputs& in, const Vec& want) {
  Tensor kc = ctx.zeros("k_cache", {s.b, s.t, s.hkv, s.p}), vc = ctx.zeros("v_cache", {s.b, s.t, s.hkv, s.p});
  Tensor od = ctx.zeros("out_step", {s.b, s.h, s.p});
  Vec stepped(want.size());
  for (int64_t t = 0; t < s.t; ++t) {
    Vec qt(s.b * s.h * s.p), kt(s.b * s.hkv * s.p), vt(s.b * s.hkv * s.p);
    for (int64_t b = 0; b < s.b; ++b) {
      for (int64_t i = 0; i < s.h * s.p; ++i) qt[b * s.h * s.p + i] = in["q"][(b * s.t + t) * s.h * s.p + i];
      for (int64_t i = 0; i < s.hkv * s.p; ++i) {
        kt[b * s.hkv * s.p + i] = in["k"][(b * s.t + t) * s.hkv * s.p + i];
        vt[b * s.hkv * s.p + i] = in["v"][(b * s.t + t) * s.hkv * s.p + i];
      }
    }
    attention_decode(ctx.backend, {od, ctx.up("qt", {s.b, s.h, s.p}, qt), ctx.up("kt", {s.b, s.hkv, s.p}, kt),
                                   ctx.up("vt", {s.b, s.hkv, s.p}, vt), kc, vc, t, 0.0f, s.window});
    const Vec o = ctx.down(od);
    for (int64_t b = 0; b < s.b; ++b)
      for (int64_t i = 0; i < s.h * s.p; ++i) stepped[(b * s.t + t) * s.h * s.p + i] = o[b * s.h * s.p + i];
  }
  ctx.expect_close("decode == forward", stepped, want, kForwardF32);
}

void test_attention(Ctx& ctx) {
  for (const AttnShape& s : {AttnShape{2, 37, 4, 2, 8, 0}, AttnShape{1, 70, 2, 1, 4, 0}, AttnShape{1, 40, 3, 3, 5, 7}}) {
    ctx.test = "attention/T" + std::to_string(s.t) + "_H" + std::to_string(s.h) + "_Hkv" + std::to_string(s.hkv) +
               (s.window ? "_window" + std::to_string(s.window) : "");
    Inputs in{{"q", f32(ctx.random(s.b * s.t * s.h * s.p, -2, 2))}, {"k", f32(ctx.random(s.b * s.t * s.hkv * s.p, -2, 2))},
              {"v", f32(ctx.random(s.b * s.t * s.hkv * s.p))}};
    Tensor q = ctx.up("q", {s.b, s.t, s.h, s.p}, in["q"]), k = ctx.up("k", {s.b, s.t, s.hkv, s.p}, in["k"]);
    Tensor v = ctx.up("v", {s.b, s.t, s.hkv, s.p}, in["v"]);
    Tensor out = ctx.zeros("out", {s.b, s.t, s.h, s.p}), lse = ctx.zeros("lse", {s.b, s.h, s.t});
    attention_forward(ctx.backend, {out, lse, q, k, v, 0.0f, s.window});
    auto ref = [&](const Inputs& x) { return ref_attention(x, s); };
    Vec want = ref(in);
    ctx.expect_close("out", ctx.down(out), want, kForwardF32);
    Vec dout = f32(ctx.random(s.b * s.t * s.h * s.p));
    Tensor dq = ctx.zeros("dq", {s.b, s.t, s.h, s.p}), dk = ctx.zeros("dk", {s.b, s.t, s.hkv, s.p});
    Tensor dv = ctx.zeros("dv", {s.b, s.t, s.hkv, s.p});
    attention_backward(ctx.backend, {dq, dk, dv, ctx.up("dout", {s.b, s.t, s.h, s.p}, dout), q, k, v, out, lse, 0.0f, s.window});
    ctx.check_gradients(in, ref, dout, {{"q", ctx.down(dq)}, {"k", ctx.down(dk)}, {"v", ctx.down(dv)}});
    if (s.t == 37) {  // the float64 analytic gradients (test_attention_head_dims' reference) are right
      const std::string name = ctx.test;
      ctx.test += "/float64_analytic_gradients";
      ctx.check_gradients(in, ref, dout, ref_attention_grads(in, dout, s));
      ctx.test = name;
    }
    check_decode_matches_forward(ctx, s, in, want);
  }
}

// Prints max|got - want| / max|want| of a reduced-precision result (how close it runs to its tolerance).
void report_error_scale(const Ctx& ctx, bool reduced_precision, const std::string& what, const Vec& got,
                        const Vec& want) {
  if (!reduced_precision) return;
  double err = 0.0, largest = 0.0;
  for (size_t i = 0; i < want.size(); ++i) {
    err = std::max(err, std::fabs(got[i] - want[i]));
    largest = std::max(largest, std::fabs(want[i]));
  }
  std::printf("  info %s / %s: max err / max|want| = %.2e\n", ctx.test.c_str(), what.c_str(), err / largest);
}

// Head dims 64 and 128 at lengths that cross 64-row tiles, with GQA and a sliding window: the sizes
// the CUDA backend runs on tensor cores (bf16 operands, fp32 accumulation) when its GEMMs run in
// bf16 mode. Every backend runs them in float32 with the float32 tolerances; CUDA also in bf16 mode
// with the bf16 tolerances. Gradients are checked against ref_attention_grads.
void test_attention_head_dims(Ctx& ctx) {
  struct Mode {
    const char* label;
    std::function<void()> select;
    Tolerance forward, gradient;
    bool relative;  // atol relative to max|want| (bf16)
  };
  std::vector<Mode> modes{{"fp32", [] {}, kForwardF32, kGradientF32, false}};
#ifdef STRATA_HAVE_CUDA
  CudaBackend* cuda = dynamic_cast<CudaBackend*>(&ctx.backend);
  const CudaGemmMode saved = cuda ? cuda->gemm_mode() : CudaGemmMode::Fp32;
  if (cuda) {
    modes[0].select = [cuda] { cuda->set_gemm_mode(CudaGemmMode::Fp32); };
    modes.push_back({"bf16", [cuda] { cuda->set_gemm_mode(CudaGemmMode::Bf16); }, kForwardBf16, kGradientBf16, true});
  }
#endif
  // the last two: query groups of 8 and 6 (CUDA decode's tiled kernel; 300 steps reach two splits)
  const AttnShape shapes[] = {{1, 150, 4, 2, 64, 0}, {2, 77, 2, 1, 128, 0}, {1, 200, 2, 2, 64, 50},
                              {1, 130, 4, 1, 128, 70}, {1, 300, 16, 2, 64, 0}, {2, 96, 6, 1, 128, 40}};
  for (const AttnShape& s : shapes) {
    Inputs in{{"q", f32(ctx.random(s.b * s.t * s.h * s.p, -2, 2))}, {"k", f32(ctx.random(s.b * s.t * s.hkv * s.p, -2, 2))},
              {"v", f32(ctx.random(s.b * s.t * s.hkv * s.p))}};
    Vec dout = f32(ctx.random(s.b * s.t * s.h * s.p));
    const Vec want = ref_attention(in, s);
    const std::map<std::string, Vec> want_grads = ref_attention_grads(in, dout, s);
    for (const Mode& mode : modes) {
      mode.select();
      ctx.test = "attention_head_dims/" + std::string(mode.label) + "_T" + std::to_string(s.t) + "_H" +
                 std::to_string(s.h) + "_Hkv" + std::to_string(s.hkv) + "_P" + std::to_string(s.p) +
                 (s.window ? "_window" + std::to_string(s.window) : "");
      Tensor q = ctx.up("q", {s.b, s.t, s.h, s.p}, in["q"]), k = ctx.up("k", {s.b, s.t, s.hkv, s.p}, in["k"]);
      Tensor v = ctx.up("v", {s.b, s.t, s.hkv, s.p}, in["v"]);
      Tensor out = ctx.zeros("out", {s.b, s.t, s.h, s.p}), lse = ctx.zeros("lse", {s.b, s.h, s.t});
      attention_forward(ctx.backend, {out, lse, q, k, v, 0.0f, s.window});
      const Vec got = ctx.down(out);
      ctx.expect_close("out", got, want, mode.relative ? relative_to_max(want, mode.forward) : mode.forward);
      report_error_scale(ctx, mode.relative, "out", got, want);
      Tensor dq = ctx.zeros("dq", {s.b, s.t, s.h, s.p}), dk = ctx.zeros("dk", {s.b, s.t, s.hkv, s.p});
      Tensor dv = ctx.zeros("dv", {s.b, s.t, s.hkv, s.p});
      attention_backward(ctx.backend,
                         {dq, dk, dv, ctx.up("dout", {s.b, s.t, s.h, s.p}, dout), q, k, v, out, lse, 0.0f, s.window});
      const std::pair<const char*, Tensor> grads[] = {{"q", dq}, {"k", dk}, {"v", dv}};
      for (const auto& [name, got] : grads) {
        const Vec& w = want_grads.at(name);
        const Vec g = ctx.down(got);
        ctx.expect_close(std::string("d") + name, g, w, mode.relative ? relative_to_max(w, mode.gradient) : mode.gradient);
        report_error_scale(ctx, mode.relative, std::string("d") + name, g, w);
      }
      if (mode.relative) continue;
      // decode (float32 in every mode)
      check_decode_matches_forward(ctx, s, in, want);
    }
  }
#ifdef STRATA_HAVE_CUDA
  if (cuda) cuda->set_gemm_mode(saved);
#endif
}

void test_rope(Ctx& ctx) {
  const int64_t b = 2, t = 6, h = 3, p = 10, offset = 5;
  const double theta = 10000.0, fraction = 0.8;  // rotates the first 8 of 10 dims
  Vec x = f32(ctx.random(b * t * h * p));
  Tensor tx = ctx.up("x", {b, t, h, p}, x);
  rope(ctx.backend, {tx, static_cast<float>(theta), static_cast<float>(fraction), offset, false});
  const int64_t rotated = 8, half = rotated / 2;
  Vec want = x;
  for (int64_t bb = 0; bb < b; ++bb)
    for (int64_t tt = 0; tt < t; ++tt)
      for (int64_t hh = 0; hh < h; ++hh)
        for (int64_t i = 0; i < half; ++i) {
          const double angle = double(offset + tt) * std::pow(theta, -2.0 * i / rotated);
          const int64_t base = ((bb * t + tt) * h + hh) * p;
          want[base + i] = x[base + i] * std::cos(angle) - x[base + i + half] * std::sin(angle);
          want[base + i + half] = x[base + i + half] * std::cos(angle) + x[base + i] * std::sin(angle);
        }
  ctx.expect_close("forward", ctx.down(tx), want, kForwardF32);
  rope(ctx.backend, {tx, static_cast<float>(theta), static_cast<float>(fraction), offset, true});
  ctx.expect_close("inverse (the backward) restores the input", ctx.down(tx), x, kForwardF32);
}

// ---------------------------------------------------------------------------------------------
// MoE
// ---------------------------------------------------------------------------------------------

// m = 9 and m = 300 tokens: a backend may route few tokens differently (CUDA: one block) from many.
void test_moe_router(Ctx& ctx) {
  const int64_t e = 6, k = 2;
  for (int64_t m : {9, 300}) {
    for (RouterType type : {RouterType::Softmax, RouterType::Sigmoid}) {
      for (bool norm : {true, false}) {
        ctx.test = std::string("moe_router/") + (type == RouterType::Softmax ? "softmax" : "sigmoid") +
                   (norm ? "_norm_topk" : "_raw") + (m > 9 ? "_m300" : "");
        RouterParams params{type, k, norm, 2.5f, 0.01f};
        Vec logits = f32(ctx.random(m * e, -2, 2)), bias = f32(ctx.random(e, -0.3, 0.3));
        Tensor tl = ctx.up("logits", {m, e}, logits), tb = ctx.up("expert_bias", {e}, bias);
        Tensor scores = ctx.zeros("scores", {m, e}), weights = ctx.zeros("topk_weight", {m, k});
        Tensor load = ctx.zeros("load", {e}), aux = ctx.zeros("aux", {1});
        TensorI32 index = ctx.arena.tensor_i32("topk_index", {m, k});
        moe_router_forward(ctx.backend, {scores, index, weights, load, aux, tl, tb, params});
        // reference: selection from biased float64 scores, fixed for the finite differences
        std::vector<int32_t> chosen(m * k);
        Vec want_load(e, 0.0);
        auto scores_of = [&](const Vec& lg, int64_t i) {
          Vec sc(e);
          double mx = -1e300, sum = 0.0;
          for (int64_t j = 0; j < e; ++j) mx = std::max(mx, lg[i * e + j]);
          for (int64_t j = 0; j < e; ++j) {
            sc[j] = type == RouterType::Softmax ? std::exp(lg[i * e + j] - mx) : sigmoid(lg[i * e + j]);
            sum += sc[j];
          }
          if (type == RouterType::Softmax)
            for (double& s : sc) s /= sum;
          return sc;
        };
        for (int64_t i = 0; i < m; ++i) {
          Vec sc = scores_of(logits, i);
          std::vector<bool> taken(e, false);
          for (int64_t slot = 0; slot < k; ++slot) {
            int64_t best = -1;
            for (int64_t j = 0; j < e; ++j)
              if (!taken[j] && (best < 0 || sc[j] + bias[j] > sc[best] + bias[best])) best = j;
            taken[best] = true;
            chosen[i * k + slot] = static_cast<int32_t>(best);
            want_load[best] += 1.0;
          }
        }
        auto ref = [&](const Inputs& v) {
          const Vec& lg = v.at("logits");
          Vec out(m * k + 1, 0.0), mean_p(e, 0.0);
          for (int64_t i = 0; i < m; ++i) {
            Vec sc = scores_of(lg, i);
            double total = 0.0, picked = 0.0;
            for (double s : sc) total += s;
            for (int64_t j = 0; j < e; ++j) mean_p[j] += (type == RouterType::Softmax ? sc[j] : sc[j] / total) / m;
            for (int64_t slot = 0; slot < k; ++slot) picked += sc[chosen[i * k + slot]];
            for (int64_t slot = 0; slot < k; ++slot)
              out[i * k + slot] = params.routed_scaling * sc[chosen[i * k + slot]] / (norm ? picked : 1.0);
          }
          double aux_value = 0.0;
          for (int64_t j = 0; j < e; ++j) aux_value += want_load[j] / double(m * k) * mean_p[j];
          out[m * k] = params.aux_loss_coeff * e * aux_value;
          return out;
        };
        Inputs in{{"logits", logits}};
        Vec want = ref(in);
        const std::vector<int32_t> got_index = ctx.down_i32(index);
        ctx.expect_true("top-k indices", got_index == chosen);
        ctx.expect_close("expert load", ctx.down(load), want_load, kForwardF32);
        ctx.expect_close("weights and aux loss", concat(ctx.down(weights), ctx.down(aux)), want, kForwardF32);
        Vec dw = f32(ctx.random(m * k));
        const double daux = 0.7;
        Tensor dlogits = ctx.zeros("dlogits", {m, e});
        moe_router_backward(ctx.backend, {dlogits, ctx.up("dw", {m, k}, dw), scores, index, load, static_cast<float>(daux), params});
        ctx.check_gradients(in, ref, concat(dw, Vec{daux}), {{"logits", ctx.down(dlogits)}});
      }
    }
  }
}

void test_moe_dispatch(Ctx& ctx) {
  const int64_t m = 7, k = 2, e = 4, d = 5, o = 3;
  std::vector<int32_t> chosen{2, 0, 1, 2, 3, 0, 2, 1, 0, 3, 2, 3, 1, 0};  // expert 0..3, each token distinct
  TensorI32 index = ctx.up_i32("topk_index", {m, k}, chosen);
  TensorI32 offsets = ctx.arena.tensor_i32("offsets", {e + 1}), row_token = ctx.arena.tensor_i32("row_token", {m * k});
  TensorI32 slot_row = ctx.arena.tensor_i32("slot_row", {m, k});
  moe_routing_plan(ctx.backend, {offsets, row_token, slot_row, index, e});
  const std::vector<int32_t> off = ctx.down_i32(offsets), rows = ctx.down_i32(row_token), slots = ctx.down_i32(slot_row);
  bool plan_ok = off.front() == 0 && off.back() == m * k;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t s = 0; s < k; ++s) {
      const int32_t r = slots[i * k + s];
      const int32_t ex = chosen[i * k + s];
      plan_ok = plan_ok && rows[r] == i && r >= off[ex] && r < off[ex + 1];
    }
  ctx.expect_true("routing plan groups rows by expert", plan_ok);

  // permute -> expert linear -> unpermute, each against a float64 reference with gradients
  Inputs in{{"x", f32(ctx.random(m * d))}, {"w", f32(ctx.random(e * o * d))},
            {"weights", f32(ctx.random(m * k, 0.1, 1.0))}};
  auto ref = [&](const Inputs& v) {
    Vec y(m * o, 0.0);
    for (int64_t i = 0; i < m; ++i)
      for (int64_t s = 0; s < k; ++s) {
        const int64_t ex = chosen[i * k + s];
        for (int64_t j = 0; j < o; ++j) {
          double acc = 0.0;
          for (int64_t p = 0; p < d; ++p) acc += v.at("w")[(ex * o + j) * d + p] * v.at("x")[i * d + p];
          y[i * o + j] += v.at("weights")[i * k + s] * acc;
        }
      }
    return y;
  };
  Tensor x = ctx.up("x", {m, d}, in["x"]), w = ctx.up("w", {e, o, d}, in["w"]);
  Tensor weights = ctx.up("weights", {m, k}, in["weights"]);
  Tensor routed = ctx.zeros("routed", {m * k, d}), routed_out = ctx.zeros("routed_out", {m * k, o});
  Tensor y = ctx.zeros("y", {m, o});
  moe_permute_forward(ctx.backend, {routed, x, row_token});
  moe_expert_linear_forward(ctx.backend, routed_out, routed, w, offsets, "moe.expert_fc1", 0);
  moe_unpermute_forward(ctx.backend, {y, routed_out, weights, slot_row});
  ctx.expect_close("y", ctx.down(y), ref(in), kForwardF32);
  Vec dy = f32(ctx.random(m * o));
  Tensor d_routed_out = ctx.zeros("d_routed_out", {m * k, o}), dweights = ctx.zeros("dweights", {m, k});
  Tensor d_routed = ctx.zeros("d_routed", {m * k, d}), dw = ctx.zeros("dw", {e, o, d});
  Tensor dx = ctx.zeros("dx", {m, d});
  moe_unpermute_backward(ctx.backend, {d_routed_out, dweights, ctx.up("dy", {m, o}, dy), routed_out, weights, slot_row});
  moe_expert_linear_backward(ctx.backend, d_routed, dw, d_routed_out, routed, w, offsets, "moe.expert_fc1", 0);
  moe_permute_backward(ctx.backend, {dx, d_routed, slot_row});
  ctx.check_gradients(in, ref, dy, {{"x", ctx.down(dx)}, {"w", ctx.down(dw)}, {"weights", ctx.down(dweights)}});
  // aux-loss-free balancing moves the bias toward under-loaded experts
  Tensor eb = ctx.up("expert_bias", {3}, {0.0, 0.0, 0.0}), load = ctx.up("load", {3}, {5.0, 1.0, 3.0});
  if (ctx.backend.host_accessible()) {
    moe_update_expert_bias(eb, load, 0.1f);
    ctx.expect_close("expert bias update", ctx.down(eb), {-0.1, 0.1, 0.0}, kForwardF32);
  }
}

// The grouped expert GEMM on its own, at sizes that cross its tiles (64 x 64 outputs, 32-deep
// slices, split-K for few rows): uneven experts (one empty, one over a row tile), K and N not
// multiples of the tiles. Tolerance as the GEMM's (float32 sums of k products: atol scaled by sqrt(k)).
// K = 260 (a multiple of 4) takes CUDA's few-rows GEMV path in Fprop (77 rows: 8-row chunks), K = 261
// the tile path.
void moe_expert_gemm_case(Ctx& ctx, int64_t in) {
  const int64_t e = 4, o = 300;
  const std::vector<int32_t> off{0, 3, 3, 80, 90};
  const int64_t r = off.back();
  Vec x = f32(ctx.random(r * in)), w = f32(ctx.random(e * o * in)), dy = f32(ctx.random(r * o));
  Vec dw0 = f32(ctx.random(e * o * in));
  TensorI32 offsets = ctx.up_i32("offsets", {e + 1}, off);
  Tensor tx = ctx.up("x", {r, in}, x), tw = ctx.up("w", {e, o, in}, w), tdy = ctx.up("dy", {r, o}, dy);
  Tensor y = ctx.up("y", {r, o}, Vec(r * o, std::nan(""))), dx = ctx.up("dx", {r, in}, Vec(r * in, std::nan("")));
  Tensor dw = ctx.up("dw", {e, o, in}, dw0);
  moe_expert_gemm(ctx.backend, {GemmPass::Fprop, y, tx, tw, offsets});
  moe_expert_gemm(ctx.backend, {GemmPass::Dgrad, dx, tdy, tw, offsets});
  moe_expert_gemm(ctx.backend, {GemmPass::Wgrad, dw, tdy, tx, offsets});
  Vec want_y(r * o, 0.0), want_dx(r * in, 0.0), want_dw = dw0;
  for (int64_t ex = 0; ex < e; ++ex) {
    for (int64_t row = off[ex]; row < off[ex + 1]; ++row) {
      for (int64_t j = 0; j < o; ++j) {
        double acc = 0.0;
        for (int64_t p = 0; p < in; ++p) acc += x[row * in + p] * w[(ex * o + j) * in + p];
        want_y[row * o + j] = acc;
      }
      for (int64_t p = 0; p < in; ++p) {
        double acc = 0.0;
        for (int64_t j = 0; j < o; ++j) acc += dy[row * o + j] * w[(ex * o + j) * in + p];
        want_dx[row * in + p] = acc;
      }
    }
    for (int64_t j = 0; j < o; ++j)
      for (int64_t p = 0; p < in; ++p) {
        double acc = 0.0;
        for (int64_t row = off[ex]; row < off[ex + 1]; ++row) acc += dy[row * o + j] * x[row * in + p];
        want_dw[(ex * o + j) * in + p] += acc;
      }
  }
  auto tol = [](int64_t k) { return Tolerance{kForwardF32.atol * std::sqrt(double(k)), kForwardF32.rtol}; };
  ctx.expect_close("fprop", ctx.down(y), want_y, tol(in));
  ctx.expect_close("dgrad", ctx.down(dx), want_dx, tol(o));
  ctx.expect_close("wgrad (accumulated)", ctx.down(dw), want_dw, tol(off[3] - off[2]));
}
void test_moe_expert_gemm(Ctx& ctx) {
  for (int64_t in : {261, 260}) {
    ctx.test = "moe_expert_gemm/K" + std::to_string(in);
    moe_expert_gemm_case(ctx, in);
  }
}

// ---------------------------------------------------------------------------------------------
// Loss and optimizer
// ---------------------------------------------------------------------------------------------

// Greedy pick: the largest logit, ties to the lower index, a NaN row picks its first NaN.
void test_argmax(Ctx& ctx) {
  const int64_t m = 4, v = 1000;
  Vec logits = f32(ctx.random(m * v, -4, 4));
  logits[0 * v + 17] = 9.0, logits[0 * v + 900] = 9.0;  // tie
  logits[1 * v + 999] = 5.0;
  logits[2 * v + 3] = std::nan(""), logits[2 * v + 500] = std::nan("");
  logits[3 * v + 0] = 7.5;
  TensorI32 ids = ctx.up_i32("ids", {m}, std::vector<int32_t>(m, -1));
  argmax_rows(ctx.backend, {ids, ctx.up("logits", {m, v}, logits)});
  const std::vector<int32_t> got = ctx.down_i32(ids);
  ctx.expect_true("argmax picks 17, 999, 3, 0", got == std::vector<int32_t>{17, 999, 3, 0});
}

void test_cross_entropy_shape(Ctx& ctx, int64_t v, std::vector<int32_t> targets);

// Two shapes: a vocabulary of 13 (element loads) and of 1000 (a multiple of 4: the CUDA kernels' float4
// loads), each with an ignored row and targets at the row's first and last entries.
void test_cross_entropy(Ctx& ctx) {
  test_cross_entropy_shape(ctx, 13, {3, 12, -100, 0, 7, 3});
  test_cross_entropy_shape(ctx, 1000, {999, -100, 0, 3, 514});
}

void test_cross_entropy_shape(Ctx& ctx, int64_t v, std::vector<int32_t> targets) {
  const int64_t m = static_cast<int64_t>(targets.size());
  const int32_t ignore = -100;
  const int64_t valid = std::count_if(targets.begin(), targets.end(), [&](int32_t t) { return t != ignore; });
  Inputs in{{"logits", f32(ctx.random(m * v, -4, 4))}};
  auto ref = [&](const Inputs& x) {
    Vec losses(m, 0.0);
    for (int64_t i = 0; i < m; ++i) {
      if (targets[i] == ignore) continue;
      double mx = -1e300, sum = 0.0;
      for (int64_t j = 0; j < v; ++j) mx = std::max(mx, x.at("logits")[i * v + j]);
      for (int64_t j = 0; j < v; ++j) sum += std::exp(x.at("logits")[i * v + j] - mx);
      losses[i] = mx + std::log(sum) - x.at("logits")[i * v + targets[i]];
    }
    return losses;
  };
  Tensor logits = ctx.up("logits", {m, v}, in["logits"]), losses = ctx.zeros("losses", {m}), lse = ctx.zeros("lse", {m});
  TensorI32 tt = ctx.up_i32("targets", {m}, targets);
  cross_entropy_forward(ctx.backend, {losses, lse, logits, tt, ignore});
  ctx.expect_close("losses", ctx.down(losses), ref(in), kForwardF32);
  ctx.expect_true("valid target count", count_valid_targets(ctx.backend, tt, ignore) == valid);
  const double scale = 1.0 / static_cast<double>(valid);
  Tensor dlogits = ctx.zeros("dlogits", {m, v});
  cross_entropy_backward(ctx.backend, {dlogits, logits, lse, tt, static_cast<float>(scale), ignore});
  ctx.check_gradients(in, ref, Vec(m, scale), {{"logits", ctx.down(dlogits)}});
}

void test_adamw(Ctx& ctx) {
  const int64_t n = 300;
  Vec p = f32(ctx.random(n)), g = f32(ctx.random(n)), m0 = f32(ctx.random(n, -0.1, 0.1)), v0 = f32(ctx.random(n, 0.0, 0.01));
  Tensor tp = ctx.up("param", {n}, p), tg = ctx.up("grad", {n}, g), tm = ctx.up("m", {n}, m0), tv = ctx.up("v", {n}, v0);
  AdamWStep step{tp, tg, tm, tv, 3e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 0.5f, 7};
  adamw_step(ctx.backend, step);
  Vec wp(n), wm(n), wv(n);
  for (int64_t i = 0; i < n; ++i) {
    const double gi = g[i] * 0.5;
    wm[i] = 0.9 * m0[i] + 0.1 * gi;
    wv[i] = 0.95 * v0[i] + 0.05 * gi * gi;
    const double mh = wm[i] / (1 - std::pow(0.9, 7)), vh = wv[i] / (1 - std::pow(0.95, 7));
    wp[i] = p[i] - 3e-3 * (mh / (std::sqrt(vh) + 1e-8) + 0.1 * p[i]);
  }
  ctx.expect_close("param", ctx.down(tp), wp, kForwardF32);
  ctx.expect_close("m", ctx.down(tm), wm, kForwardF32);
  ctx.expect_close("v", ctx.down(tv), wv, kForwardF32);
  double total = 0.0, want = 0.0;
  sum_squares(ctx.backend, {{tg}, &total});
  for (double x : g) want += x * x;
  ctx.expect_close("sum of squares", {total}, {want}, kForwardF32);
  // a list: every tensor's squares count once (the global gradient norm's one wait)
  double listed = 0.0;
  sum_squares(ctx.backend, {{tg, tm, tp}, &listed});
  double want_listed = want;
  for (double x : ctx.down(tm)) want_listed += x * x;
  for (double x : ctx.down(tp)) want_listed += x * x;
  ctx.expect_close("sum of squares over a list", {listed}, {want_listed}, kForwardF32);
  // adamw_steps over a model-like list (more tensors than one launch list takes, chunk edges, an
  // unaligned view, a change of learning rate inside the list) is bit-identical to adamw_step per tensor
  const int64_t sizes[] = {300, 5, 8195, 1, 17000, 64, 3};
  std::vector<AdamWStep> listed_steps, single_steps;
  Vec ss_want;
  std::vector<Tensor> grads;
  for (int i = 0; i < 45; ++i) {
    const int64_t count = sizes[i % 7] + (i == 9 ? 1 : 0);
    const Vec pi = f32(ctx.random(count)), gi = f32(ctx.random(count)), mi = f32(ctx.random(count, -0.1, 0.1));
    const Vec vi = f32(ctx.random(count, 0.0, 0.01));
    AdamWStep pair[2];
    for (AdamWStep& st : pair) {
      Tensor tpi = ctx.up("p", {count}, pi), tgi = ctx.up("g", {count}, gi), tmi = ctx.up("m", {count}, mi);
      Tensor tvi = ctx.up("v", {count}, vi);
      if (i == 9) {  // a view one float in: no 16-byte alignment
        for (Tensor* t : {&tpi, &tgi, &tmi, &tvi}) *t = Tensor(t->data + 1, {count - 1}, t->name);
      }
      st = AdamWStep{tpi, tgi, tmi, tvi, i < 30 ? 3e-3f : 1e-3f, 0.9f, 0.95f, 1e-8f, i % 2 ? 0.1f : 0.0f, 0.7f, 3};
    }
    listed_steps.push_back(pair[0]);
    single_steps.push_back(pair[1]);
    grads.push_back(pair[0].grad);
    for (double x : ctx.down(pair[0].grad)) ss_want.push_back(x * x);
  }
  adamw_steps(ctx.backend, listed_steps);
  for (const AdamWStep& st : single_steps) adamw_step(ctx.backend, st);
  bool identical = true;
  for (size_t i = 0; i < listed_steps.size(); ++i) {
    for (auto field : {&AdamWStep::param, &AdamWStep::m, &AdamWStep::v}) {
      const Vec got = ctx.down(listed_steps[i].*field), want_one = ctx.down(single_steps[i].*field);
      identical = identical && std::memcmp(got.data(), want_one.data(), got.size() * sizeof(double)) == 0;
    }
  }
  ctx.expect_true("adamw_steps bit-identical to adamw_step per tensor", identical);
  double list_total = 0.0, list_want = 0.0;
  for (double x : ss_want) list_want += x;
  sum_squares(ctx.backend, {grads, &list_total});
  ctx.expect_close("sum of squares over 45 tensors", {list_total}, {list_want}, kForwardF32);
  // fill_zero_ranges clears exactly the listed ranges (word ranges, and an odd byte range)
  const Vec ones(40, 1.0);
  Tensor z1 = ctx.up("z1", {40}, ones), z2 = ctx.up("z2", {40}, ones), z3 = ctx.up("z3", {40}, ones);
  ctx.backend.fill_zero_ranges({{z1.data, 40 * sizeof(float)}, {z2.data + 3, 9 * sizeof(float)},
                                {reinterpret_cast<char*>(z3.data) + 1, 6}, {z3.data + 20, 0}});
  Vec want_z2 = ones, want_z3 = ones;
  for (int i = 3; i < 12; ++i) want_z2[i] = 0.0;
  std::vector<unsigned char> z3_bytes(40 * sizeof(float));
  ctx.backend.download(z3_bytes.data(), z3.data, z3_bytes.size());
  bool z3_ok = true;
  const float one = 1.0f;
  for (size_t byte = 0; byte < z3_bytes.size(); ++byte) {
    const unsigned char expected = byte >= 1 && byte < 7 ? 0 : reinterpret_cast<const unsigned char*>(&one)[byte % 4];
    z3_ok = z3_ok && z3_bytes[byte] == expected;
  }
  ctx.expect_close("fill_zero_ranges whole tensor", ctx.down(z1), Vec(40, 0.0), kForwardF32);
  ctx.expect_close("fill_zero_ranges word range", ctx.down(z2), want_z2, kForwardF32);
  ctx.expect_true("fill_zero_ranges odd byte range", z3_ok);
}

// Bad arguments raise strata::Error naming the op and the field (checked before any backend runs).
void test_argument_checks(Ctx& ctx) {
  auto message_of = [](const std::function<void()>& call) -> std::string {
    try {
      call();
    } catch (const Error& error) {
      return error.what();
    }
    return "";
  };
  Tensor x = ctx.zeros("layer0.x", {4, 8}), y = ctx.zeros("layer0.y", {4, 8}), rstd = ctx.zeros("rstd", {4});
  Tensor wrong_w = ctx.zeros("layer0.norm.weight", {7});
  std::string msg = message_of([&] { rmsnorm_forward(ctx.backend, {y, rstd, x, wrong_w, {}, {}, 1e-5f}); });
  ctx.expect_true("rmsnorm names op, field and tensor: " + msg,
                  msg.find("rmsnorm_forward") != std::string::npos && msg.find("w '") != std::string::npos &&
                      msg.find("layer0.norm.weight") != std::string::npos);
  Tensor q = ctx.zeros("q", {1, 4, 3, 8}), k = ctx.zeros("k", {1, 4, 2, 8});
  Tensor out = ctx.zeros("out", {1, 4, 3, 8}), lse = ctx.zeros("lse", {1, 3, 4});
  msg = message_of([&] { attention_forward(ctx.backend, {out, lse, q, k, k, 0.0f, 0}); });
  ctx.expect_true("attention rejects heads not divisible by kv heads: " + msg,
                  msg.find("multiple of kv heads") != std::string::npos);
  msg = message_of([&] { linear_forward(ctx.backend, y, x, ctx.zeros("w", {8, 5}), Tensor(), "mlp.fc1", 2); });
  ctx.expect_true("linear names the role: " + msg, msg.find("linear_forward[mlp.fc1]") != std::string::npos);
  // a row pitch below the width is refused, naming the op, the field and the tensor
  Tensor xbc = ctx.zeros("layer0.xbc", {1, 4, 8}), conv_y = ctx.zeros("conv_y", {1, 4, 8});
  msg = message_of([&] { conv1d_forward(ctx.backend, {conv_y, xbc, ctx.zeros("conv_w", {8, 4}), {}, true, 6}); });
  ctx.expect_true("conv1d rejects a short pitch: " + msg,
                  msg.find("conv1d_forward: x row pitch 6") != std::string::npos && msg.find("layer0.xbc") != std::string::npos);
  Tensor gate = ctx.zeros("layer0.z", {4, 8}), grstd = ctx.zeros("grstd", {4, 2});
  msg = message_of([&] {
    gated_rmsnorm_forward(ctx.backend, {y, grstd, x, gate, ctx.zeros("gw", {8}), 2, false, 1e-5f, 7});
  });
  ctx.expect_true("gated_rmsnorm rejects a short pitch: " + msg,
                  msg.find("gated_rmsnorm_forward: z row pitch 7") != std::string::npos &&
                      msg.find("layer0.z") != std::string::npos);
}

struct TestCase {
  const char* name;
  OpKind kind;  // the op family it needs; a backend that declines it reports "declined", not a pass
  void (*run)(Ctx&);
};
const TestCase kTests[] = {
    {"gemm", OpKind::Gemm, test_gemm},
    {"linear", OpKind::Gemm, test_linear},
    {"gemm_pack_reuse", OpKind::Gemm, test_gemm_pack_reuse},
    {"elementwise", OpKind::Elementwise, test_elementwise},
    {"embedding", OpKind::Embedding, test_embedding},
    {"rmsnorm", OpKind::RmsNorm, test_rmsnorm},
    {"activation", OpKind::Activation, test_activation},
    {"gated_rmsnorm", OpKind::GatedRmsNorm, test_gated_rmsnorm},
    {"conv1d", OpKind::Conv1d, test_conv1d},
    {"ssd", OpKind::Ssd, test_ssd},
    {"ssd_step", OpKind::Ssd, test_ssd_step},
    {"attention", OpKind::Attention, test_attention},
    {"attention_head_dims", OpKind::Attention, test_attention_head_dims},
    {"rope", OpKind::Rope, test_rope},
    {"moe_router", OpKind::MoeRouter, test_moe_router},
    {"moe_dispatch", OpKind::MoePermute, test_moe_dispatch},
    {"moe_expert_gemm", OpKind::MoePermute, test_moe_expert_gemm},
    {"cross_entropy", OpKind::CrossEntropy, test_cross_entropy},
    {"argmax", OpKind::CrossEntropy, test_argmax},
    {"adamw", OpKind::AdamW, test_adamw},
    {"argument_checks", OpKind::RmsNorm, test_argument_checks},
};

}  // namespace

int main(int argc, char** argv) {
  const char* only = argc > 1 ? argv[1] : nullptr;  // optional: run one test by name
  for (Backend* backend : available_backends()) {
    std::printf("backend %s\n", backend->name());
    for (const TestCase& test : kTests) {
      if (only && std::strcmp(only, test.name) != 0) continue;
      if (!backend->supports(test.kind)) {
        std::printf("  declined %s (op family %s not implemented on this backend)\n", test.name,
                    op_kind_name(test.kind));
        continue;
      }
      Ctx ctx(*backend);
      ctx.test = test.name;
      const int before = g_failures;
      try {
        test.run(ctx);
      } catch (const std::exception& error) {
        std::printf("  FAIL %s: exception: %s\n", ctx.test.c_str(), error.what());
        ++g_failures;
      }
      std::printf("  %s %s\n", g_failures == before ? "ok  " : "FAIL", test.name);
    }
  }
  std::printf("%d checks, %d failures\n", g_checks, g_failures);
  return g_failures == 0 ? 0 : 1;
}
