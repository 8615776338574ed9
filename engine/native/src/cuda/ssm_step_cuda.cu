// CUDA kernels of Mamba-2's single-token decode step: the depthwise causal conv1d step (+ fused SiLU)
// and the SSD recurrent step, both updating their state in place. Decode is bound by reading and
// writing the SSD state (B,H,P,N fp32, e.g. 1 MB per sequence and layer at H32 P64 N128), so the SSD
// step reads every state row once and writes it once, coalesced: one warp per state row, the row's N
// values spread over the lanes as float4 (scalar when N % 4 != 0 or a pointer is not 16-byte
// aligned), several rows per warp in flight, dt / decay / D and the y = h C + D x reduction fused.
// Formulas follow cpu/ssd_cpu.cpp and cpu/conv1d_cpu.cpp (ops/ssd.h, ops/conv1d.h state them).
// This file is not the chunked scan (ssd_cuda.cu) or the conv over a whole sequence (conv1d_cuda.cu) nor the
// projections, gate and norm around them.
//
// Shape legend: B batch, C conv channels, K conv width, H heads, P head dim, N state size,
//               G groups (H % G == 0).
#include <algorithm>
#include <cstdint>

#include "../ops/conv1d.h"
#include "../ops/ssd.h"
#include "cuda_common.cuh"

namespace strata {
namespace {

// y[b,c] = act(bias[c] + sum_{j<K-1} w[c,j] state[b,j,c] + w[c,K-1] x[b,c]); then the state shifts
// one token (state[b,j] = state[b,j+1], state[b,K-2] = x[b]). One thread per (b, c): coalesced over c.
__global__ void conv1d_step_kernel(float* y,            // (B,C)
                                   float* state,        // (B,K-1,C) in/out
                                   const float* x,      // (B,C)
                                   const float* w,      // (C,K)
                                   const float* bias,   // (C) or null
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

struct SsdStepDev {
  int64_t heads, p, groups, n;
  bool dt_limit;
  float dt_min, dt_max;
};

// Rows of the state per warp kept in flight, warps per block, rows (p) per block.
constexpr int kStepRowsPerWarp = 4;
constexpr int kStepWarps = 8;
constexpr int kStepRowsPerBlock = kStepRowsPerWarp * kStepWarps;

// Per (b, h): dt = clamp(softplus(dt_raw + dt_bias)), decay = exp(dt * -exp(A_log)); per row p:
// h[p,:] = decay h[p,:] + dt x[p] B[:],  y[p] = h[p,:] . C[:] + D x[p].
// Block (blockIdx.x = b * H + h, blockIdx.y = slice of kStepRowsPerBlock rows); warp w owns rows
// p0 + w + kStepWarps r (r < kStepRowsPerWarp); lane l owns the columns l, l + 32, ... of N, in float4
// units when kVec (N % 4 == 0, 16-byte aligned state, B and C).
template <bool kVec>
__global__ void __launch_bounds__(kStepWarps * 32) ssd_step_kernel(
    SsdStepDev l,
    float* __restrict__ y,             // (B,H,P)
    float* __restrict__ state,         // (B,H,P,N) in/out
    const float* __restrict__ x,       // (B,H,P)
    const float* __restrict__ dt_raw,  // (B,H)
    const float* __restrict__ dt_bias, // (H)
    const float* __restrict__ a_log,   // (H)
    const float* __restrict__ bm,      // (B,G,N)
    const float* __restrict__ cm,      // (B,G,N)
    const float* __restrict__ d) {     // (H) or null
  const int64_t bh = blockIdx.x, b = bh / l.heads, h = bh % l.heads, g = h / (l.heads / l.groups);
  float dtv = dev_softplus(dt_raw[bh] + dt_bias[h]);
  if (l.dt_limit) dtv = fminf(fmaxf(dtv, l.dt_min), l.dt_max);
  const float decay = expf(dtv * -expf(a_log[h]));
  const float D = d ? d[h] : 0.0f;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int64_t p0 = static_cast<int64_t>(blockIdx.y) * kStepRowsPerBlock + warp;
  const float* bv = bm + (b * l.groups + g) * l.n;
  const float* cv = cm + (b * l.groups + g) * l.n;
  float* rows = state + bh * l.p * l.n;
  float dtx[kStepRowsPerWarp], acc[kStepRowsPerWarp];
#pragma unroll
  for (int r = 0; r < kStepRowsPerWarp; ++r) {
    const int64_t p = p0 + r * kStepWarps;
    dtx[r] = p < l.p ? dtv * x[bh * l.p + p] : 0.0f;
    acc[r] = 0.0f;
  }
  if constexpr (kVec) {
    const int64_t n4 = l.n / 4;
    const float4* b4 = reinterpret_cast<const float4*>(bv);
    const float4* c4 = reinterpret_cast<const float4*>(cv);
    float4* s4 = reinterpret_cast<float4*>(rows);
    for (int64_t k = lane; k < n4; k += 32) {
      const float4 bk = b4[k], ck = c4[k];
      float4 s[kStepRowsPerWarp] = {};
#pragma unroll
      for (int r = 0; r < kStepRowsPerWarp; ++r) {
        const int64_t p = p0 + r * kStepWarps;
        if (p < l.p) s[r] = s4[p * n4 + k];
      }
#pragma unroll
      for (int r = 0; r < kStepRowsPerWarp; ++r) {
        const int64_t p = p0 + r * kStepWarps;
        if (p >= l.p) continue;
        s[r].x = decay * s[r].x + dtx[r] * bk.x;
        s[r].y = decay * s[r].y + dtx[r] * bk.y;
        s[r].z = decay * s[r].z + dtx[r] * bk.z;
        s[r].w = decay * s[r].w + dtx[r] * bk.w;
        acc[r] += s[r].x * ck.x + s[r].y * ck.y + s[r].z * ck.z + s[r].w * ck.w;
        s4[p * n4 + k] = s[r];
      }
    }
  } else {
    for (int64_t k = lane; k < l.n; k += 32) {
      const float bk = bv[k], ck = cv[k];
#pragma unroll
      for (int r = 0; r < kStepRowsPerWarp; ++r) {
        const int64_t p = p0 + r * kStepWarps;
        if (p >= l.p) continue;
        const float s = decay * rows[p * l.n + k] + dtx[r] * bk;
        rows[p * l.n + k] = s;
        acc[r] += s * ck;
      }
    }
  }
#pragma unroll
  for (int r = 0; r < kStepRowsPerWarp; ++r) {
    const int64_t p = p0 + r * kStepWarps;
    const float total = warp_sum(acc[r]);
    if (lane == 0 && p < l.p) y[bh * l.p + p] = total + D * x[bh * l.p + p];
  }
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

}  // namespace

void CudaBackend::conv1d_step(const Conv1dStep& a) {
  const int64_t bsz = a.x.size(0), c_len = a.x.size(1), k = a.w.size(1);
  if (bsz * c_len == 0) return;
  conv1d_step_kernel<<<grid_for(bsz * c_len), kThreads, 0, state_->stream>>>(
      a.y.data, a.state.data, a.x.data, a.w.data, a.bias.defined() ? a.bias.data : nullptr, bsz, c_len, k, a.silu);
  finish_op("cuda conv1d_step", a.y.name.c_str());
}

void CudaBackend::ssd_step(const SsdStep& a) {
  const char* op = "cuda ssd_step";
  const SsdStepDev l{a.x.size(1), a.x.size(2), a.b.size(1), a.b.size(2), a.params.dt_limit, a.params.dt_min,
                     a.params.dt_max};
  const int64_t bh = a.x.size(0) * l.heads;
  if (bh * l.p == 0) return;
  STRATA_CHECK(bh <= 0x7fffffff, op, ": ", bh, " (batch, head) pairs exceed one grid dimension");
  const dim3 grid(static_cast<unsigned>(bh), static_cast<unsigned>((l.p + kStepRowsPerBlock - 1) / kStepRowsPerBlock));
  const bool vec = l.n % 4 == 0 && aligned16(a.state.data) && aligned16(a.b.data) && aligned16(a.c.data);
  auto* const kernel = vec ? ssd_step_kernel<true> : ssd_step_kernel<false>;
  kernel<<<grid, kStepWarps * 32, 0, state_->stream>>>(l, a.y.data, a.state.data, a.x.data, a.dt_raw.data,
                                                       a.dt_bias.data, a.a_log.data, a.b.data, a.c.data,
                                                       a.d.defined() ? a.d.data : nullptr);
  finish_op(op, a.y.name.c_str());
}

}  // namespace strata
