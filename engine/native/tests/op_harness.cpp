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
//   4. register it in kTests at the bottom (a test written in op_harness_sequence.cpp is also declared
//      in op_harness.h). Nothing else: every backend picks it up.
// The framework (tolerances, Ctx, reference helpers) is in op_harness.h; the SSD, attention and MoE
// tests are in op_harness_sequence.cpp.
#include "op_harness.h"

using namespace strata;
using namespace strata::harness;

namespace {

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
  set_gemm_input_transform([&](Backend&, GemmCall& call) {
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

// ---------------------------------------------------------------------------------------------
// Quantize (fake quantization for the GEMM precision hook)
// ---------------------------------------------------------------------------------------------

// The reference is quant::fake_quantize itself (the format rules, checked against the spec's
// vectors in quant_test): every backend must agree with it bit for bit, from a strided input
// (ld > cols) and in place, in every format, block layout, rounding and with the Hadamard transform.
void test_quantize(Ctx& ctx) {
  using namespace quant;
  const int64_t rows = 48, cols = 72, ld = 80;  // 72 = 4 x 16 + 8: partial nvfp4 / mxfp8 blocks and runs
  std::uniform_real_distribution<double> exponent(-12.0, 6.0), unit(0.0, 1.0);
  Vec strided(static_cast<size_t>(rows * ld));
  for (double& v : strided) v = (unit(ctx.rng) < 0.5 ? -1.0 : 1.0) * std::exp2(exponent(ctx.rng));
  std::vector<float> contiguous(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) contiguous[r * cols + c] = static_cast<float>(strided[r * ld + c]);
  auto config = [](Format f, BlockLayout layout, Rounding rounding, bool hadamard) {
    QuantConfig q;
    q.format = f, q.layout = layout, q.rounding = rounding, q.hadamard = hadamard, q.seed = 4242;
    return q;
  };
  const struct {
    const char* label;
    QuantConfig config;
  } cases[] = {
      {"bf16", config(Format::Bf16, BlockLayout::AlongRow, Rounding::NearestEven, false)},
      {"fp8_e4m3", config(Format::Fp8E4M3, BlockLayout::AlongRow, Rounding::NearestEven, false)},
      {"fp8_e5m2 stochastic", config(Format::Fp8E5M2, BlockLayout::AlongRow, Rounding::Stochastic, false)},
      {"mxfp8 1x32", config(Format::Mxfp8, BlockLayout::AlongRow, Rounding::NearestEven, false)},
      {"mxfp8 32x1", config(Format::Mxfp8, BlockLayout::AlongColumn, Rounding::NearestEven, false)},
      {"nvfp4 16x16", config(Format::Nvfp4, BlockLayout::Tile2d, Rounding::NearestEven, false)},
      {"nvfp4 1x16 hadamard", config(Format::Nvfp4, BlockLayout::AlongRow, Rounding::NearestEven, true)},
      {"nvfp4 16x1 hadamard stochastic", config(Format::Nvfp4, BlockLayout::AlongColumn, Rounding::Stochastic, true)},
  };
  constexpr Tolerance kExact{0.0, 0.0};
  for (const auto& c : cases) {
    std::vector<float> want(contiguous.size());
    fake_quantize(contiguous.data(), want.data(), rows, cols, c.config);
    const Vec want_vec(want.begin(), want.end());
    Tensor in = ctx.up("in", {rows, ld}, strided), out = ctx.zeros("out", {rows, cols});
    fake_quantize_tensor(ctx.backend, {in.data, ld, out.data, rows, cols, c.config, "harness"});
    ctx.expect_close(std::string(c.label) + " strided", ctx.down(out), want_vec, kExact);
    Tensor inplace = ctx.up("inplace", {rows, cols}, Vec(contiguous.begin(), contiguous.end()));
    fake_quantize_tensor(ctx.backend, {inplace.data, cols, inplace.data, rows, cols, c.config, "harness"});
    ctx.expect_close(std::string(c.label) + " in place", ctx.down(inplace), want_vec, kExact);
  }
  // bad arguments are refused with the op, the tensor's label and the field named
  auto message_of = [&](const FakeQuantizeArgs& args) -> std::string {
    try {
      fake_quantize_tensor(ctx.backend, args);
    } catch (const Error& error) {
      return error.what();
    }
    return "";
  };
  Tensor x = ctx.zeros("x", {rows, ld});
  const QuantConfig nvfp4 = cases[5].config;
  std::string msg = message_of({x.data, cols - 1, x.data + rows * cols, rows, cols, nvfp4, "layer3.mlp.fc1"});
  ctx.expect_true("a short leading dimension is refused: " + msg,
                  msg.find("fake_quantize[layer3.mlp.fc1]") != std::string::npos && msg.find("leading dimension") != std::string::npos);
  msg = message_of({x.data, ld, x.data + 8, rows, cols, nvfp4, "layer3.mlp.fc1"});
  ctx.expect_true("an output overlapping the input is refused: " + msg, msg.find("overlaps") != std::string::npos);
  QuantConfig mxfp8_hadamard = cases[3].config;
  mxfp8_hadamard.hadamard = true;
  msg = message_of({x.data, ld, ctx.zeros("out", {rows, cols}).data, rows, cols, mxfp8_hadamard, "layer3.mlp.fc1"});
  ctx.expect_true("an unsupported configuration is refused on every backend: " + msg,
                  msg.find("fake_quantize[layer3.mlp.fc1]") != std::string::npos && msg.find("Hadamard") != std::string::npos);
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
    {"quantize", OpKind::Quantize, test_quantize},
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
