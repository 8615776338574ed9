// CUDA kernels of Mamba-2's sequence mixers: the depthwise causal conv1d (+ fused SiLU) forward,
// backward and decode step, and the SSD chunked scan forward, exact backward and decode step.
// SSD is chunk-parallel: one thread block per (batch, head, chunk) computes what the chunk adds to
// the state from a zero entering state; a short sequential pass per (batch, head) turns those into
// the entering state of every chunk (kept in chunk_states, as the op contract saves it); then one
// block per chunk computes the outputs (the masked quadratic form inside the chunk plus the
// entering-state term). The backward mirrors it: chunk-local state gradients, a reverse pass per
// (batch, head) giving the gradient of the state leaving every chunk, then one block per chunk for
// all other gradients. B and C are shared by the heads of a group, so their gradients are
// atomically accumulated; per-head parameter gradients (A_log, dt_bias, D) too. Formulas follow
// cpu/ssd_cpu.cpp (the derivation is in its comments) and cpu/conv1d_cpu.cpp. The chunk's matrix
// products (C B^T, dy x^T, C h0^T, B dh^T) go through shared-memory tiles (block_gemm_abt) in fp32
// on CUDA cores; not here: tensor-core (BF16 MMA / cuBLAS) forms of them.
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

// Tiles of block_gemm_abt: 32 x 32 outputs, 32-wide k steps, rows padded to 33 floats (no bank
// conflicts when a warp reads a column).
constexpr int kTile = 32;
constexpr int kTilePitch = kTile + 1;
constexpr int kTileFloats = 2 * kTile * kTilePitch;

// out[i * ldo + j] = sum_q a[i * lda + q] * b[j * ldb + q] for i < m, j < n (a times b transposed),
// one 32 x 32 output tile at a time with both operand tiles staged through shared memory (`tiles`:
// kTileFloats), so global reads are coalesced along q. With lower_only the tiles wholly above the
// diagonal (every j > i) are skipped and those entries are left unwritten. Needs blockDim.x ==
// kThreads (8 rows of 32 threads); every thread of the block must call it (it synchronizes), and
// the block must synchronize again before reading `out`.
__device__ void block_gemm_abt(float* out, int64_t ldo, const float* a, int64_t lda, const float* b, int64_t ldb,
                               int64_t m, int64_t n, int64_t k, bool lower_only, float* tiles) {
  static_assert(kThreads == 8 * kTile, "block_gemm_abt maps 256 threads onto 8 x 32");
  float* ta = tiles;
  float* tb = tiles + kTile * kTilePitch;
  const int tx = threadIdx.x % kTile, ty = threadIdx.x / kTile;
  for (int64_t i0 = 0; i0 < m; i0 += kTile) {
    for (int64_t j0 = 0; j0 < n; j0 += kTile) {
      if (lower_only && j0 > i0 + kTile - 1) continue;
      float acc[kTile / 8] = {0.0f, 0.0f, 0.0f, 0.0f};
      for (int64_t q0 = 0; q0 < k; q0 += kTile) {
        const int64_t q = q0 + tx;
        for (int r = ty; r < kTile; r += 8) {
          ta[r * kTilePitch + tx] = (i0 + r < m && q < k) ? a[(i0 + r) * lda + q] : 0.0f;
          tb[r * kTilePitch + tx] = (j0 + r < n && q < k) ? b[(j0 + r) * ldb + q] : 0.0f;
        }
        __syncthreads();
        for (int qq = 0; qq < kTile; ++qq) {
          const float bv = tb[tx * kTilePitch + qq];
          for (int r = 0; r < kTile / 8; ++r) acc[r] += ta[(ty + 8 * r) * kTilePitch + qq] * bv;
        }
        __syncthreads();
      }
      for (int r = 0; r < kTile / 8; ++r) {
        const int64_t i = i0 + ty + 8 * r, j = j0 + tx;
        if (i < m && j < n) out[i * ldo + j] = acc[r];
      }
    }
  }
}

// The chunk a block works on: blocks are numbered ((b * heads + h) * chunks + c).
struct SsdChunk {
  int64_t b, h, g, c, t0, len;
};

__device__ SsdChunk ssd_chunk_of_block(const SsdDev& l) {
  const int64_t bh = blockIdx.x / l.chunks, c = blockIdx.x % l.chunks;
  const int64_t b = bh / l.heads, h = bh % l.heads;
  return {b, h, h / l.hpg(), c, c * l.chunk, min(l.chunk, l.t_len - c * l.chunk)};
}

// dts[i] = dt of the chunk's step i, cum[i] = A * (dt_0 + ... + dt_i). Synchronizes the block.
__device__ void ssd_load_chunk_decay(const SsdDev& l, const SsdChunk& v, const float* dt, float A, float* dts,
                                     float* cum) {
  for (int64_t i = threadIdx.x; i < v.len; i += blockDim.x) dts[i] = dt[l.ti(v.b, v.t0 + i, v.h)];
  __syncthreads();
  if (threadIdx.x == 0) {
    float run = 0.0f;
    for (int64_t i = 0; i < v.len; ++i) {
      run += dts[i] * A;
      cum[i] = run;
    }
  }
  __syncthreads();
}

// dt = softplus(dt_raw + dt_bias) (clamped with dt_limit) of every (b, t, h)
__global__ void ssd_dt_kernel(SsdDev l, float* dt_out, const float* dt_raw, const float* dt_bias) {
  STRATA_GRID_STRIDE(i, l.bsz * l.t_len * l.heads) dt_out[i] = l.dt_value(dt_raw[i], dt_bias[i % l.heads], nullptr);
}

// Forward phase 1 (one block per chunk): the state a chunk adds from a zero entering state,
// S[p,k] = sum_s exp(cum[last] - cum[s]) dt[s] x[s,p] B[s,k], written where the state leaving the
// chunk goes (chunk_states of the next chunk, or final_state after the last one), and the chunk's
// total decay exp(cum[last]).
__global__ void ssd_chunk_state_kernel(SsdDev l, float* chunk_states, float* final_state, float* decays,
                                       const float* x, const float* dt, const float* a_log, const float* bm) {
  extern __shared__ float shared[];
  float* cum = shared;
  float* w = shared + l.chunk;
  const SsdChunk v = ssd_chunk_of_block(l);
  ssd_load_chunk_decay(l, v, dt, -expf(a_log[v.h]), w, cum);
  const float last = cum[v.len - 1];
  for (int64_t s = threadIdx.x; s < v.len; s += blockDim.x) w[s] *= expf(last - cum[s]);
  __syncthreads();
  if (threadIdx.x == 0) decays[blockIdx.x] = expf(last);
  float* dest = v.c + 1 < l.chunks ? chunk_states + l.si(v.b, v.c + 1, v.h)
                                   : (final_state ? final_state + l.fi(v.b, v.h) : nullptr);
  if (!dest) return;
  for (int64_t idx = threadIdx.x; idx < l.p * l.n; idx += blockDim.x) {
    const int64_t p = idx / l.n, k = idx % l.n;
    float acc = 0.0f;
    for (int64_t s = 0; s < v.len; ++s) acc += w[s] * x[l.xi(v.b, v.t0 + s, v.h) + p] * bm[l.bci(v.b, v.t0 + s, v.g) + k];
    dest[idx] = acc;
  }
}

// Forward phase 2 (one block per (b, h), one thread per state element): the sequential pass over
// chunks, entering(c + 1) = decay(c) * entering(c) + S(c), in place over the chunk-local states.
__global__ void ssd_state_pass_kernel(SsdDev l, float* chunk_states, float* final_state, const float* decays,
                                      const float* initial_state) {
  const int64_t b = blockIdx.x / l.heads, h = blockIdx.x % l.heads;
  const float* decay = decays + static_cast<int64_t>(blockIdx.x) * l.chunks;
  for (int64_t idx = threadIdx.x; idx < l.p * l.n; idx += blockDim.x) {
    float carry = initial_state ? initial_state[l.fi(b, h) + idx] : 0.0f;
    chunk_states[l.si(b, 0, h) + idx] = carry;
    for (int64_t c = 0; c < l.chunks; ++c) {
      float* next = c + 1 < l.chunks ? chunk_states + l.si(b, c + 1, h) : (final_state ? final_state + l.fi(b, h) : nullptr);
      if (!next) break;
      carry = decay[c] * carry + next[idx];
      next[idx] = carry;
    }
  }
}

// Forward phase 3 (one block per chunk): y = D x + exp(cum) C h_entering + the masked quadratic form
// within the chunk.
__global__ void ssd_chunk_output_kernel(SsdDev l, float* y, const float* chunk_states, const float* x,
                                        const float* dt, const float* a_log, const float* bm, const float* cm,
                                        const float* d, float* coef_scratch, float* state_term_scratch) {
  extern __shared__ float shared[];
  __shared__ float tiles[kTileFloats];
  const int64_t L = l.chunk;
  float* cum = shared;
  float* dts = shared + L;
  const SsdChunk v = ssd_chunk_of_block(l);
  const float D = d ? d[v.h] : 0.0f;
  float* coef = coef_scratch + static_cast<int64_t>(blockIdx.x) * L * L;
  float* state_term = state_term_scratch + static_cast<int64_t>(blockIdx.x) * L * l.p;  // (C h0^T)[i, p]
  ssd_load_chunk_decay(l, v, dt, -expf(a_log[v.h]), dts, cum);
  const float* h0 = chunk_states + l.si(v.b, v.c, v.h);
  const int64_t len = v.len, bc_stride = l.groups * l.n;
  const float* c_chunk = cm + l.bci(v.b, v.t0, v.g);
  block_gemm_abt(coef, L, c_chunk, bc_stride, bm + l.bci(v.b, v.t0, v.g), bc_stride, len, len, l.n, true, tiles);
  block_gemm_abt(state_term, l.p, c_chunk, bc_stride, h0, l.n, len, l.p, l.n, false, tiles);
  __syncthreads();
  for (int64_t idx = threadIdx.x; idx < len * len; idx += blockDim.x) {
    const int64_t i = idx / len, s = idx % len;
    if (s <= i) coef[i * L + s] *= expf(cum[i] - cum[s]) * dts[s];
  }
  __syncthreads();
  for (int64_t idx = threadIdx.x; idx < len * l.p; idx += blockDim.x) {
    const int64_t i = idx / l.p, p = idx % l.p, t = v.t0 + i;
    float acc = D * x[l.xi(v.b, t, v.h) + p] + expf(cum[i]) * state_term[i * l.p + p];
    for (int64_t s = 0; s <= i; ++s) acc += coef[i * L + s] * x[l.xi(v.b, v.t0 + s, v.h) + p];
    y[l.xi(v.b, t, v.h) + p] = acc;
  }
}

struct SsdGrads {
  float *dx, *ddt_raw, *ddt_bias, *da_log, *db, *dc, *dd, *dinitial_state;
};

// Backward phase 1 (one block per chunk): the chunk's own contribution to the gradient of the state
// entering it, Q[p,k] = sum_i exp(cum[i]) dy[i,p] C[i,k], and the chunk's total decay.
__global__ void ssd_chunk_state_grad_kernel(SsdDev l, float* state_grads, float* decays, const float* dy,
                                            const float* dt, const float* a_log, const float* cm) {
  extern __shared__ float shared[];
  float* cum = shared;
  float* e = shared + l.chunk;
  const SsdChunk v = ssd_chunk_of_block(l);
  ssd_load_chunk_decay(l, v, dt, -expf(a_log[v.h]), e, cum);
  for (int64_t i = threadIdx.x; i < v.len; i += blockDim.x) e[i] = expf(cum[i]);
  __syncthreads();
  if (threadIdx.x == 0) decays[blockIdx.x] = expf(cum[v.len - 1]);
  float* q = state_grads + static_cast<int64_t>(blockIdx.x) * l.p * l.n;
  for (int64_t idx = threadIdx.x; idx < l.p * l.n; idx += blockDim.x) {
    const int64_t p = idx / l.n, k = idx % l.n;
    float acc = 0.0f;
    for (int64_t i = 0; i < v.len; ++i) acc += e[i] * dy[l.xi(v.b, v.t0 + i, v.h) + p] * cm[l.bci(v.b, v.t0 + i, v.g) + k];
    q[idx] = acc;
  }
}

// Backward phase 2 (one block per (b, h)): the reverse pass over chunks. Replaces each chunk's Q
// by the gradient of the state LEAVING that chunk (dfinal_state for the last one); the gradient of
// the state entering chunk c is decay(c) * leaving(c) + Q(c), which leaves chunk 0 as dinitial_state.
__global__ void ssd_state_grad_pass_kernel(SsdDev l, float* state_grads, const float* decays,
                                           const float* dfinal_state, float* dinitial_state) {
  const int64_t b = blockIdx.x / l.heads, h = blockIdx.x % l.heads, pn = l.p * l.n;
  const float* decay = decays + static_cast<int64_t>(blockIdx.x) * l.chunks;
  float* grads = state_grads + static_cast<int64_t>(blockIdx.x) * l.chunks * pn;
  for (int64_t idx = threadIdx.x; idx < pn; idx += blockDim.x) {
    float carry = dfinal_state ? dfinal_state[l.fi(b, h) + idx] : 0.0f;
    for (int64_t c = l.chunks - 1; c >= 0; --c) {
      const float q = grads[c * pn + idx];
      grads[c * pn + idx] = carry;
      carry = decay[c] * carry + q;
    }
    if (dinitial_state) dinitial_state[l.fi(b, h) + idx] = carry;
  }
}

// Backward phase 3 (one block per chunk): every other gradient of the chunk, given the gradient of
// the state leaving it (dh) and the state entering it (h0).
__global__ void ssd_chunk_backward_kernel(SsdDev l, SsdGrads gr, const float* dy, const float* x, const float* dt_raw,
                                          const float* dt_bias, const float* a_log, const float* bm, const float* cm,
                                          const float* d, const float* dt, const float* chunk_states,
                                          const float* state_grads, float* cb_scratch, float* ds_scratch,
                                          float* fs_scratch, float* uv_scratch) {
  extern __shared__ float shared[];
  __shared__ double reduce[32];
  __shared__ float tiles[kTileFloats];
  const int64_t L = l.chunk;
  float* cum = shared;
  float* dts = shared + L;
  float* dcum = shared + 2 * L;
  float* ddt = shared + 3 * L;
  float* vv = shared + 4 * L;
  const SsdChunk v = ssd_chunk_of_block(l);
  const int64_t b = v.b, h = v.h, g = v.g, t0 = v.t0, len = v.len;
  const int64_t pn = l.p * l.n;
  const float A = -expf(a_log[h]);
  const float D = d ? d[h] : 0.0f;
  float* CB = cb_scratch + static_cast<int64_t>(blockIdx.x) * L * L;
  float* DS = ds_scratch + static_cast<int64_t>(blockIdx.x) * L * L;
  float* FS = fs_scratch + static_cast<int64_t>(blockIdx.x) * L * L;  // DS with the decay
  float* U = uv_scratch + static_cast<int64_t>(blockIdx.x) * 2 * L * l.p;  // U[s,p] = (B dh^T)[s, p]
  float* V = U + L * l.p;                                                  // V[i,p] = (C h0^T)[i, p]
  const float* dh = state_grads + static_cast<int64_t>(blockIdx.x) * pn;
  const float* h0 = chunk_states + l.si(b, v.c, h);
  auto x_at = [&](int64_t i) { return x + l.xi(b, t0 + i, h); };
  auto dy_at = [&](int64_t i) { return dy + l.xi(b, t0 + i, h); };
  auto b_at = [&](int64_t i) { return bm + l.bci(b, t0 + i, g); };
  auto c_at = [&](int64_t i) { return cm + l.bci(b, t0 + i, g); };
  ssd_load_chunk_decay(l, v, dt, A, dts, cum);
  const int64_t bc_stride = l.groups * l.n, xy_stride = l.heads * l.p;
  block_gemm_abt(CB, L, c_at(0), bc_stride, b_at(0), bc_stride, len, len, l.n, true, tiles);
  block_gemm_abt(DS, L, dy_at(0), xy_stride, x_at(0), xy_stride, len, len, l.p, true, tiles);
  block_gemm_abt(U, l.p, b_at(0), bc_stride, dh, l.n, len, l.p, l.n, false, tiles);
  block_gemm_abt(V, l.p, c_at(0), bc_stride, h0, l.n, len, l.p, l.n, false, tiles);
  __syncthreads();
  // CB becomes E = CB * exp(cum[i] - cum[s]); FS = DS * exp(cum[i] - cum[s]); DS stays as is
  for (int64_t idx = threadIdx.x; idx < len * len; idx += blockDim.x) {
    const int64_t i = idx / len, s = idx % len;
    if (s <= i) {
      const float decay = expf(cum[i] - cum[s]);
      CB[i * L + s] *= decay;
      FS[i * L + s] = DS[i * L + s] * decay;
    }
  }
  for (int64_t s = threadIdx.x; s < len; s += blockDim.x) {
    const float* xs = x_at(s);
    float val = 0.0f;
    for (int64_t p = 0; p < l.p; ++p) val += xs[p] * U[s * l.p + p];
    vv[s] = val;
  }
  __syncthreads();
  const float last = cum[len - 1];
  const float e_last = expf(last);
  // dx (owned by this block)
  for (int64_t idx = threadIdx.x; idx < len * l.p; idx += blockDim.x) {
    const int64_t s = idx / l.p, p = idx % l.p;
    float intra = 0.0f;
    for (int64_t i = s; i < len; ++i) intra += CB[i * L + s] * dy_at(i)[p];
    gr.dx[l.xi(b, t0 + s, h) + p] = D * dy_at(s)[p] + dts[s] * intra + expf(last - cum[s]) * dts[s] * U[s * l.p + p];
  }
  // dC (shared by the group's heads)
  for (int64_t idx = threadIdx.x; idx < len * l.n; idx += blockDim.x) {
    const int64_t i = idx / l.n, k = idx % l.n;
    const float* dyi = dy_at(i);
    float inter = 0.0f, intra = 0.0f;
    for (int64_t p = 0; p < l.p; ++p) inter += dyi[p] * h0[p * l.n + k];
    for (int64_t s = 0; s <= i; ++s) intra += FS[i * L + s] * dts[s] * b_at(s)[k];
    atomicAdd(gr.dc + l.bci(b, t0 + i, g) + k, expf(cum[i]) * inter + intra);
  }
  // dB
  for (int64_t idx = threadIdx.x; idx < len * l.n; idx += blockDim.x) {
    const int64_t s = idx / l.n, k = idx % l.n;
    float intra = 0.0f, state = 0.0f;
    for (int64_t i = s; i < len; ++i) intra += FS[i * L + s] * c_at(i)[k];
    const float* xs = x_at(s);
    for (int64_t p = 0; p < l.p; ++p) state += xs[p] * dh[p * l.n + k];
    atomicAdd(gr.db + l.bci(b, t0 + s, g) + k, dts[s] * intra + expf(last - cum[s]) * dts[s] * state);
  }
  // per-time scalars: gradient of the cumulative decay and of dt
  double dD_local = 0.0;
  for (int64_t i = threadIdx.x; i < len; i += blockDim.x) {
    const float* dyi = dy_at(i);
    const float* xi = x_at(i);
    float inter = 0.0f, dyx = 0.0f;
    for (int64_t p = 0; p < l.p; ++p) {
      inter += dyi[p] * V[i * l.p + p];
      dyx += dyi[p] * xi[p];
    }
    dD_local += dyx;
    float dcum_i = expf(cum[i]) * inter, ddt_i = 0.0f;
    for (int64_t s = 0; s <= i; ++s) dcum_i += DS[i * L + s] * CB[i * L + s] * dts[s];
    for (int64_t i2 = i; i2 < len; ++i2) {
      const float q = DS[i2 * L + i] * CB[i2 * L + i];
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
  const double dD_total = block_sum(dD_local, reduce);
  if (threadIdx.x == 0) {
    float extra = e_last * static_cast<float>(hh);
    for (int64_t s = 0; s < len; ++s) extra += expf(last - cum[s]) * dts[s] * vv[s];
    dcum[len - 1] += extra;
    float da = 0.0f;
    double dA_acc = 0.0, ddt_bias_acc = 0.0;
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
  finish_op("cuda conv1d_forward", a.y.name.c_str());
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
  op_phase(*state_, op, "dx");
  if (a.dw.defined() || a.dbias.defined()) {
    accumulate_columns(*state_, bsz * t_len, c_len * (k + 1), ConvDwTerm{g, a.x.data, t_len, c_len, k},
                       ConvDwSink{opt_mut(a.dw), opt_mut(a.dbias), c_len, k}, op);
  }
  finish_op(op, "dw");
}

void CudaBackend::conv1d_step(const Conv1dStep& a) {
  const int64_t bsz = a.x.size(0), c_len = a.x.size(1), k = a.w.size(1);
  if (bsz * c_len == 0) return;
  conv1d_step_kernel<<<grid_for(bsz * c_len), kThreads, 0, state_->stream>>>(a.y.data, a.state.data, a.x.data,
                                                                             a.w.data, opt(a.bias), bsz, c_len, k,
                                                                             a.silu);
  finish_op("cuda conv1d_step", a.y.name.c_str());
}

void CudaBackend::ssd_forward(const SsdFwd& a) {
  const char* op = "cuda ssd_forward";
  const SsdDev l = ssd_dims(a.x, a.b, a.params);
  if (l.t_len == 0 || l.bsz * l.heads == 0) return;
  const int64_t heads_total = l.bsz * l.heads, blocks = heads_total * l.chunks;
  float* coef = state_->scratch_as<float>(2, blocks * l.chunk * l.chunk, op);
  float* state_term = state_->scratch_as<float>(1, blocks * l.chunk * l.p, op);
  float* decays = state_->scratch_as<float>(4, blocks, op);
  const std::size_t shared = static_cast<std::size_t>(2 * l.chunk) * sizeof(float);
  cudaStream_t stream = state_->stream;
  ssd_dt_kernel<<<grid_for(l.bsz * l.t_len * l.heads), kThreads, 0, stream>>>(l, a.dt.data, a.dt_raw.data,
                                                                              a.dt_bias.data);
  ssd_chunk_state_kernel<<<static_cast<unsigned>(blocks), kThreads, shared, stream>>>(
      l, a.chunk_states.data, opt_mut(a.final_state), decays, a.x.data, a.dt.data, a.a_log.data, a.b.data);
  op_phase(*state_, op, "chunk states");
  ssd_state_pass_kernel<<<static_cast<unsigned>(heads_total), kThreads, 0, stream>>>(
      l, a.chunk_states.data, opt_mut(a.final_state), decays, opt(a.initial_state));
  op_phase(*state_, op, "state pass");
  ssd_chunk_output_kernel<<<static_cast<unsigned>(blocks), kThreads, shared, stream>>>(
      l, a.y.data, a.chunk_states.data, a.x.data, a.dt.data, a.a_log.data, a.b.data, a.c.data, opt(a.d), coef,
      state_term);
  finish_op(op, "chunk outputs");
}

void CudaBackend::ssd_backward(const SsdBwd& a) {
  const char* op = "cuda ssd_backward";
  const SsdDev l = ssd_dims(a.x, a.b, a.params);
  if (l.t_len == 0 || l.bsz * l.heads == 0) return;
  const int64_t heads_total = l.bsz * l.heads, blocks = heads_total * l.chunks;
  float* cb = state_->scratch_as<float>(2, blocks * l.chunk * l.chunk, op);
  float* ds = state_->scratch_as<float>(3, blocks * l.chunk * l.chunk, op);
  float* state_grads = state_->scratch_as<float>(4, blocks * l.p * l.n, op);
  float* decays = state_->scratch_as<float>(5, blocks, op);
  float* fs = state_->scratch_as<float>(0, blocks * l.chunk * l.chunk, op);
  float* uv = state_->scratch_as<float>(1, blocks * 2 * l.chunk * l.p, op);
  cudaStream_t stream = state_->stream;
  STRATA_CUDA_CHECK(cudaMemsetAsync(a.db.data, 0, a.db.numel() * sizeof(float), stream), op);
  STRATA_CUDA_CHECK(cudaMemsetAsync(a.dc.data, 0, a.dc.numel() * sizeof(float), stream), op);
  SsdGrads gr{a.dx.data, a.ddt_raw.data, a.ddt_bias.data, a.da_log.data, a.db.data, a.dc.data, opt_mut(a.dd),
              opt_mut(a.dinitial_state)};
  const std::size_t shared2 = static_cast<std::size_t>(2 * l.chunk) * sizeof(float);
  const std::size_t shared5 = static_cast<std::size_t>(5 * l.chunk) * sizeof(float);
  ssd_chunk_state_grad_kernel<<<static_cast<unsigned>(blocks), kThreads, shared2, stream>>>(
      l, state_grads, decays, a.dy.data, a.dt.data, a.a_log.data, a.c.data);
  op_phase(*state_, op, "chunk state grads");
  ssd_state_grad_pass_kernel<<<static_cast<unsigned>(heads_total), kThreads, 0, stream>>>(
      l, state_grads, decays, opt(a.dfinal_state), opt_mut(a.dinitial_state));
  op_phase(*state_, op, "state grad pass");
  ssd_chunk_backward_kernel<<<static_cast<unsigned>(blocks), kThreads, shared5, stream>>>(
      l, gr, a.dy.data, a.x.data, a.dt_raw.data, a.dt_bias.data, a.a_log.data, a.b.data, a.c.data, opt(a.d),
      a.dt.data, a.chunk_states.data, state_grads, cb, ds, fs, uv);
  finish_op(op, "chunk grads");
}

void CudaBackend::ssd_step(const SsdStep& a) {
  SsdDev l{a.x.size(0), 1, a.x.size(1), a.x.size(2), a.b.size(1), a.b.size(2), 1, 1,
           a.params.dt_limit, a.params.dt_min, a.params.dt_max};
  const int64_t n = l.bsz * l.heads * l.p;
  if (n == 0) return;
  ssd_step_kernel<<<grid_for(n), kThreads, 0, state_->stream>>>(l, a.y.data, a.state.data, a.x.data, a.dt_raw.data,
                                                                a.dt_bias.data, a.a_log.data, a.b.data, a.c.data,
                                                                opt(a.d));
  finish_op("cuda ssd_step", a.y.name.c_str());
}

}  // namespace strata
