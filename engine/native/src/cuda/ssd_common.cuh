// Shared pieces of the CUDA SSD kernels (ssd_cuda.cu: the entry points, state passes and block
// kernels; ssd_batched_cuda.cu: the chunk products as batched cuBLAS products): the
// layer dimensions with their index helpers, the chunk a per-head block works on, the chunk's decay
// loader and the gradient outputs. Device code and small host helpers only; no kernels.
//
// Shape legend: B batch, T time, H heads, P head dim, N state size, G groups (H % G == 0),
//               L chunk length (the last chunk of a sequence may be shorter).
#pragma once

#include "../ops/ssd.h"
#include "cuda_common.cuh"

namespace strata {

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

inline SsdDev ssd_dims(const Tensor& x, const Tensor& bm, const SsdParams& params) {
  SsdDev l{x.size(0), x.size(1), x.size(2), x.size(3), bm.size(2), bm.size(3), params.chunk, 0,
           params.dt_limit, params.dt_min, params.dt_max};
  l.chunks = ssd_num_chunks(l.t_len, l.chunk);
  return l;
}

// The chunk a block works on: blocks are numbered ((b * heads + h) * chunks + c).
struct SsdChunk {
  int64_t b, h, g, c, t0, len;
};

__device__ inline SsdChunk ssd_chunk_of_block(const SsdDev& l) {
  const int64_t bh = blockIdx.x / l.chunks, c = blockIdx.x % l.chunks;
  const int64_t b = bh / l.heads, h = bh % l.heads;
  return {b, h, h / l.hpg(), c, c * l.chunk, min(l.chunk, l.t_len - c * l.chunk)};
}

// dts[i] = dt of the chunk's step i, cum[i] = A * (dt_0 + ... + dt_i). Synchronizes the block.
__device__ inline void ssd_load_chunk_decay(const SsdDev& l, const SsdChunk& v, const float* dt, float A, float* dts,
                                     float* cum) {
  for (int64_t i = threadIdx.x; i < v.len; i += blockDim.x) dts[i] = dt[l.ti(v.b, v.t0 + i, v.h)];
  __syncthreads();
  if (threadIdx.x < 32) {  // a warp scan by 32-step segments
    const int lane = threadIdx.x;
    float carry = 0.0f;
    for (int64_t i0 = 0; i0 < v.len; i0 += 32) {
      const int64_t i = i0 + lane;
      float run = i < v.len ? dts[i] * A : 0.0f;
      for (int o = 1; o < 32; o <<= 1) {
        const float up = __shfl_up_sync(0xffffffffu, run, o);
        if (lane >= o) run += up;
      }
      run += carry;
      if (i < v.len) cum[i] = run;
      carry = __shfl_sync(0xffffffffu, run, 31);
    }
  }
  __syncthreads();
}

struct SsdGrads {
  float *dx, *ddt_raw, *ddt_bias, *da_log, *db, *dc, *dd, *dinitial_state;
};

// The end of a chunk's backward, shared by the block kernels (ssd_cuda.cu) and the batched glue
// (ssd_batched_cuda.cu). With the per-time gradients of the cumulative decay (dcum) and the direct dt
// terms (ddt) complete in shared memory, it adds the decay's share to ddt through the reverse
// running sum da[r] = dcum[r] + ... + dcum[len - 1] (+ extra at r = len - 1, the terms of the state
// leaving the chunk: sum_s wdt[s] vv[s] + exp(last) dh . h0), ddt[r] += A da[r]; writes the raw dt's
// gradient (through the softplus and the dt limit) and returns to every thread the chunk's parts of
// the a_log and dt_bias gradients. Warp 0 scans by 32-step segments from the end. Call from all
// threads of the block; synchronizes. `reduce` holds 32 doubles.
struct SsdChunkScalarGrads {
  double da_log, dt_bias;
};
__device__ inline SsdChunkScalarGrads ssd_chunk_dt_grads(const SsdDev& l, const SsdChunk& v, float A, float e_last,
                                                         double hh_dot,
                                                         const float* wdt,     // (len) exp(last - cum[s]) dt[s]
                                                         const float* vv,      // (len) x[s] . U[s]
                                                         const float* dts,     // (len) dt
                                                         const float* dcum,    // (len)
                                                         float* ddt,           // (len) in: direct terms; out: total
                                                         const float* dt_raw,  // (B, T, H)
                                                         const float* dt_bias,  // (H)
                                                         float* ddt_raw,        // (B, T, H) out: this chunk's rows
                                                         double* reduce) {
  __shared__ double dA_total;
  if (threadIdx.x < 32) {
    const int lane = threadIdx.x;
    float extra = 0.0f;
    for (int64_t s = lane; s < v.len; s += 32) extra += wdt[s] * vv[s];
    extra = warp_sum(extra) + e_last * static_cast<float>(hh_dot);
    float carry = 0.0f;
    double dA_acc = 0.0;
    for (int64_t end = v.len; end > 0; end -= 32) {
      const int64_t r = end - 1 - lane;  // lane 0 takes the segment's last step
      float da = r >= 0 ? dcum[r] + (r == v.len - 1 ? extra : 0.0f) : 0.0f;
      for (int o = 1; o < 32; o <<= 1) {
        const float up = __shfl_up_sync(0xffffffffu, da, o);
        if (lane >= o) da += up;
      }
      da += carry;
      if (r >= 0) {
        ddt[r] += da * A;
        dA_acc += static_cast<double>(da) * dts[r];
      }
      carry = __shfl_sync(0xffffffffu, da, 31);
    }
    dA_acc = warp_sum(dA_acc);
    if (lane == 0) dA_total = dA_acc;
  }
  __syncthreads();
  double ddt_bias_local = 0.0;
  for (int64_t r = threadIdx.x; r < v.len; r += blockDim.x) {
    const int64_t idx = l.ti(v.b, v.t0 + r, v.h);
    bool passes = true;
    l.dt_value(dt_raw[idx], dt_bias[v.h], &passes);
    const float g_raw = passes ? ddt[r] * dev_sigmoid(dt_raw[idx] + dt_bias[v.h]) : 0.0f;
    ddt_raw[idx] = g_raw;
    ddt_bias_local += g_raw;
  }
  const double ddt_bias_total = block_sum(ddt_bias_local, reduce);  // synchronizes: dA_total is visible
  return {dA_total * A, ddt_bias_total};
}

struct CudaBackendState;
// ssd_batched_cuda.cu: whether the batched paths take this shape (every chunk full, L 64 or 128);
// the forward's chunk decays and chunk states before the state pass, its chunk outputs after it; the
// backward's chunk decays and chunk state gradients before the state-gradient pass, its chunk
// gradients after it (partials as ssd_param_grads_kernel reads them).
bool ssd_batched_fits(const SsdDev& l);
void ssd_forward_batched_states(CudaBackendState& s, const SsdDev& l, const SsdFwd& a, float* decays, bool exact_fp32,
                                const char* op);
void ssd_forward_batched(CudaBackendState& s, const SsdDev& l, const SsdFwd& a, bool exact_fp32, const char* op);
void ssd_backward_batched_states(CudaBackendState& s, const SsdDev& l, const SsdBwd& a, float* state_grads,
                                 float* decays, bool exact_fp32, const char* op);
void ssd_backward_batched(CudaBackendState& s, const SsdDev& l, const SsdBwd& a, const SsdGrads& gr,
                          const float* state_grads, double* partials, bool exact_fp32, const char* op);

}  // namespace strata
