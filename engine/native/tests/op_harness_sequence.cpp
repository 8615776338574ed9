// The op harness's sequence-mixer and routing tests: Mamba-2 SSD (chunked scan and single-token
// step against the token-by-token recurrence), causal attention (GQA, RoPE, head dims, bf16 tensor
// cores) and MoE (routers, dispatch, grouped expert GEMMs). Framework and tolerances: op_harness.h;
// registration and main: op_harness.cpp.
#include "op_harness.h"

namespace strata::harness {

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

}  // namespace strata::harness
