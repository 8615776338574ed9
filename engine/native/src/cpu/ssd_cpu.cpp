// CPU kernels of the Mamba-2 SSD scan. Forward: per (batch, head), chunk by chunk, the intra-chunk
// quadratic form plus the contribution of the state entering the chunk, then the state passed to
// the next chunk; the entering states are saved. Backward: the exact reverse of that computation,
// chunk by chunk from the last, carrying the state gradient backwards (derivation in comments).
// Decode step: the plain recurrence for one token.
// Threads: forward over (batch, head); backward over (batch, group) because B and C gradients are
// shared by the heads of a group (the AVX2 backward splits over heads with private B/C gradient
// sums when there are fewer (batch, group) pairs than threads); per-head parameter gradients are
// reduced in a fixed order.
// The forward has an AVX2+FMA path (simd.h) that keeps the state transposed (N,P) so every inner
// loop is a contiguous multiply-add over P or over the chunk; the scalar loops are the reference.
#include <algorithm>
#include <cmath>
#include <vector>

#include "../ops/ssd.h"
#include "cpu_backend.h"
#include "cpu_math.h"
#include "simd.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace strata {

using namespace cpu_math;
namespace {


// dt = softplus(raw + bias), optionally clamped; *passes_gradient is false where the clamp is active.
inline float dt_value(float raw, float bias, const SsdParams& params, bool* passes_gradient) {
  float v = softplus(raw + bias);
  bool inside = true;
  if (params.dt_limit) {
    if (v < params.dt_min) v = params.dt_min, inside = false;
    else if (v > params.dt_max) v = params.dt_max, inside = false;
  }
  if (passes_gradient) *passes_gradient = inside;
  return v;
}


// Strided access into the (B,T,H,P) / (B,T,G,N) / (B,T,H) layouts.
struct SsdLayout {
  int64_t bsz, t_len, heads, p, groups, n, chunk, chunks;
  int64_t heads_per_group() const { return heads / groups; }
  int64_t xi(int64_t b, int64_t t, int64_t h) const { return ((b * t_len + t) * heads + h) * p; }
  int64_t bci(int64_t b, int64_t t, int64_t g) const { return ((b * t_len + t) * groups + g) * n; }
  int64_t ti(int64_t b, int64_t t, int64_t h) const { return (b * t_len + t) * heads + h; }
  int64_t si(int64_t b, int64_t c, int64_t h) const { return ((b * chunks + c) * heads + h) * p * n; }
  int64_t fi(int64_t b, int64_t h) const { return (b * heads + h) * p * n; }
};

SsdLayout layout_of(const Tensor& x, const Tensor& bm, int64_t chunk) {
  SsdLayout l{x.size(0), x.size(1), x.size(2), x.size(3), bm.size(2), bm.size(3), chunk, 0};
  l.chunks = ssd_num_chunks(l.t_len, chunk);
  return l;
}

// End of a chunk's backward, shared by the AVX2 and scalar paths. dcum (len) holds d(loss)/d(cum_r):
// the reverse running sum turns it into the step decays' gradients (a_r = dt_r A), added to ddt
// (len), and into dA (+= sum_r da_r dt_r); dt_at(r) is dt of the chunk's step r.
template <typename DtAt>
void chunk_decay_grads(const float* dcum, float* ddt, int64_t len, float A, DtAt dt_at, double* dA) {
  float da = 0.0f;
  for (int64_t r = len - 1; r >= 0; --r) {
    da += dcum[r];
    ddt[r] += da * A;
    *dA += static_cast<double>(da) * dt_at(r);
  }
}

// dt = clamp(softplus(raw + bias)) -> raw for the chunk's steps t0..t0+len of (b, h): writes ddt_raw
// and adds its sum to ddt_bias.
void chunk_dt_raw_grads(const SsdBwd& a, const SsdLayout& l, int64_t b, int64_t h, int64_t t0, int64_t len,
                        const float* ddt, double* ddt_bias) {
  for (int64_t r = 0; r < len; ++r) {
    const int64_t idx = l.ti(b, t0 + r, h);
    bool passes = true;
    dt_value(a.dt_raw.data[idx], a.dt_bias.data[h], a.params, &passes);
    const float g_raw = passes ? ddt[r] * sigmoid(a.dt_raw.data[idx] + a.dt_bias.data[h]) : 0.0f;
    a.ddt_raw.data[idx] = g_raw;
    *ddt_bias += g_raw;
  }
}

#if STRATA_SIMD_X86
// Forward of one (batch, head) with AVX2. Per chunk: bt = B^T (N, len) and cb_i = C_i B^T as a row
// over the chunk, so the intra-chunk weights of a row come out as one vector loop; the state is kept
// as st = h^T (N, P): y_i += e^cum_i sum_k C_i[k] st[k, :] and st[k, :] += w_s B_s[k] x_s.
// Scratch: st (N*P), bt (N*L), row, cum and dts (L each).
STRATA_AVX2 void ssd_forward_head_avx2(const SsdFwd& a, const SsdLayout& l, int64_t b, int64_t h, float* st,
                                       float* bt, float* row, float* cum, float* dts) {
  const int64_t g = h / l.heads_per_group(), L = l.chunk, P = l.p, N = l.n;
  const float A = -std::exp(a.a_log.data[h]);
  const float D = a.d.defined() ? a.d.data[h] : 0.0f;
  for (int64_t t = 0; t < l.t_len; ++t) {
    a.dt.data[l.ti(b, t, h)] = dt_value(a.dt_raw.data[l.ti(b, t, h)], a.dt_bias.data[h], a.params, nullptr);
  }
  for (int64_t k = 0; k < N; ++k) {
    for (int64_t p = 0; p < P; ++p) st[k * P + p] = a.initial_state.defined() ? a.initial_state.data[l.fi(b, h) + p * N + k] : 0.0f;
  }
  for (int64_t c = 0; c < l.chunks; ++c) {
    const int64_t t0 = c * L, len = std::min(L, l.t_len - t0);
    float* saved = a.chunk_states.data + l.si(b, c, h);
    for (int64_t p = 0; p < P; ++p) {
      for (int64_t k = 0; k < N; ++k) saved[p * N + k] = st[k * P + p];
    }
    for (int64_t i = 0; i < len; ++i) cum[i] = (i ? cum[i - 1] : 0.0f) + a.dt.data[l.ti(b, t0 + i, h)] * A;
    for (int64_t s = 0; s < len; ++s) {
      const float* b_s = a.b.data + l.bci(b, t0 + s, g);
      for (int64_t k = 0; k < N; ++k) bt[k * L + s] = b_s[k];
      dts[s] = a.dt.data[l.ti(b, t0 + s, h)];
    }
    for (int64_t i = 0; i < len; ++i) {
      const float* x_i = a.x.data + l.xi(b, t0 + i, h);
      const float* c_i = a.c.data + l.bci(b, t0 + i, g);
      float* y_i = a.y.data + l.xi(b, t0 + i, h);
      // row[s] = (C_i . B_s) exp(cum_i - cum_s) dt_s for s <= i, 32 columns at a time (4 independent
      // accumulators hide the multiply-add latency)
      const int64_t cols = i + 1;
      for (int64_t s = 0; s < cols; s += 32) {
        __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
        int64_t lanes[4];
        for (int v = 0; v < 4; ++v) lanes[v] = std::clamp<int64_t>(cols - s - 8 * v, 0, 8);
        for (int64_t k = 0; k < N; ++k) {
          const __m256 ck = _mm256_set1_ps(c_i[k]);
          for (int v = 0; v < 4; ++v) acc[v] = _mm256_fmadd_ps(ck, avx2::load_n(bt + k * L + s + 8 * v, lanes[v]), acc[v]);
        }
        for (int v = 0; v < 4 && lanes[v] > 0; ++v) {
          const int64_t s0 = s + 8 * v;
          const __m256 decay = avx2::exp(_mm256_sub_ps(_mm256_set1_ps(cum[i]), avx2::load_n(cum + s0, lanes[v])));
          avx2::store_n(row + s0, _mm256_mul_ps(_mm256_mul_ps(acc[v], decay), avx2::load_n(dts + s0, lanes[v])), lanes[v]);
        }
      }
      // y_i = D x_i + e^cum_i C_i st + sum_s row[s] x_s, 32 features at a time
      const __m256 entering = _mm256_set1_ps(std::exp(cum[i])), vd = _mm256_set1_ps(D);
      for (int64_t p = 0; p < P; p += 32) {
        int64_t lanes[4];
        for (int v = 0; v < 4; ++v) lanes[v] = std::clamp<int64_t>(P - p - 8 * v, 0, 8);
        __m256 inter[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
        for (int64_t k = 0; k < N; ++k) {
          const __m256 ck = _mm256_set1_ps(c_i[k]);
          for (int v = 0; v < 4; ++v) inter[v] = _mm256_fmadd_ps(ck, avx2::load_n(st + k * P + p + 8 * v, lanes[v]), inter[v]);
        }
        __m256 out[4];
        for (int v = 0; v < 4; ++v) {
          out[v] = _mm256_fmadd_ps(vd, avx2::load_n(x_i + p + 8 * v, lanes[v]), _mm256_mul_ps(entering, inter[v]));
        }
        for (int64_t s = 0; s < cols; ++s) {
          const __m256 w = _mm256_set1_ps(row[s]);
          const float* x_s = a.x.data + l.xi(b, t0 + s, h) + p;
          for (int v = 0; v < 4; ++v) out[v] = _mm256_fmadd_ps(w, avx2::load_n(x_s + 8 * v, lanes[v]), out[v]);
        }
        for (int v = 0; v < 4; ++v) avx2::store_n(y_i + p + 8 * v, out[v], lanes[v]);
      }
    }
    // state leaving the chunk: exp(cum_last) h0 + sum_s exp(cum_last - cum_s) dt_s x_s B_s^T, each
    // state row st[k, :] summed over s in registers (row holds its weights w_s B_s[k])
    const float last = cum[len - 1];
    avx2::scale(st, std::exp(last), N * P);
    for (int64_t s = 0; s < len; ++s) dts[s] *= std::exp(last - cum[s]);  // dt_s no longer needed as such
    for (int64_t k = 0; k < N; ++k) {
      for (int64_t s = 0; s < len; ++s) row[s] = dts[s] * bt[k * L + s];
      avx2::add_weighted_rows(st + k * P, P, a.x.data + l.xi(b, t0, h), l.heads * P, row, 1, len);
    }
  }
  if (a.final_state.defined()) {
    float* out = a.final_state.data + l.fi(b, h);
    for (int64_t p = 0; p < P; ++p) {
      for (int64_t k = 0; k < N; ++k) out[p * N + k] = st[k * P + p];
    }
  }
}
#endif

#if STRATA_SIMD_X86
#define STRATA_SSD_AVX2_AVAILABLE true
// Scratch of the AVX2 backward, one per thread.
struct SsdBackwardScratch {
  std::vector<float> dh, dh0, dht, cum, dcum, ddt, dts, xt, bt, ce, s, dcb, u, v;
  SsdBackwardScratch(int64_t pn, int64_t L, int64_t P, int64_t N)
      : dh(pn), dh0(pn), dht(pn), cum(L), dcum(L), ddt(L), dts(L), xt(P * L), bt(N * L), ce(L * N), s(L * L),
        dcb(L * L), u(std::max(P, N)), v(N) {}
};

// Backward of one head (of group g) with AVX2: the scalar reference's computation (comments at
// CpuBackend::ssd_backward) reorganised into small matrix products whose outputs stay in registers
// (avx2::add_weighted_rows), so no inner loop ends in a horizontal sum or a store per term. Per chunk:
//   CB = C B^T and dS = dY X^T (lower triangles, rows over s from the transposed xt / bt), then per
//   element S = CB e dt_s and dCB = dS e dt_s (e = exp(cum_i - cum_s)), and the products
//   dX += S^T dY, dC += dCB B, dB += dCB^T C;
//   entering state: u_i = h0^T dy_i, dC_i += e_i u_i, dh0 = sum_i dy_i (e_i C_i)^T;
//   leaving state: u_s = dh B_s, dB_s += w_s dh^T x_s, dX_s += w_s u_s.
// Accumulates db / dc of the group into db_base / dc_base (laid out like a.db / a.dc) and returns
// the head's dA, dD and dt_bias sums.
STRATA_AVX2 void ssd_backward_head_avx2(const SsdBwd& a, const SsdLayout& l, int64_t b, int64_t g, int64_t h,
                                        SsdBackwardScratch& w, float* db_base, float* dc_base, double* dA_out,
                                        double* dD_out, double* ddt_bias_out) {
  const int64_t P = l.p, N = l.n, pn = P * N, L = l.chunk;
  const int64_t x_stride = l.heads * P, bc_stride = l.groups * N;  // between consecutive time steps
  const float A = -std::exp(a.a_log.data[h]);
  const float D = a.d.defined() ? a.d.data[h] : 0.0f;
  double dA = 0.0, dD = 0.0, ddt_bias = 0.0;
  float* dh = w.dh.data();
  float* dh0 = w.dh0.data();
  float* dht = w.dht.data();
  float* cum = w.cum.data();
  float* dcum = w.dcum.data();
  float* ddt = w.ddt.data();
  float* dts = w.dts.data();
  float* xt = w.xt.data();
  float* bt = w.bt.data();
  float* ce = w.ce.data();
  float* sm = w.s.data();
  float* dcbm = w.dcb.data();
  float* u = w.u.data();
  float* v = w.v.data();
  if (a.dfinal_state.defined()) {
    std::copy_n(a.dfinal_state.data + l.fi(b, h), pn, dh);
  } else {
    std::fill_n(dh, pn, 0.0f);
  }
  for (int64_t c = l.chunks - 1; c >= 0; --c) {
    const int64_t t0 = c * L, len = std::min(L, l.t_len - t0);
    const float* h0 = a.chunk_states.data + l.si(b, c, h);
    const float* x0 = a.x.data + l.xi(b, t0, h);
    const float* dy0 = a.dy.data + l.xi(b, t0, h);
    const float* b0 = a.b.data + l.bci(b, t0, g);
    const float* c0 = a.c.data + l.bci(b, t0, g);
    float* dx0 = a.dx.data + l.xi(b, t0, h);
    float* db0 = db_base + l.bci(b, t0, g);
    float* dc0 = dc_base + l.bci(b, t0, g);
    for (int64_t i = 0; i < len; ++i) {
      dts[i] = a.dt.data[l.ti(b, t0 + i, h)];
      cum[i] = (i ? cum[i - 1] : 0.0f) + dts[i] * A;
      for (int64_t p = 0; p < P; ++p) xt[p * L + i] = x0[i * x_stride + p];
      for (int64_t k = 0; k < N; ++k) bt[k * L + i] = b0[i * bc_stride + k];
    }
    std::fill_n(dcum, len, 0.0f);
    std::fill_n(ddt, len, 0.0f);
    std::fill_n(dh0, pn, 0.0f);
    // skip term and the entering state: dx_i = D dy_i, u = h0^T dy_i, dC_i += e u, dh0 += e dy_i C_i^T
    for (int64_t i = 0; i < len; ++i) {
      const float* dy_i = dy0 + i * x_stride;
      const float* c_i = c0 + i * bc_stride;
      float* dx_i = dx0 + i * x_stride;
      const float e = std::exp(cum[i]);
      for (int64_t p = 0; p < P; ++p) dx_i[p] = D * dy_i[p];
      dD += avx2::dot(dy_i, x0 + i * x_stride, P);
      std::fill_n(u, N, 0.0f);
      avx2::add_weighted_rows(u, N, h0, N, dy_i, 1, P);
      dcum[i] += e * avx2::dot(u, c_i, N);
      avx2::axpy(dc0 + i * bc_stride, e, u, N);
      for (int64_t k = 0; k < N; ++k) ce[i * N + k] = e * c_i[k];
    }
    for (int64_t p = 0; p < P; ++p) avx2::add_weighted_rows(dh0 + p * N, N, ce, N, dy0 + p, x_stride, len);
    // intra-chunk quadratic form: rows of CB and dS, then the elementwise terms, 8 columns at a time
    for (int64_t i = 0; i < len; ++i) {
      const int64_t cols = i + 1;
      float* s_row = sm + i * L;
      float* dcb_row = dcbm + i * L;
      std::fill_n(s_row, cols, 0.0f);    // CB row, turned into S below
      std::fill_n(dcb_row, cols, 0.0f);  // dS row, turned into dCB below
      avx2::add_weighted_rows(s_row, cols, bt, L, c0 + i * bc_stride, 1, N);
      avx2::add_weighted_rows(dcb_row, cols, xt, L, dy0 + i * x_stride, 1, P);
      const __m256 cum_i = _mm256_set1_ps(cum[i]);
      __m256 dcum_i = _mm256_setzero_ps();
      for (int64_t s0 = 0; s0 < cols; s0 += 8) {
        const int64_t lanes = std::min<int64_t>(8, cols - s0);
        const __m256 decay = avx2::exp(_mm256_sub_ps(cum_i, avx2::load_n(cum + s0, lanes)));
        const __m256 dt_s = avx2::load_n(dts + s0, lanes);
        const __m256 cb = avx2::load_n(s_row + s0, lanes), ds = avx2::load_n(dcb_row + s0, lanes);
        const __m256 wdt = _mm256_mul_ps(decay, dt_s);
        const __m256 coef = _mm256_mul_ps(cb, wdt);  // S_is
        avx2::store_n(s_row + s0, coef, lanes);
        avx2::store_n(dcb_row + s0, _mm256_mul_ps(ds, wdt), lanes);
        avx2::store_n(ddt + s0, _mm256_fmadd_ps(_mm256_mul_ps(ds, cb), decay, avx2::load_n(ddt + s0, lanes)), lanes);
        const __m256 q = _mm256_mul_ps(ds, coef);
        dcum_i = _mm256_add_ps(dcum_i, q);
        avx2::store_n(dcum + s0, _mm256_sub_ps(avx2::load_n(dcum + s0, lanes), q), lanes);
      }
      dcum[i] += avx2::hsum(dcum_i);
      avx2::add_weighted_rows(dc0 + i * bc_stride, N, b0, bc_stride, dcb_row, 1, cols);  // dC_i += sum_s dCB_is B_s
    }
    for (int64_t s = 0; s < len; ++s) {  // dX_s += sum_{i>=s} S_is dY_i, dB_s += sum_{i>=s} dCB_is C_i
      avx2::add_weighted_rows(dx0 + s * x_stride, P, dy0 + s * x_stride, x_stride, sm + s * L + s, L, len - s);
      avx2::add_weighted_rows(db0 + s * bc_stride, N, c0 + s * bc_stride, bc_stride, dcbm + s * L + s, L, len - s);
    }
    // state leaving the chunk
    const float last = cum[len - 1];
    const float e_last = std::exp(last);
    dcum[len - 1] += e_last * avx2::dot(dh, h0, pn);
    avx2::axpy(dh0, e_last, dh, pn);
    for (int64_t p = 0; p < P; ++p) {
      for (int64_t k = 0; k < N; ++k) dht[k * P + p] = dh[p * N + k];
    }
    for (int64_t s = 0; s < len; ++s) {
      const float* x_s = x0 + s * x_stride;
      const float decay = std::exp(last - cum[s]);
      const float wdt = decay * dts[s];
      std::fill_n(u, P, 0.0f);
      avx2::add_weighted_rows(u, P, dht, P, b0 + s * bc_stride, 1, N);  // u = dh B_s
      const float vs = avx2::dot(x_s, u, P);
      avx2::axpy(dx0 + s * x_stride, wdt, u, P);
      std::fill_n(v, N, 0.0f);
      avx2::add_weighted_rows(v, N, dh, N, x_s, 1, P);  // v = dh^T x_s
      avx2::axpy(db0 + s * bc_stride, wdt, v, N);
      ddt[s] += decay * vs;
      dcum[len - 1] += wdt * vs;
      dcum[s] -= wdt * vs;
    }
    // cumulative sum -> per-step decay a_r = dt_r A
    chunk_decay_grads(dcum, ddt, len, A, [&](int64_t r) { return dts[r]; }, &dA);
    chunk_dt_raw_grads(a, l, b, h, t0, len, ddt, &ddt_bias);
    std::swap(dh, dh0);
  }
  if (a.dinitial_state.defined()) std::copy_n(dh, pn, a.dinitial_state.data + l.fi(b, h));
  *dA_out = dA;
  *dD_out = dD;
  *ddt_bias_out = ddt_bias;
}
#else
#define STRATA_SSD_AVX2_AVAILABLE false
#endif

}  // namespace

void CpuBackend::ssd_forward(const SsdFwd& a) {
  const SsdLayout l = layout_of(a.x, a.b, a.params.chunk);
  const int64_t pn = l.p * l.n, L = l.chunk;
#if STRATA_SIMD_X86
  if (cpu_simd_avx2()) {
#pragma omp parallel
    {
      std::vector<float> st(pn), bt(l.n * L), row(L), cum(L), dts(L);
#pragma omp for collapse(2) schedule(static)
      for (int64_t b = 0; b < l.bsz; ++b) {
        for (int64_t h = 0; h < l.heads; ++h) {
          ssd_forward_head_avx2(a, l, b, h, st.data(), bt.data(), row.data(), cum.data(), dts.data());
        }
      }
    }
    return;
  }
#endif
#pragma omp parallel
  {
    std::vector<float> state(pn), cum(L);
#pragma omp for collapse(2) schedule(static)
    for (int64_t b = 0; b < l.bsz; ++b) {
      for (int64_t h = 0; h < l.heads; ++h) {
        const int64_t g = h / l.heads_per_group();
        const float A = -std::exp(a.a_log.data[h]);
        const float D = a.d.defined() ? a.d.data[h] : 0.0f;
        for (int64_t t = 0; t < l.t_len; ++t) {
          a.dt.data[l.ti(b, t, h)] = dt_value(a.dt_raw.data[l.ti(b, t, h)], a.dt_bias.data[h], a.params, nullptr);
        }
        if (a.initial_state.defined()) {
          std::copy_n(a.initial_state.data + l.fi(b, h), pn, state.begin());
        } else {
          std::fill(state.begin(), state.end(), 0.0f);
        }
        for (int64_t c = 0; c < l.chunks; ++c) {
          const int64_t t0 = c * L, len = std::min(L, l.t_len - t0);
          std::copy(state.begin(), state.end(), a.chunk_states.data + l.si(b, c, h));
          for (int64_t i = 0; i < len; ++i) cum[i] = (i ? cum[i - 1] : 0.0f) + a.dt.data[l.ti(b, t0 + i, h)] * A;
          for (int64_t i = 0; i < len; ++i) {
            const int64_t t = t0 + i;
            const float* x_t = a.x.data + l.xi(b, t, h);
            const float* c_t = a.c.data + l.bci(b, t, g);
            float* y_t = a.y.data + l.xi(b, t, h);
            const float entering = std::exp(cum[i]);
            for (int64_t p = 0; p < l.p; ++p) y_t[p] = D * x_t[p] + entering * dot(state.data() + p * l.n, c_t, l.n);
            for (int64_t s = 0; s <= i; ++s) {
              const float coef = dot(c_t, a.b.data + l.bci(b, t0 + s, g), l.n) * std::exp(cum[i] - cum[s]) *
                                 a.dt.data[l.ti(b, t0 + s, h)];
              const float* x_s = a.x.data + l.xi(b, t0 + s, h);
              for (int64_t p = 0; p < l.p; ++p) y_t[p] += coef * x_s[p];
            }
          }
          // state leaving the chunk: exp(cum_last) h0 + sum_s exp(cum_last - cum_s) dt_s x_s B_s^T
          const float last = cum[len - 1];
          const float decay = std::exp(last);
          for (float& v : state) v *= decay;
          for (int64_t s = 0; s < len; ++s) {
            const float w = std::exp(last - cum[s]) * a.dt.data[l.ti(b, t0 + s, h)];
            const float* x_s = a.x.data + l.xi(b, t0 + s, h);
            const float* b_s = a.b.data + l.bci(b, t0 + s, g);
            for (int64_t p = 0; p < l.p; ++p) {
              const float wx = w * x_s[p];
              float* row = state.data() + p * l.n;
              for (int64_t k = 0; k < l.n; ++k) row[k] += wx * b_s[k];
            }
          }
        }
        if (a.final_state.defined()) std::copy(state.begin(), state.end(), a.final_state.data + l.fi(b, h));
      }
    }
  }
}

// Backward of one chunk for one head, given dh_end (gradient of the state leaving the chunk).
// With S_ts = (C_t.B_s) exp(cum_t - cum_s) dt_s (s <= t) and q_ts = (dy_t.x_s) S_ts:
//   y_t = sum_s S_ts x_s + exp(cum_t) h0 C_t + D x_t
//   dx_s += sum_t S_ts dy_t;   dC_t += sum_s (dy_t.x_s) exp(cum_t-cum_s) dt_s B_s (and dB_s sym.)
//   ddt_s += sum_t (dy_t.x_s) (C_t.B_s) exp(cum_t-cum_s);   dcum_t += q_ts, dcum_s -= q_ts
//   inter: dC_t += exp(cum_t) h0^T dy_t; dh0 += exp(cum_t) dy_t C_t^T; dcum_t += dy_t.(exp(cum_t) h0 C_t)
//   state: h_end = exp(cum_L) h0 + sum_s w_s dt_s x_s B_s^T, w_s = exp(cum_L - cum_s):
//     dh0 += exp(cum_L) dh_end; dcum_L += exp(cum_L) <dh_end, h0>; with u_s = dh_end B_s, v_s = x_s.u_s:
//     dx_s += w_s dt_s u_s; dB_s += w_s dt_s dh_end^T x_s; ddt_s += w_s v_s; dcum_L += w_s dt_s v_s,
//     dcum_s -= w_s dt_s v_s
//   cum_t = sum_{r<=t} dt_r A: da_r = sum_{t>=r} dcum_t; ddt_r += da_r A; dA += da_r dt_r.
void CpuBackend::ssd_backward(const SsdBwd& a) {
  const SsdLayout l = layout_of(a.x, a.b, a.params.chunk);
  const int64_t pn = l.p * l.n, L = l.chunk, hpg = l.heads_per_group();
  std::fill_n(a.db.data, a.db.numel(), 0.0f);
  std::fill_n(a.dc.data, a.dc.numel(), 0.0f);
  // per (batch, head) partial sums of the per-head parameter gradients, reduced below in order
  std::vector<double> dA_part(l.bsz * l.heads, 0.0), dD_part(l.bsz * l.heads, 0.0), ddt_bias_part(l.bsz * l.heads, 0.0);
  const bool vectorized = STRATA_SSD_AVX2_AVAILABLE && cpu_simd_avx2();
#if STRATA_SIMD_X86
  int threads = 1;
#ifdef _OPENMP
  threads = omp_get_max_threads();
#endif
  if (vectorized && l.bsz * l.groups >= threads) {
#pragma omp parallel
    {
      SsdBackwardScratch scratch(pn, L, l.p, l.n);
#pragma omp for collapse(2) schedule(static)
      for (int64_t b = 0; b < l.bsz; ++b) {
        for (int64_t g = 0; g < l.groups; ++g) {
          for (int64_t h = g * hpg; h < (g + 1) * hpg; ++h) {
            const int64_t slot = b * l.heads + h;
            ssd_backward_head_avx2(a, l, b, g, h, scratch, a.db.data, a.dc.data, &dA_part[slot], &dD_part[slot],
                                   &ddt_bias_part[slot]);
          }
        }
      }
    }
  } else if (vectorized) {
    // Fewer (batch, group) pairs than threads (batch 1, one group): split over heads instead, each
    // thread summing its heads' B and C gradients privately; the partial sums are added in thread
    // order, so results are deterministic for a given thread count.
    std::vector<std::vector<float>> db_part(threads), dc_part(threads);
#pragma omp parallel num_threads(threads)
    {
      int tid = 0;
#ifdef _OPENMP
      tid = omp_get_thread_num();
#endif
      db_part[tid].assign(static_cast<size_t>(a.db.numel()), 0.0f);
      dc_part[tid].assign(static_cast<size_t>(a.dc.numel()), 0.0f);
      SsdBackwardScratch scratch(pn, L, l.p, l.n);
#pragma omp for collapse(2) schedule(static)
      for (int64_t b = 0; b < l.bsz; ++b) {
        for (int64_t h = 0; h < l.heads; ++h) {
          const int64_t slot = b * l.heads + h;
          ssd_backward_head_avx2(a, l, b, h / hpg, h, scratch, db_part[tid].data(), dc_part[tid].data(), &dA_part[slot],
                                 &dD_part[slot], &ddt_bias_part[slot]);
        }
      }
    }
    for (int t = 0; t < threads; ++t) {
      for (size_t i = 0; i < db_part[t].size(); ++i) a.db.data[i] += db_part[t][i];
      for (size_t i = 0; i < dc_part[t].size(); ++i) a.dc.data[i] += dc_part[t][i];
    }
  }
#endif
  if (!vectorized) {
#pragma omp parallel
  {
    std::vector<float> dh(pn), dh0(pn), cum(L), dcum(L), ddt(L), u(l.p);
#pragma omp for collapse(2) schedule(static)
    for (int64_t b = 0; b < l.bsz; ++b) {
      for (int64_t g = 0; g < l.groups; ++g) {
        for (int64_t h = g * hpg; h < (g + 1) * hpg; ++h) {
          const float A = -std::exp(a.a_log.data[h]);
          const float D = a.d.defined() ? a.d.data[h] : 0.0f;
          double dA = 0.0, dD = 0.0, ddt_bias = 0.0;
          if (a.dfinal_state.defined()) {
            std::copy_n(a.dfinal_state.data + l.fi(b, h), pn, dh.begin());
          } else {
            std::fill(dh.begin(), dh.end(), 0.0f);
          }
          for (int64_t c = l.chunks - 1; c >= 0; --c) {
            const int64_t t0 = c * L, len = std::min(L, l.t_len - t0);
            const float* h0 = a.chunk_states.data + l.si(b, c, h);
            auto dt_at = [&](int64_t i) { return a.dt.data[l.ti(b, t0 + i, h)]; };
            auto x_at = [&](int64_t i) { return a.x.data + l.xi(b, t0 + i, h); };
            auto dy_at = [&](int64_t i) { return a.dy.data + l.xi(b, t0 + i, h); };
            auto dx_at = [&](int64_t i) { return a.dx.data + l.xi(b, t0 + i, h); };
            auto b_at = [&](int64_t i) { return a.b.data + l.bci(b, t0 + i, g); };
            auto c_at = [&](int64_t i) { return a.c.data + l.bci(b, t0 + i, g); };
            auto db_at = [&](int64_t i) { return a.db.data + l.bci(b, t0 + i, g); };
            auto dc_at = [&](int64_t i) { return a.dc.data + l.bci(b, t0 + i, g); };
            for (int64_t i = 0; i < len; ++i) cum[i] = (i ? cum[i - 1] : 0.0f) + dt_at(i) * A;
            std::fill_n(dcum.begin(), len, 0.0f);
            std::fill_n(ddt.begin(), len, 0.0f);
            std::fill(dh0.begin(), dh0.end(), 0.0f);
            // skip term and the contribution of the entering state
            for (int64_t i = 0; i < len; ++i) {
              const float* dy_t = dy_at(i);
              const float* x_t = x_at(i);
              const float* c_t = c_at(i);
              float* dx_t = dx_at(i);
              float* dc_t = dc_at(i);
              const float e = std::exp(cum[i]);
              float dy_dot_x = 0.0f, dy_dot_inter = 0.0f;
              for (int64_t p = 0; p < l.p; ++p) {
                dx_t[p] = D * dy_t[p];
                dy_dot_x += dy_t[p] * x_t[p];
                const float* h0_row = h0 + p * l.n;
                dy_dot_inter += dy_t[p] * dot(h0_row, c_t, l.n);
                const float edy = e * dy_t[p];
                float* dh0_row = dh0.data() + p * l.n;
                for (int64_t k = 0; k < l.n; ++k) {
                  dc_t[k] += edy * h0_row[k];
                  dh0_row[k] += edy * c_t[k];
                }
              }
              dD += dy_dot_x;
              dcum[i] += e * dy_dot_inter;
            }
            // intra-chunk quadratic form
            for (int64_t i = 0; i < len; ++i) {
              const float* dy_t = dy_at(i);
              const float* c_t = c_at(i);
              float* dc_t = dc_at(i);
              for (int64_t s = 0; s <= i; ++s) {
                const float* x_s = x_at(s);
                const float* b_s = b_at(s);
                const float decay = std::exp(cum[i] - cum[s]);
                const float cb = dot(c_t, b_s, l.n);
                const float coef = cb * decay * dt_at(s);  // S_ts
                const float ds = dot(dy_t, x_s, l.p);      // dS_ts
                float* dx_s = dx_at(s);
                for (int64_t p = 0; p < l.p; ++p) dx_s[p] += coef * dy_t[p];
                const float dcb = ds * decay * dt_at(s);
                float* db_s = db_at(s);
                for (int64_t k = 0; k < l.n; ++k) {
                  dc_t[k] += dcb * b_s[k];
                  db_s[k] += dcb * c_t[k];
                }
                ddt[s] += ds * cb * decay;
                const float q = ds * coef;
                dcum[i] += q;
                dcum[s] -= q;
              }
            }
            // state leaving the chunk
            const float last = cum[len - 1];
            const float e_last = std::exp(last);
            dcum[len - 1] += e_last * dot(dh.data(), h0, pn);
            for (int64_t k = 0; k < pn; ++k) dh0[k] += e_last * dh[k];
            for (int64_t s = 0; s < len; ++s) {
              const float* x_s = x_at(s);
              const float* b_s = b_at(s);
              float* dx_s = dx_at(s);
              float* db_s = db_at(s);
              const float w = std::exp(last - cum[s]);
              const float wdt = w * dt_at(s);
              float v = 0.0f;
              for (int64_t p = 0; p < l.p; ++p) {
                const float* dh_row = dh.data() + p * l.n;
                u[p] = dot(dh_row, b_s, l.n);
                v += x_s[p] * u[p];
                dx_s[p] += wdt * u[p];
                const float wx = wdt * x_s[p];
                for (int64_t k = 0; k < l.n; ++k) db_s[k] += wx * dh_row[k];
              }
              ddt[s] += w * v;
              dcum[len - 1] += wdt * v;
              dcum[s] -= wdt * v;
            }
            // cumulative sum -> per-step decay a_r = dt_r A
            chunk_decay_grads(dcum.data(), ddt.data(), len, A, dt_at, &dA);
            chunk_dt_raw_grads(a, l, b, h, t0, len, ddt.data(), &ddt_bias);
            std::swap(dh, dh0);
          }
          if (a.dinitial_state.defined()) std::copy(dh.begin(), dh.end(), a.dinitial_state.data + l.fi(b, h));
          dA_part[b * l.heads + h] = dA;
          dD_part[b * l.heads + h] = dD;
          ddt_bias_part[b * l.heads + h] = ddt_bias;
        }
      }
    }
  }
  }  // scalar reference
  for (int64_t h = 0; h < l.heads; ++h) {
    const float A = -std::exp(a.a_log.data[h]);
    double dA = 0.0, dD = 0.0, ddt_bias = 0.0;
    for (int64_t b = 0; b < l.bsz; ++b) {
      dA += dA_part[b * l.heads + h];
      dD += dD_part[b * l.heads + h];
      ddt_bias += ddt_bias_part[b * l.heads + h];
    }
    a.da_log.data[h] += static_cast<float>(dA * A);  // dA/dA_log = A
    a.ddt_bias.data[h] += static_cast<float>(ddt_bias);
    if (a.d.defined() && a.dd.defined()) a.dd.data[h] += static_cast<float>(dD);
  }
}

void CpuBackend::ssd_step(const SsdStep& a) {
  const int64_t bsz = a.x.size(0), heads = a.x.size(1), p_len = a.x.size(2);
  const int64_t groups = a.b.size(1), n = a.b.size(2), hpg = heads / groups;
#pragma omp parallel for collapse(2) schedule(static) if (bsz * heads >= 4)
  for (int64_t b = 0; b < bsz; ++b) {
    for (int64_t h = 0; h < heads; ++h) {
      const int64_t g = h / hpg;
      const float dt = dt_value(a.dt_raw.data[b * heads + h], a.dt_bias.data[h], a.params, nullptr);
      const float decay = std::exp(dt * -std::exp(a.a_log.data[h]));
      const float D = a.d.defined() ? a.d.data[h] : 0.0f;
      const float* x = a.x.data + (b * heads + h) * p_len;
      const float* bv = a.b.data + (b * groups + g) * n;
      const float* cv = a.c.data + (b * groups + g) * n;
      float* state = a.state.data + (b * heads + h) * p_len * n;
      float* y = a.y.data + (b * heads + h) * p_len;
      for (int64_t p = 0; p < p_len; ++p) {
        float* row = state + p * n;
        const float dtx = dt * x[p];
        float acc = 0.0f;
        for (int64_t k = 0; k < n; ++k) {
          row[k] = decay * row[k] + dtx * bv[k];
          acc += row[k] * cv[k];
        }
        y[p] = acc + D * x[p];
      }
    }
  }
}

}  // namespace strata
