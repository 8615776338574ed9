// CUDA kernels of Mamba-2's sequence mixers: the depthwise causal conv1d (+ fused SiLU) forward,
// backward and decode step, and the SSD chunked scan forward, exact backward and decode step.
// SSD: one thread block per (batch, head) walks the chunks in order (forward) or in reverse
// (backward); inside a chunk the threads share the (t, s) pair work of the quadratic form, the
// (p, n) work of the state, and the (t, p) work of the outputs. The entering state of every chunk
// is kept in chunk_states (as the op contract saves it), so the backward reads it from there.
// B and C are shared by the heads of a group, so their gradients are atomically accumulated;
// per-head parameter gradients (A_log, dt_bias, D) too. Formulas follow cpu/ssd_cpu.cpp (the
// derivation is in its comments) and cpu/conv1d_cpu.cpp.
#include "../ops/conv1d.h"
#include "../ops/ssd.h"
#include "cuda_common.cuh"

namespace strata {
namespace {

// ---- conv1d ------------------------------------------------------------------------------------

__device__ __forceinline__ float conv_pre(const float* x, const float* w, const float* bias, int64_t t_len,
                                          int64_t c_len, int64_t k, int64_t b, int64_t t, int64_t c) {
  float v = bias ? bias[c] : 0.0f;
  for (int64_t j = 0; j < k; ++j) {
    const int64_t src_t = t - k + 1 + j;
    if (src_t >= 0) v += w[c * k + j] * x[(b * t_len + src_t) * c_len + c];
  }
  return v;
}

__global__ void conv1d_forward_kernel(float* y, const float* x, const float* w, const float* bias, int64_t bsz,
                                      int64_t t_len, int64_t c_len, int64_t k, bool silu) {
  STRATA_GRID_STRIDE(i, bsz * t_len * c_len) {
    const int64_t c = i % c_len, t = (i / c_len) % t_len, b = i / (c_len * t_len);
    const float v = conv_pre(x, w, bias, t_len, c_len, k, b, t, c);
    y[i] = silu ? dev_silu(v) : v;
  }
}

// g = dL/d(pre-activation)
__global__ void conv1d_pre_grad_kernel(float* g, const float* dy, const float* x, const float* w, const float* bias,
                                       int64_t bsz, int64_t t_len, int64_t c_len, int64_t k, bool silu) {
  STRATA_GRID_STRIDE(i, bsz * t_len * c_len) {
    const int64_t c = i % c_len, t = (i / c_len) % t_len, b = i / (c_len * t_len);
    g[i] = silu ? dy[i] * dev_silu_grad(conv_pre(x, w, bias, t_len, c_len, k, b, t, c)) : dy[i];
  }
}

// dx[b,s,c] = sum_j g[b, s+K-1-j, c] w[c,j]
__global__ void conv1d_dx_kernel(float* dx, const float* g, const float* w, int64_t bsz, int64_t t_len, int64_t c_len,
                                 int64_t k) {
  STRATA_GRID_STRIDE(i, bsz * t_len * c_len) {
    const int64_t c = i % c_len, s = (i / c_len) % t_len, b = i / (c_len * t_len);
    float v = 0.0f;
    for (int64_t j = 0; j < k; ++j) {
      const int64_t t = s + k - 1 - j;
      if (t < t_len) v += g[(b * t_len + t) * c_len + c] * w[c * k + j];
    }
    dx[i] = v;
  }
}

// One thread per (channel, tap) and one per channel for the bias: sums over (batch, time) in order.
// Summand of the conv weight / bias gradient: column i = j * C + c (j == K: the bias of channel c),
// row = b * T + t.
struct ConvDwTerm {
  const float *g, *x;
  int64_t t_len, c_len, k;
  __device__ double operator()(int64_t row, int64_t i) const {
    const int64_t c = i % c_len, j = i / c_len, t = row % t_len;
    const float gv = g[row * c_len + c];
    if (j == k) return gv;
    const int64_t src_t = t - k + 1 + j;
    return src_t >= 0 ? static_cast<double>(gv) * x[(row - t + src_t) * c_len + c] : 0.0;
  }
};
struct ConvDwSink {
  float *dw, *dbias;
  int64_t c_len, k;
  __device__ void operator()(int64_t i, double total) const {
    const int64_t c = i % c_len, j = i / c_len;
    if (j == k) {
      if (dbias) dbias[c] += static_cast<float>(total);
    } else if (dw) {
      dw[c * k + j] += static_cast<float>(total);
    }
  }
};

__global__ void conv1d_step_kernel(float* y, float* state, const float* x, const float* w, const float* bias,
                                   int64_t bsz, int64_t c_len, int64_t k, bool silu) {
  STRATA_GRID_STRIDE(i, bsz * c_len) {
    const int64_t b = i / c_len, c = i % c_len;
    float* st = state + b * (k - 1) * c_len;
    float v = bias ? bias[c] : 0.0f;
    for (int64_t j = 0; j < k - 1; ++j) v += w[c * k + j] * st[j * c_len + c];
    v += w[c * k + k - 1] * x[i];
    y[i] = silu ? dev_silu(v) : v;
    for (int64_t j = 0; j + 1 < k - 1; ++j) st[j * c_len + c] = st[(j + 1) * c_len + c];
    if (k > 1) st[(k - 2) * c_len + c] = x[i];
  }
}

// ---- SSD ---------------------------------------------------------------------------------------

struct SsdDev {
  int64_t bsz, t_len, heads, p, groups, n, chunk, chunks;
  bool dt_limit;
  float dt_min, dt_max;
  __device__ int64_t hpg() const { return heads / groups; }
  __device__ int64_t xi(int64_t b, int64_t t, int64_t h) const { return ((b * t_len + t) * heads + h) * p; }
  __device__ int64_t bci(int64_t b, int64_t t, int64_t g) const { return ((b * t_len + t) * groups + g) * n; }
  __device__ int64_t ti(int64_t b, int64_t t, int64_t h) const { return (b * t_len + t) * heads + h; }
  __device__ int64_t si(int64_t b, int64_t c, int64_t h) const { return ((b * chunks + c) * heads + h) * p * n; }
  __device__ int64_t fi(int64_t b, int64_t h) const { return (b * heads + h) * p * n; }
  __device__ float dt_value(float raw, float bias, bool* passes) const {
    float v = dev_softplus(raw + bias);
    bool inside = true;
    if (dt_limit) {
      if (v < dt_min) v = dt_min, inside = false;
      else if (v > dt_max) v = dt_max, inside = false;
    }
    if (passes) *passes = inside;
    return v;
  }
};

SsdDev ssd_dims(const Tensor& x, const Tensor& bm, const SsdParams& params) {
  SsdDev l{x.size(0), x.size(1), x.size(2), x.size(3), bm.size(2), bm.size(3), params.chunk, 0,
           params.dt_limit, params.dt_min, params.dt_max};
  l.chunks = ssd_num_chunks(l.t_len, l.chunk);
  return l;
}

__device__ __forceinline__ float dot_n(const float* a, const float* b, int64_t n) {
  float s = 0.0f;
  for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

__global__ void ssd_forward_kernel(SsdDev l, float* y, float* dt_out, float* chunk_states, float* final_state,
                                   const float* x, const float* dt_raw, const float* dt_bias, const float* a_log,
                                   const float* bm, const float* cm, const float* d, const float* initial_state,
                                   float* coef_scratch) {
  extern __shared__ float shared[];
  const int64_t L = l.chunk;
  float* cum = shared;
  float* dts = shared + L;
  const int64_t b = blockIdx.x / l.heads, h = blockIdx.x % l.heads, g = h / l.hpg();
  const int64_t pn = l.p * l.n;
  const float A = -expf(a_log[h]);
  const float D = d ? d[h] : 0.0f;
  float* coef = coef_scratch + static_cast<int64_t>(blockIdx.x) * L * L;
  for (int64_t t = threadIdx.x; t < l.t_len; t += blockDim.x) {
    dt_out[l.ti(b, t, h)] = l.dt_value(dt_raw[l.ti(b, t, h)], dt_bias[h], nullptr);
  }
  float* first = chunk_states + l.si(b, 0, h);
  for (int64_t i = threadIdx.x; i < pn; i += blockDim.x) first[i] = initial_state ? initial_state[l.fi(b, h) + i] : 0.0f;
  __syncthreads();
  for (int64_t c = 0; c < l.chunks; ++c) {
    const int64_t t0 = c * L, len = min(L, l.t_len - t0);
    const float* h0 = chunk_states + l.si(b, c, h);
    if (threadIdx.x == 0) {
      float run = 0.0f;
      for (int64_t i = 0; i < len; ++i) {
        dts[i] = dt_out[l.ti(b, t0 + i, h)];
        run += dts[i] * A;
        cum[i] = run;
      }
    }
    __syncthreads();
    for (int64_t idx = threadIdx.x; idx < len * len; idx += blockDim.x) {
      const int64_t i = idx / len, s = idx % len;
      if (s <= i) {
        coef[i * L + s] = dot_n(cm + l.bci(b, t0 + i, g), bm + l.bci(b, t0 + s, g), l.n) * expf(cum[i] - cum[s]) * dts[s];
      }
    }
    __syncthreads();
    for (int64_t idx = threadIdx.x; idx < len * l.p; idx += blockDim.x) {
      const int64_t i = idx / l.p, p = idx % l.p, t = t0 + i;
      float acc = D * x[l.xi(b, t, h) + p] + expf(cum[i]) * dot_n(h0 + p * l.n, cm + l.bci(b, t, g), l.n);
      for (int64_t s = 0; s <= i; ++s) acc += coef[i * L + s] * x[l.xi(b, t0 + s, h) + p];
      y[l.xi(b, t, h) + p] = acc;
    }
    float* next = c + 1 < l.chunks ? chunk_states + l.si(b, c + 1, h) : (final_state ? final_state + l.fi(b, h) : nullptr);
    if (next) {
      const float last = cum[len - 1];
      const float decay = expf(last);
      for (int64_t idx = threadIdx.x; idx < pn; idx += blockDim.x) {
        const int64_t p = idx / l.n, k = idx % l.n;
        float v = decay * h0[idx];
        for (int64_t s = 0; s < len; ++s) {
          v += expf(last - cum[s]) * dts[s] * x[l.xi(b, t0 + s, h) + p] * bm[l.bci(b, t0 + s, g) + k];
        }
        next[idx] = v;
      }
    }
    __syncthreads();
  }
}

struct SsdGrads {
  float *dx, *ddt_raw, *ddt_bias, *da_log, *db, *dc, *dd, *dinitial_state;
};

__global__ void ssd_backward_kernel(SsdDev l, SsdGrads gr, const float* dy, const float* dfinal_state, const float* x,
                                    const float* dt_raw, const float* dt_bias, const float* a_log, const float* bm,
                                    const float* cm, const float* d, const float* dt, const float* chunk_states,
                                    float* cb_scratch, float* ds_scratch, float* dh_scratch) {
  extern __shared__ float shared[];
  __shared__ double reduce[32];
  const int64_t L = l.chunk;
  float* cum = shared;
  float* dts = shared + L;
  float* dcum = shared + 2 * L;
  float* ddt = shared + 3 * L;
  float* vv = shared + 4 * L;
  const int64_t b = blockIdx.x / l.heads, h = blockIdx.x % l.heads, g = h / l.hpg();
  const int64_t pn = l.p * l.n;
  const float A = -expf(a_log[h]);
  const float D = d ? d[h] : 0.0f;
  float* CB = cb_scratch + static_cast<int64_t>(blockIdx.x) * L * L;
  float* DS = ds_scratch + static_cast<int64_t>(blockIdx.x) * L * L;
  float* dh = dh_scratch + static_cast<int64_t>(blockIdx.x) * 2 * pn;
  float* dh_next = dh + pn;
  for (int64_t i = threadIdx.x; i < pn; i += blockDim.x) dh[i] = dfinal_state ? dfinal_state[l.fi(b, h) + i] : 0.0f;
  double dD_local = 0.0, dA_acc = 0.0, ddt_bias_acc = 0.0;
  __syncthreads();
  for (int64_t c = l.chunks - 1; c >= 0; --c) {
    const int64_t t0 = c * L, len = min(L, l.t_len - t0);
    const float* h0 = chunk_states + l.si(b, c, h);
    auto x_at = [&](int64_t i) { return x + l.xi(b, t0 + i, h); };
    auto dy_at = [&](int64_t i) { return dy + l.xi(b, t0 + i, h); };
    auto b_at = [&](int64_t i) { return bm + l.bci(b, t0 + i, g); };
    auto c_at = [&](int64_t i) { return cm + l.bci(b, t0 + i, g); };
    if (threadIdx.x == 0) {
      float run = 0.0f;
      for (int64_t i = 0; i < len; ++i) {
        dts[i] = dt[l.ti(b, t0 + i, h)];
        run += dts[i] * A;
        cum[i] = run;
      }
    }
    __syncthreads();
    for (int64_t idx = threadIdx.x; idx < len * len; idx += blockDim.x) {
      const int64_t i = idx / len, s = idx % len;
      if (s <= i) {
        CB[i * L + s] = dot_n(c_at(i), b_at(s), l.n);
        DS[i * L + s] = dot_n(dy_at(i), x_at(s), l.p);
      }
    }
    for (int64_t s = threadIdx.x; s < len; s += blockDim.x) {
      const float* xs = x_at(s);
      const float* bs = b_at(s);
      float v = 0.0f;
      for (int64_t p = 0; p < l.p; ++p) v += xs[p] * dot_n(dh + p * l.n, bs, l.n);
      vv[s] = v;
    }
    __syncthreads();
    const float last = cum[len - 1];
    const float e_last = expf(last);
    // dx (owned by this block)
    for (int64_t idx = threadIdx.x; idx < len * l.p; idx += blockDim.x) {
      const int64_t s = idx / l.p, p = idx % l.p;
      float val = D * dy_at(s)[p];
      for (int64_t i = s; i < len; ++i) val += CB[i * L + s] * expf(cum[i] - cum[s]) * dts[s] * dy_at(i)[p];
      val += expf(last - cum[s]) * dts[s] * dot_n(dh + p * l.n, b_at(s), l.n);
      gr.dx[l.xi(b, t0 + s, h) + p] = val;
    }
    // dC (shared by the group's heads)
    for (int64_t idx = threadIdx.x; idx < len * l.n; idx += blockDim.x) {
      const int64_t i = idx / l.n, k = idx % l.n;
      const float e = expf(cum[i]);
      const float* dyi = dy_at(i);
      float val = 0.0f;
      for (int64_t p = 0; p < l.p; ++p) val += e * dyi[p] * h0[p * l.n + k];
      for (int64_t s = 0; s <= i; ++s) val += DS[i * L + s] * expf(cum[i] - cum[s]) * dts[s] * b_at(s)[k];
      atomicAdd(gr.dc + l.bci(b, t0 + i, g) + k, val);
    }
    // dB
    for (int64_t idx = threadIdx.x; idx < len * l.n; idx += blockDim.x) {
      const int64_t s = idx / l.n, k = idx % l.n;
      float val = 0.0f;
      for (int64_t i = s; i < len; ++i) val += DS[i * L + s] * expf(cum[i] - cum[s]) * dts[s] * c_at(i)[k];
      const float wdt = expf(last - cum[s]) * dts[s];
      const float* xs = x_at(s);
      for (int64_t p = 0; p < l.p; ++p) val += wdt * xs[p] * dh[p * l.n + k];
      atomicAdd(gr.db + l.bci(b, t0 + s, g) + k, val);
    }
    // gradient of the state entering the chunk
    for (int64_t idx = threadIdx.x; idx < pn; idx += blockDim.x) {
      const int64_t p = idx / l.n, k = idx % l.n;
      float val = e_last * dh[idx];
      for (int64_t i = 0; i < len; ++i) val += expf(cum[i]) * dy_at(i)[p] * c_at(i)[k];
      dh_next[idx] = val;
    }
    // per-time scalars: gradient of the cumulative decay and of dt
    for (int64_t i = threadIdx.x; i < len; i += blockDim.x) {
      const float* dyi = dy_at(i);
      const float* xi = x_at(i);
      const float* ci = c_at(i);
      float inter = 0.0f, dyx = 0.0f;
      for (int64_t p = 0; p < l.p; ++p) {
        inter += dyi[p] * dot_n(h0 + p * l.n, ci, l.n);
        dyx += dyi[p] * xi[p];
      }
      dD_local += dyx;
      float dcum_i = expf(cum[i]) * inter, ddt_i = 0.0f;
      for (int64_t s = 0; s <= i; ++s) dcum_i += DS[i * L + s] * CB[i * L + s] * expf(cum[i] - cum[s]) * dts[s];
      for (int64_t i2 = i; i2 < len; ++i2) {
        const float q = DS[i2 * L + i] * CB[i2 * L + i] * expf(cum[i2] - cum[i]);
        dcum_i -= q * dts[i];
        ddt_i += q;
      }
      const float w = expf(last - cum[i]);
      ddt_i += w * vv[i];
      dcum_i -= w * dts[i] * vv[i];
      dcum[i] = dcum_i;
      ddt[i] = ddt_i;
    }
    double hh = 0.0;
    for (int64_t idx = threadIdx.x; idx < pn; idx += blockDim.x) hh += static_cast<double>(dh[idx]) * h0[idx];
    hh = block_sum(hh, reduce);  // synchronizes: dcum / ddt are complete after this
    if (threadIdx.x == 0) {
      float extra = e_last * static_cast<float>(hh);
      for (int64_t s = 0; s < len; ++s) extra += expf(last - cum[s]) * dts[s] * vv[s];
      dcum[len - 1] += extra;
      float da = 0.0f;
      for (int64_t r = len - 1; r >= 0; --r) {
        da += dcum[r];
        ddt[r] += da * A;
        dA_acc += static_cast<double>(da) * dts[r];
      }
      for (int64_t r = 0; r < len; ++r) {
        const int64_t idx = l.ti(b, t0 + r, h);
        bool passes = true;
        l.dt_value(dt_raw[idx], dt_bias[h], &passes);
        const float g_raw = passes ? ddt[r] * dev_sigmoid(dt_raw[idx] + dt_bias[h]) : 0.0f;
        gr.ddt_raw[idx] = g_raw;
        ddt_bias_acc += g_raw;
      }
    }
    __syncthreads();
    float* swap = dh;
    dh = dh_next;
    dh_next = swap;
  }
  if (gr.dinitial_state) {
    for (int64_t i = threadIdx.x; i < pn; i += blockDim.x) gr.dinitial_state[l.fi(b, h) + i] = dh[i];
  }
  const double dD_total = block_sum(dD_local, reduce);
  if (threadIdx.x == 0) {
    atomicAdd(gr.da_log + h, static_cast<float>(dA_acc * A));
    atomicAdd(gr.ddt_bias + h, static_cast<float>(ddt_bias_acc));
    if (d && gr.dd) atomicAdd(gr.dd + h, static_cast<float>(dD_total));
  }
}

__global__ void ssd_step_kernel(SsdDev l, float* y, float* state, const float* x, const float* dt_raw,
                                const float* dt_bias, const float* a_log, const float* bm, const float* cm,
                                const float* d) {
  // l.t_len == 1 layout: x (B,H,P), b/c (B,G,N), dt_raw (B,H)
  STRATA_GRID_STRIDE(i, l.bsz * l.heads * l.p) {
    const int64_t p = i % l.p, h = (i / l.p) % l.heads, b = i / (l.p * l.heads), g = h / l.hpg();
    const float dtv = l.dt_value(dt_raw[b * l.heads + h], dt_bias[h], nullptr);
    const float decay = expf(dtv * -expf(a_log[h]));
    const float D = d ? d[h] : 0.0f;
    const float xv = x[i];
    const float* bv = bm + (b * l.groups + g) * l.n;
    const float* cv = cm + (b * l.groups + g) * l.n;
    float* row = state + ((b * l.heads + h) * l.p + p) * l.n;
    const float dtx = dtv * xv;
    float acc = 0.0f;
    for (int64_t k = 0; k < l.n; ++k) {
      row[k] = decay * row[k] + dtx * bv[k];
      acc += row[k] * cv[k];
    }
    y[i] = acc + D * xv;
  }
}

const float* opt(const Tensor& t) { return t.defined() ? t.data : nullptr; }
float* opt_mut(const Tensor& t) { return t.defined() ? t.data : nullptr; }

}  // namespace

void CudaBackend::conv1d_forward(const Conv1dFwd& a) {
  const int64_t bsz = a.x.size(0), t_len = a.x.size(1), c_len = a.x.size(2), k = a.w.size(1);
  if (a.x.numel() == 0) return;
  conv1d_forward_kernel<<<grid_for(a.x.numel()), kThreads, 0, state_->stream>>>(a.y.data, a.x.data, a.w.data,
                                                                                opt(a.bias), bsz, t_len, c_len, k, a.silu);
  finish_op("cuda conv1d_forward");
}

void CudaBackend::conv1d_backward(const Conv1dBwd& a) {
  const char* op = "cuda conv1d_backward";
  const int64_t bsz = a.x.size(0), t_len = a.x.size(1), c_len = a.x.size(2), k = a.w.size(1);
  const int64_t n = a.x.numel();
  if (n == 0) return;
  float* g = state_->scratch_as<float>(2, n, op);
  conv1d_pre_grad_kernel<<<grid_for(n), kThreads, 0, state_->stream>>>(g, a.dy.data, a.x.data, a.w.data, opt(a.bias),
                                                                       bsz, t_len, c_len, k, a.silu);
  conv1d_dx_kernel<<<grid_for(n), kThreads, 0, state_->stream>>>(a.dx.data, g, a.w.data, bsz, t_len, c_len, k);
  if (a.dw.defined() || a.dbias.defined()) {
    accumulate_columns(*state_, bsz * t_len, c_len * (k + 1), ConvDwTerm{g, a.x.data, t_len, c_len, k},
                       ConvDwSink{opt_mut(a.dw), opt_mut(a.dbias), c_len, k}, op);
  }
  finish_op(op);
}

void CudaBackend::conv1d_step(const Conv1dStep& a) {
  const int64_t bsz = a.x.size(0), c_len = a.x.size(1), k = a.w.size(1);
  if (bsz * c_len == 0) return;
  conv1d_step_kernel<<<grid_for(bsz * c_len), kThreads, 0, state_->stream>>>(a.y.data, a.state.data, a.x.data,
                                                                             a.w.data, opt(a.bias), bsz, c_len, k,
                                                                             a.silu);
  finish_op("cuda conv1d_step");
}

void CudaBackend::ssd_forward(const SsdFwd& a) {
  const char* op = "cuda ssd_forward";
  const SsdDev l = ssd_dims(a.x, a.b, a.params);
  if (l.t_len == 0 || l.bsz * l.heads == 0) return;
  const int64_t blocks = l.bsz * l.heads;
  float* coef = state_->scratch_as<float>(2, blocks * l.chunk * l.chunk, op);
  const std::size_t shared = static_cast<std::size_t>(2 * l.chunk) * sizeof(float);
  ssd_forward_kernel<<<static_cast<unsigned>(blocks), kThreads, shared, state_->stream>>>(
      l, a.y.data, a.dt.data, a.chunk_states.data, opt_mut(a.final_state), a.x.data, a.dt_raw.data, a.dt_bias.data,
      a.a_log.data, a.b.data, a.c.data, opt(a.d), opt(a.initial_state), coef);
  finish_op(op);
}

void CudaBackend::ssd_backward(const SsdBwd& a) {
  const char* op = "cuda ssd_backward";
  const SsdDev l = ssd_dims(a.x, a.b, a.params);
  if (l.t_len == 0 || l.bsz * l.heads == 0) return;
  const int64_t blocks = l.bsz * l.heads;
  float* cb = state_->scratch_as<float>(2, blocks * l.chunk * l.chunk, op);
  float* ds = state_->scratch_as<float>(3, blocks * l.chunk * l.chunk, op);
  float* dh = state_->scratch_as<float>(4, blocks * 2 * l.p * l.n, op);
  STRATA_CUDA_CHECK(cudaMemsetAsync(a.db.data, 0, a.db.numel() * sizeof(float), state_->stream), op);
  STRATA_CUDA_CHECK(cudaMemsetAsync(a.dc.data, 0, a.dc.numel() * sizeof(float), state_->stream), op);
  SsdGrads gr{a.dx.data, a.ddt_raw.data, a.ddt_bias.data, a.da_log.data, a.db.data, a.dc.data, opt_mut(a.dd),
              opt_mut(a.dinitial_state)};
  const std::size_t shared = static_cast<std::size_t>(5 * l.chunk) * sizeof(float);
  ssd_backward_kernel<<<static_cast<unsigned>(blocks), kThreads, shared, state_->stream>>>(
      l, gr, a.dy.data, opt(a.dfinal_state), a.x.data, a.dt_raw.data, a.dt_bias.data, a.a_log.data, a.b.data,
      a.c.data, opt(a.d), a.dt.data, a.chunk_states.data, cb, ds, dh);
  finish_op(op);
}

void CudaBackend::ssd_step(const SsdStep& a) {
  SsdDev l{a.x.size(0), 1, a.x.size(1), a.x.size(2), a.b.size(1), a.b.size(2), 1, 1,
           a.params.dt_limit, a.params.dt_min, a.params.dt_max};
  const int64_t n = l.bsz * l.heads * l.p;
  if (n == 0) return;
  ssd_step_kernel<<<grid_for(n), kThreads, 0, state_->stream>>>(l, a.y.data, a.state.data, a.x.data, a.dt_raw.data,
                                                                a.dt_bias.data, a.a_log.data, a.b.data, a.c.data,
                                                                opt(a.d));
  finish_op("cuda ssd_step");
}

}  // namespace strata
