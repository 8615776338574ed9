// CUDA kernels of causal GQA attention (optional sliding window), RoPE and the KV-cache decode step.
// Two paths for training-shaped attention:
//   - fp32 kernels (fp32 GEMM mode, and any head dim up to 256): one warp per query row streams the
//     visible keys with an online softmax (running max and sum), so no T x T matrix exists; the
//     row's log-sum-exp is saved. The backward recomputes each probability from it: one warp per
//     query row for dq, one warp per key row for dk / dv (looping over the query heads of its KV
//     group), so every output row has one writer.
//   - tensor-core flash attention (bf16 / fp8 GEMM modes, head dims 64 and 128): namespace flash
//     below, bf16 operands with fp32 accumulation on mma.sync, FA2-style backward.
// Decode: split-KV (flash-decoding) partial softmaxes plus a combine pass; for head dims 64 / 128 all
// query heads of a KV group share one read of the cache: a warp per (sequence, KV head, split) for
// groups up to 4, a block streaming shared-memory tiles (namespace decode) for groups of 5..8.
// Shapes (legend of ops/attention.h): q, out, dq (B,T,H,P); k, v, dk, dv (B,T,Hkv,P); lse (B,H,T);
// k_cache, v_cache (B,S,Hkv,P). Formulas follow cpu/attention_cpu.cpp. Not here: the QKV / output projections (gemm_cuda.cu).
#include <cuda_bf16.h>

#include <cmath>
#include <cstdlib>
#include <string>

#include "../ops/attention.h"
#include "cuda_common.cuh"

namespace strata {
namespace {

constexpr int kMaxPerLane = 8;  // head dim <= 256
constexpr int kWarpsPerBlock = 4;

struct AttnDev {
  int64_t b, t, h, hkv, p;
  float scale;
  int64_t window;
  __device__ int64_t qi(int64_t bb, int64_t tt, int64_t hh) const { return ((bb * t + tt) * h + hh) * p; }
  __device__ int64_t ki(int64_t bb, int64_t tt, int64_t kh) const { return ((bb * t + tt) * hkv + kh) * p; }
  __device__ int64_t li(int64_t bb, int64_t hh, int64_t tt) const { return (bb * h + hh) * t + tt; }
  __device__ int64_t first_key(int64_t tt) const { const int64_t first = tt - window + 1;
    return window > 0 && first > 0 ? first : 0; }
  __device__ int64_t last_query(int64_t s) const { const int64_t last = s + window - 1;
    return window > 0 && last < t - 1 ? last : t - 1; }
};

__device__ __forceinline__ void load_row(float (&reg)[kMaxPerLane], const float* row, int64_t p, int lane) {
#pragma unroll
  for (int j = 0; j < kMaxPerLane; ++j) {
    const int64_t d = lane + 32 * j;
    reg[j] = d < p ? row[d] : 0.0f;
  }
}
__device__ __forceinline__ float row_dot(const float (&reg)[kMaxPerLane], const float* row, int64_t p, int lane) {
  float partial = 0.0f;
#pragma unroll
  for (int j = 0; j < kMaxPerLane; ++j) {
    const int64_t d = lane + 32 * j;
    if (d < p) partial += reg[j] * row[d];
  }
  return warp_sum(partial);
}

__global__ void attention_forward_kernel(AttnDev l, float* out, float* lse, const float* q, const float* k,
                                         const float* v) {
  const int lane = threadIdx.x & 31;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + (threadIdx.x >> 5);
  if (row >= l.b * l.h * l.t) return;
  const int64_t t = row % l.t, hh = (row / l.t) % l.h, bb = row / (l.t * l.h);
  const int64_t kh = hh / (l.h / l.hkv);
  float qr[kMaxPerLane], acc[kMaxPerLane];
  load_row(qr, q + l.qi(bb, t, hh), l.p, lane);
#pragma unroll
  for (int j = 0; j < kMaxPerLane; ++j) acc[j] = 0.0f;
  float running_max = -INFINITY, sum = 0.0f;
  for (int64_t s = l.first_key(t); s <= t; ++s) {
    const float score = l.scale * row_dot(qr, k + l.ki(bb, s, kh), l.p, lane);
    const float new_max = fmaxf(running_max, score);
    const float correction = expf(running_max - new_max), pr = expf(score - new_max);
    sum = sum * correction + pr;
    const float* vr = v + l.ki(bb, s, kh);
#pragma unroll
    for (int j = 0; j < kMaxPerLane; ++j) {
      const int64_t d = lane + 32 * j;
      if (d < l.p) acc[j] = acc[j] * correction + pr * vr[d];
    }
    running_max = new_max;
  }
  float* o = out + l.qi(bb, t, hh);
  const float inv = 1.0f / sum;
#pragma unroll
  for (int j = 0; j < kMaxPerLane; ++j) {
    const int64_t d = lane + 32 * j;
    if (d < l.p) o[d] = acc[j] * inv;
  }
  if (lane == 0) lse[l.li(bb, hh, t)] = running_max + logf(sum);
}

// delta[b,h,t] = dout . out
__global__ void attention_delta_kernel(AttnDev l, float* delta, const float* dout, const float* out) {
  const int lane = threadIdx.x & 31;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + (threadIdx.x >> 5);
  if (row >= l.b * l.h * l.t) return;
  const int64_t t = row % l.t, hh = (row / l.t) % l.h, bb = row / (l.t * l.h);
  float reg[kMaxPerLane];
  load_row(reg, dout + l.qi(bb, t, hh), l.p, lane);
  const float value = row_dot(reg, out + l.qi(bb, t, hh), l.p, lane);
  if (lane == 0) delta[l.li(bb, hh, t)] = value;
}

__global__ void attention_dq_kernel(AttnDev l, float* dq, const float* q, const float* k, const float* v,
                                    const float* dout, const float* lse, const float* delta) {
  const int lane = threadIdx.x & 31;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + (threadIdx.x >> 5);
  if (row >= l.b * l.h * l.t) return;
  const int64_t t = row % l.t, hh = (row / l.t) % l.h, bb = row / (l.t * l.h);
  const int64_t kh = hh / (l.h / l.hkv);
  float qr[kMaxPerLane], dor[kMaxPerLane], acc[kMaxPerLane];
  load_row(qr, q + l.qi(bb, t, hh), l.p, lane);
  load_row(dor, dout + l.qi(bb, t, hh), l.p, lane);
#pragma unroll
  for (int j = 0; j < kMaxPerLane; ++j) acc[j] = 0.0f;
  const float row_lse = lse[l.li(bb, hh, t)], row_delta = delta[l.li(bb, hh, t)];
  for (int64_t s = l.first_key(t); s <= t; ++s) {
    const float* kr = k + l.ki(bb, s, kh);
    const float pr = expf(l.scale * row_dot(qr, kr, l.p, lane) - row_lse);
    const float ds = pr * (row_dot(dor, v + l.ki(bb, s, kh), l.p, lane) - row_delta) * l.scale;
#pragma unroll
    for (int j = 0; j < kMaxPerLane; ++j) {
      const int64_t d = lane + 32 * j;
      if (d < l.p) acc[j] += ds * kr[d];
    }
  }
  float* o = dq + l.qi(bb, t, hh);
#pragma unroll
  for (int j = 0; j < kMaxPerLane; ++j) {
    const int64_t d = lane + 32 * j;
    if (d < l.p) o[d] = acc[j];
  }
}

__global__ void attention_dkdv_kernel(AttnDev l, float* dk, float* dv, const float* q, const float* k, const float* v,
                                      const float* dout, const float* lse, const float* delta) {
  const int lane = threadIdx.x & 31;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + (threadIdx.x >> 5);
  if (row >= l.b * l.hkv * l.t) return;
  const int64_t s = row % l.t, kh = (row / l.t) % l.hkv, bb = row / (l.t * l.hkv);
  const int64_t group = l.h / l.hkv;
  float kr[kMaxPerLane], vr[kMaxPerLane], dk_acc[kMaxPerLane], dv_acc[kMaxPerLane];
  load_row(kr, k + l.ki(bb, s, kh), l.p, lane);
  load_row(vr, v + l.ki(bb, s, kh), l.p, lane);
#pragma unroll
  for (int j = 0; j < kMaxPerLane; ++j) dk_acc[j] = dv_acc[j] = 0.0f;
  const int64_t last = l.last_query(s);
  for (int64_t hh = kh * group; hh < (kh + 1) * group; ++hh) {
    for (int64_t t = s; t <= last; ++t) {
      const float* qr = q + l.qi(bb, t, hh);
      const float* dor = dout + l.qi(bb, t, hh);
      const float pr = expf(l.scale * row_dot(kr, qr, l.p, lane) - lse[l.li(bb, hh, t)]);
      const float ds = pr * (row_dot(vr, dor, l.p, lane) - delta[l.li(bb, hh, t)]) * l.scale;
#pragma unroll
      for (int j = 0; j < kMaxPerLane; ++j) {
        const int64_t d = lane + 32 * j;
        if (d < l.p) {
          dv_acc[j] += pr * dor[d];
          dk_acc[j] += ds * qr[d];
        }
      }
    }
  }
#pragma unroll
  for (int j = 0; j < kMaxPerLane; ++j) {
    const int64_t d = lane + 32 * j;
    if (d < l.p) {
      dk[l.ki(bb, s, kh) + d] = dk_acc[j];
      dv[l.ki(bb, s, kh) + d] = dv_acc[j];
    }
  }
}

__global__ void kv_cache_write_kernel(float* k_cache, float* v_cache, const float* k_new, const float* v_new,
                                      int64_t bsz, int64_t cap, int64_t hkv, int64_t p, int64_t position) {
  STRATA_GRID_STRIDE(i, bsz * hkv * p) {
    const int64_t d = i % p, kh = (i / p) % hkv, b = i / (p * hkv);
    const int64_t dst = ((b * cap + position) * hkv + kh) * p + d;
    k_cache[dst] = k_new[i];
    v_cache[dst] = v_new[i];
  }
}

// Split-KV decode (flash-decoding): warp (row, split) runs the online softmax over its share of the
// cached positions [begin + split * span, ...] and leaves (max, sum) and the unnormalized output;
// attention_decode_combine_kernel merges the splits of a row. Splitting keeps thousands of warps
// busy at long contexts, where one warp per (sequence, head) would walk the whole cache alone.
__global__ void attention_decode_split_kernel(float* part_stats, float* part_acc, const float* q, const float* k_cache,
                                              const float* v_cache, int64_t bsz, int64_t heads, int64_t hkv,
                                              int64_t p, int64_t cap, int64_t begin, int64_t position, int64_t splits,
                                              int64_t span, float scale) {
  const int lane = threadIdx.x & 31;
  const int64_t item = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + (threadIdx.x >> 5);
  if (item >= bsz * heads * splits) return;
  const int64_t row = item / splits, split = item % splits;
  const int64_t hh = row % heads, b = row / heads, kh = hh / (heads / hkv);
  float qr[kMaxPerLane], acc[kMaxPerLane];
  load_row(qr, q + row * p, p, lane);
#pragma unroll
  for (int j = 0; j < kMaxPerLane; ++j) acc[j] = 0.0f;
  float running_max = -INFINITY, sum = 0.0f;
  const int64_t first = begin + split * span, last = min(position, first + span - 1);
  for (int64_t s = first; s <= last; ++s) {
    const int64_t base = ((b * cap + s) * hkv + kh) * p;
    const float score = scale * row_dot(qr, k_cache + base, p, lane);
    const float new_max = fmaxf(running_max, score);
    const float correction = expf(running_max - new_max), pr = expf(score - new_max);
    sum = sum * correction + pr;
#pragma unroll
    for (int j = 0; j < kMaxPerLane; ++j) {
      const int64_t d = lane + 32 * j;
      if (d < p) acc[j] = acc[j] * correction + pr * v_cache[base + d];
    }
    running_max = new_max;
  }
  if (lane == 0) {
    part_stats[item * 2] = running_max;
    part_stats[item * 2 + 1] = sum;
  }
#pragma unroll
  for (int j = 0; j < kMaxPerLane; ++j) {
    const int64_t d = lane + 32 * j;
    if (d < p) part_acc[item * p + d] = acc[j];
  }
}

// Split-KV decode with the KV group's query heads together (head dims 64 / 128, groups of at most
// kDecodeMaxGroup heads; G is the group size rounded up to a power of two): warp (b, kv head, split)
// reads each cached K / V row of its share once, float4 per lane (P/4 lanes per row, 32 / (P/4) rows
// side by side; the next tile's rows load while this one computes), and keeps one online softmax
// per query head of the group; kDecodeTile rows per lane between rescalings. The rows side by side
// merge their softmax states at the end. Leaves the same (max, sum, unnormalized output) per
// (row, split) as attention_decode_split_kernel (max in natural-log units).
constexpr int kDecodeMaxGroup = 8;
constexpr int kDecodeTile = 4;
template <int P, int G>
__global__ void attention_decode_group_kernel(float* part_stats, float* part_acc, const float* q, const float* k_cache,
                                              const float* v_cache, int bsz, int heads, int hkv, int64_t cap,
                                              int64_t begin, int64_t position, int splits, int64_t span,
                                              float scale_log2) {
  constexpr int L = P / 4, R = 32 / L;
  const int lane = threadIdx.x & 31, sub = lane / L, col = (lane % L) * 4;
  const int64_t item = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + (threadIdx.x >> 5);
  if (item >= static_cast<int64_t>(bsz) * hkv * splits) return;
  const int split = static_cast<int>(item % splits), kh = static_cast<int>((item / splits) % hkv);
  const int b = static_cast<int>(item / (static_cast<int64_t>(splits) * hkv)), group = heads / hkv;
  float4 qr[G], acc[G];
  float row_max[G], sum[G];
#pragma unroll
  for (int g = 0; g < G; ++g) {
    qr[g] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    if (g < group) {
      qr[g] = *reinterpret_cast<const float4*>(q + (static_cast<int64_t>(b) * heads + kh * group + g) * P + col);
      qr[g].x *= scale_log2, qr[g].y *= scale_log2, qr[g].z *= scale_log2, qr[g].w *= scale_log2;
    }
    acc[g] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    row_max[g] = -INFINITY;
    sum[g] = 0.0f;
  }
  const int64_t first = begin + split * span, last = min(position, first + span - 1);
  const int64_t row_stride = static_cast<int64_t>(hkv) * P;
  const float* kb = k_cache + (static_cast<int64_t>(b) * cap * hkv + kh) * P + col;
  const float* vb = v_cache + (static_cast<int64_t>(b) * cap * hkv + kh) * P + col;
  // K / V rows of the next tile load while this tile computes
  float4 k_next[kDecodeTile], v_next[kDecodeTile];
  auto load = [&](int64_t s0) {
#pragma unroll
    for (int i = 0; i < kDecodeTile; ++i) {
      const int64_t pos = s0 + i * R + sub;
      k_next[i] = v_next[i] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
      if (pos <= last) {
        k_next[i] = __ldcs(reinterpret_cast<const float4*>(kb + pos * row_stride));
        v_next[i] = __ldcs(reinterpret_cast<const float4*>(vb + pos * row_stride));
      }
    }
  };
  load(first);
  for (int64_t s0 = first; s0 <= last; s0 += R * kDecodeTile) {
    float score[kDecodeTile][G];
    float4 kr[kDecodeTile], vr[kDecodeTile];
    bool valid[kDecodeTile];
#pragma unroll
    for (int i = 0; i < kDecodeTile; ++i) kr[i] = k_next[i], vr[i] = v_next[i];
    if (s0 + R * kDecodeTile <= last) load(s0 + R * kDecodeTile);
#pragma unroll
    for (int i = 0; i < kDecodeTile; ++i) {
      valid[i] = s0 + i * R + sub <= last;
#pragma unroll
      for (int g = 0; g < G; ++g)
        score[i][g] = qr[g].x * kr[i].x + qr[g].y * kr[i].y + qr[g].z * kr[i].z + qr[g].w * kr[i].w;
    }
#pragma unroll
    for (int i = 0; i < kDecodeTile; ++i)
#pragma unroll
      for (int g = 0; g < G; ++g)
#pragma unroll
        for (int offset = L / 2; offset > 0; offset >>= 1)
          score[i][g] += __shfl_xor_sync(0xffffffffu, score[i][g], offset);
#pragma unroll
    for (int g = 0; g < G; ++g) {
      if (g >= group) break;
      float top = row_max[g];
#pragma unroll
      for (int i = 0; i < kDecodeTile; ++i)
        if (valid[i]) top = fmaxf(top, score[i][g]);
      const float ref = top == -INFINITY ? 0.0f : top;  // nothing visible yet: stay at zero
      const float correction = exp2f(row_max[g] - ref);
      row_max[g] = top;
      float4 a = acc[g];
      a.x *= correction, a.y *= correction, a.z *= correction, a.w *= correction;
      float add = 0.0f;
#pragma unroll
      for (int i = 0; i < kDecodeTile; ++i) {
        const float pr = valid[i] ? exp2f(score[i][g] - ref) : 0.0f;
        add += pr;
        a.x += pr * vr[i].x, a.y += pr * vr[i].y, a.z += pr * vr[i].z, a.w += pr * vr[i].w;
      }
      sum[g] = sum[g] * correction + add;
      acc[g] = a;
    }
  }
  // merge the R rows side by side (lanes L apart)
#pragma unroll
  for (int offset = L; offset < 32; offset <<= 1) {
#pragma unroll
    for (int g = 0; g < G; ++g) {
      const float other_max = __shfl_xor_sync(0xffffffffu, row_max[g], offset);
      const float other_sum = __shfl_xor_sync(0xffffffffu, sum[g], offset);
      float4 other;
      other.x = __shfl_xor_sync(0xffffffffu, acc[g].x, offset);
      other.y = __shfl_xor_sync(0xffffffffu, acc[g].y, offset);
      other.z = __shfl_xor_sync(0xffffffffu, acc[g].z, offset);
      other.w = __shfl_xor_sync(0xffffffffu, acc[g].w, offset);
      const float top = fmaxf(row_max[g], other_max), ref = top == -INFINITY ? 0.0f : top;
      const float mine = exp2f(row_max[g] - ref), theirs = exp2f(other_max - ref);
      sum[g] = sum[g] * mine + other_sum * theirs;
      acc[g].x = acc[g].x * mine + other.x * theirs, acc[g].y = acc[g].y * mine + other.y * theirs;
      acc[g].z = acc[g].z * mine + other.z * theirs, acc[g].w = acc[g].w * mine + other.w * theirs;
      row_max[g] = top;
    }
  }
  if (sub != 0) return;
#pragma unroll
  for (int g = 0; g < G; ++g) {
    if (g >= group) break;
    const int64_t it = (static_cast<int64_t>(b) * heads + kh * group + g) * splits + split;
    *reinterpret_cast<float4*>(part_acc + it * P + col) = acc[g];
    if (lane == 0) {
      part_stats[it * 2] = row_max[g] * 0.6931471805599453f;  // log2 units -> natural log
      part_stats[it * 2 + 1] = sum[g];
    }
  }
}

// Block per row: out = sum_s acc_s * exp(max_s - M) / sum_s sum_s * exp(max_s - M), M = max_s max_s.
// Threads split the head dims and, when the block is wider than the head, the splits too.
__global__ void attention_decode_combine_kernel(float* out, const float* part_stats, const float* part_acc, int64_t p,
                                                int64_t splits) {
  __shared__ float reduce[32];
  __shared__ float partial[kThreads];
  const int64_t row = blockIdx.x;
  const float* stats = part_stats + row * splits * 2;
  float top = -INFINITY;
  for (int64_t s = threadIdx.x; s < splits; s += blockDim.x) top = fmaxf(top, stats[s * 2]);
  top = block_max(top, reduce);
  float total = 0.0f;
  for (int64_t s = threadIdx.x; s < splits; s += blockDim.x) {
    if (stats[s * 2 + 1] > 0.0f) total += stats[s * 2 + 1] * expf(stats[s * 2] - top);
  }
  total = block_sum(total, reduce);
  const int64_t groups = p < blockDim.x ? blockDim.x / p : 1, used = groups * p;
  for (int64_t d0 = 0; d0 < p; d0 += used) {
    const int64_t d = d0 + threadIdx.x % p, group = threadIdx.x / p;
    float value = 0.0f;
    if (threadIdx.x < used && d < p) {
      for (int64_t s = group; s < splits; s += groups) {
        if (stats[s * 2 + 1] > 0.0f) value += part_acc[(row * splits + s) * p + d] * expf(stats[s * 2] - top);
      }
    }
    partial[threadIdx.x] = value;
    __syncthreads();
    if (threadIdx.x < p && d < p) {
      float whole = 0.0f;
      for (int64_t g = 0; g < groups; ++g) whole += partial[g * p + threadIdx.x];
      out[row * p + d] = whole / total;
    }
    __syncthreads();
  }
}

__global__ void rope_kernel(float* x, int64_t bsz, int64_t t_len, int64_t heads, int64_t p, int64_t rotated,
                            double theta, int64_t position_offset, double sign) {
  const int64_t half = rotated / 2;
  STRATA_GRID_STRIDE(idx, bsz * t_len * heads * half) {
    const int64_t i = idx % half, h = (idx / half) % heads, t = (idx / (half * heads)) % t_len,
                  b = idx / (half * heads * t_len);
    const double pos = static_cast<double>(position_offset + t);
    const double angle = pos * pow(theta, -2.0 * static_cast<double>(i) / static_cast<double>(rotated));
    const float c = static_cast<float>(cos(angle)), s = static_cast<float>(sign * sin(angle));
    float* row = x + ((b * t_len + t) * heads + h) * p;
    const float x1 = row[i], x2 = row[i + half];
    row[i] = x1 * c - x2 * s;
    row[i + half] = x2 * c + x1 * s;
  }
}

// ---------------------------------------------------------------------------------------------
// Tensor-core flash attention (bf16 operands, fp32 accumulation), head dims 64 and 128.
// q, k, v (and dout in the backward) are first converted to bf16 copies in the same (B,T,Hx,P)
// layout; tiles then stream into shared memory with cp.async (two stages), and every product runs
// on mma.sync m16n8k16 with fragments loaded by ldmatrix. Each warp owns 16 rows of its block's
// 64-row tile. Shared-memory rows are padded by 8 bf16 (16 bytes) so ldmatrix is conflict-free.
// Scores live in the log2 domain: x = S * scale * log2(e), probabilities exp2(x - max); the saved
// log-sum-exp is natural-log (the fp32 kernels' convention).
//   forward: block (64 queries, b, h) walks the visible key tiles with an online softmax.
//   backward (FA2): delta = rowsum(dout * out); block (64 keys, b, kv head) walks every query tile
//   of the KV group's heads that sees its keys and accumulates dK, dV; block (64 queries, b, h)
//   recomputes the probabilities once more and accumulates dQ. Every output row has one writer, so
//   results are deterministic (no atomics).
// ---------------------------------------------------------------------------------------------
namespace flash {

using bf16 = __nv_bfloat16;
constexpr int kWarps = 4;
constexpr int kRows = 16 * kWarps;  // rows of a block's own tile (queries or keys)
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

struct Dims {
  int b, t, h, hkv;
  int window;        // 0: full causal
  float scale_log2;  // scale * log2(e)
  float scale;
  // is key `key` visible from query `query`? (query < t is checked separately where it matters)
  __device__ bool visible(int query, int key) const { return key <= query && (window == 0 || query - key < window); }
};

__device__ __forceinline__ uint32_t smem_address(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}
__device__ __forceinline__ void ldsm_x4(uint32_t (&r)[4], const bf16* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_address(p)));
}
__device__ __forceinline__ void ldsm_x4_trans(uint32_t (&r)[4], const bf16* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_address(p)));
}
// c(16x8) += a(16x16, row) b(16x8, col)
__device__ __forceinline__ void mma(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
               "{%0,%1,%2,%3};\n"
               : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
__device__ __forceinline__ uint32_t pack(float lo, float hi) {
  __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&v);
}
// 16-byte global -> shared copy; zero-fills when !valid (src must still be a valid address).
__device__ __forceinline__ void cp_async16(void* dst, const void* src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_address(dst)), "l"(src),
               "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void cp_async4(void* dst, const void* src, bool valid) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(smem_address(dst)), "l"(src),
               "r"(valid ? 4 : 0));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n"); }
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

// Rows [row0, row0 + ROWS) of one head of a (B,T,Hx,D) bf16 tensor into a shared tile (row stride
// D + 8); rows at or beyond t_len are zero. `head` points at (b, t = 0, head); `stride` = Hx * D.
template <int D, int ROWS>
__device__ __forceinline__ void load_tile(bf16* tile, const bf16* head, int64_t stride, int row0, int t_len) {
  constexpr int kChunks = D / 8;
  for (int i = threadIdx.x; i < ROWS * kChunks; i += kWarps * 32) {
    const int r = i / kChunks, c = i % kChunks, t = row0 + r;
    const bool valid = t < t_len;
    cp_async16(tile + r * (D + 8) + c * 8, head + (valid ? t * stride : 0) + c * 8, valid);
  }
}
// ROWS fp32 values of a (B,H,T) row vector (lse or delta) from position row0; zero beyond t_len.
template <int ROWS>
__device__ __forceinline__ void load_vector(float* dst, const float* src, int row0, int t_len) {
  for (int i = threadIdx.x; i < ROWS; i += kWarps * 32) {
    const bool valid = row0 + i < t_len;
    cp_async4(dst + i, src + (valid ? row0 + i : 0), valid);
  }
}

// acc(16 x N) += A(16 x K) B(N x K)^T: A rows at `a`, B rows at `b`, both [row][k] in shared memory.
template <int N, int K>
__device__ __forceinline__ void mma_nt(float (&acc)[N / 8][4], const bf16* a, int lda, const bf16* b, int ldb) {
  const int lane = threadIdx.x & 31;
#pragma unroll
  for (int k0 = 0; k0 < K; k0 += 16) {
    uint32_t af[4];
    ldsm_x4(af, a + (lane % 16) * lda + k0 + (lane / 16) * 8);
#pragma unroll
    for (int n0 = 0; n0 < N; n0 += 16) {
      uint32_t bf[4];
      ldsm_x4(bf, b + (n0 + lane % 8 + (lane / 16) * 8) * ldb + k0 + ((lane / 8) % 2) * 8);
      mma(acc[n0 / 8], af, bf[0], bf[1]);
      mma(acc[n0 / 8 + 1], af, bf[2], bf[3]);
    }
  }
}
// acc(16 x N) += A(16 x K) B(K x N): A as bf16 fragments in registers, B [k][n] in shared memory.
template <int N, int K>
__device__ __forceinline__ void mma_rn(float (&acc)[N / 8][4], const uint32_t (&a)[K / 16][4], const bf16* b, int ldb) {
  const int lane = threadIdx.x & 31;
#pragma unroll
  for (int k0 = 0; k0 < K; k0 += 16) {
#pragma unroll
    for (int n0 = 0; n0 < N; n0 += 16) {
      uint32_t bf[4];
      ldsm_x4_trans(bf, b + (k0 + lane % 8 + ((lane / 8) % 2) * 8) * ldb + n0 + (lane / 16) * 8);
      mma(acc[n0 / 8], a[k0 / 16], bf[0], bf[1]);
      mma(acc[n0 / 8 + 1], a[k0 / 16], bf[2], bf[3]);
    }
  }
}
// The accumulator of a (16 x N) product as the A operand (16 x N, bf16) of the next product.
template <int N>
__device__ __forceinline__ void to_operand(uint32_t (&a)[N / 16][4], const float (&c)[N / 8][4]) {
#pragma unroll
  for (int j = 0; j < N / 16; ++j) {
    a[j][0] = pack(c[2 * j][0], c[2 * j][1]);
    a[j][1] = pack(c[2 * j][2], c[2 * j][3]);
    a[j][2] = pack(c[2 * j + 1][0], c[2 * j + 1][1]);
    a[j][3] = pack(c[2 * j + 1][2], c[2 * j + 1][3]);
  }
}
template <int N, int M>
__device__ __forceinline__ void zero(float (&c)[N][M]) {
#pragma unroll
  for (int i = 0; i < N; ++i)
#pragma unroll
    for (int j = 0; j < M; ++j) c[i][j] = 0.0f;
}
// Accumulator element e of column tile j: row lane/4 (+8 for e >= 2), column j*8 + 2*(lane%4) + (e&1).
__device__ __forceinline__ int acc_row(int e) { return (threadIdx.x & 31) / 4 + (e >= 2 ? 8 : 0); }
__device__ __forceinline__ int acc_col(int j, int e) { return j * 8 + ((threadIdx.x & 31) % 4) * 2 + (e & 1); }
// Writes a warp's (16 x D) accumulator times `factor` as fp32 rows row0 + r (< t_len) of one head.
template <int D>
__device__ __forceinline__ void store_rows(float* head, int64_t stride, int row0, int t_len, const float (&c)[D / 8][4],
                                           float factor_a, float factor_b) {
  const int lane = threadIdx.x & 31;
  const int ra = row0 + lane / 4, rb = ra + 8;
#pragma unroll
  for (int j = 0; j < D / 8; ++j) {
    const int col = j * 8 + (lane % 4) * 2;
    if (ra < t_len) *reinterpret_cast<float2*>(head + ra * stride + col) = make_float2(c[j][0] * factor_a, c[j][1] * factor_a);
    if (rb < t_len) *reinterpret_cast<float2*>(head + rb * stride + col) = make_float2(c[j][2] * factor_b, c[j][3] * factor_b);
  }
}

__global__ void to_bf16_kernel(bf16* dst, const float* src, int64_t n) {
  STRATA_GRID_STRIDE(i, n) dst[i] = __float2bfloat16(src[i]);
}

// delta[b,h,t] = dout . out (fp32), and dout as bf16; one warp per (b, t, h) row.
__global__ void delta_kernel(float* delta, bf16* dout16, const float* dout, const float* out, int64_t rows, int t_len,
                             int heads, int p) {
  const int lane = threadIdx.x & 31;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarps + (threadIdx.x >> 5);
  if (row >= rows) return;
  const int64_t base = row * p;
  float partial = 0.0f;
  for (int d = lane; d < p; d += 32) {
    const float g = dout[base + d];
    partial += g * out[base + d];
    dout16[base + d] = __float2bfloat16(g);
  }
  partial = warp_sum(partial);
  const int64_t hh = row % heads, t = (row / heads) % t_len, bb = row / (heads * t_len);
  if (lane == 0) delta[(bb * heads + hh) * t_len + t] = partial;
}

template <int D>
constexpr int forward_smem_bytes() { return (kRows + 4 * kRows) * (D + 8) * 2; }

// grid (B*H, ceil(T/64)); the tiles with the most keys run first.
template <int D>
__global__ void __launch_bounds__(kWarps * 32) forward_kernel(Dims l, float* out, float* lse, const bf16* q,
                                                              const bf16* k, const bf16* v) {
  constexpr int BN = kRows, LD = D + 8;
  extern __shared__ __align__(16) unsigned char smem[];
  bf16* sq = reinterpret_cast<bf16*>(smem);
  bf16* sk = sq + kRows * LD;  // two stages
  bf16* sv = sk + 2 * BN * LD; // two stages
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int bb = blockIdx.x / l.h, hh = blockIdx.x % l.h, kh = hh / (l.h / l.hkv);
  const int m0 = (gridDim.y - 1 - blockIdx.y) * kRows;
  const int64_t q_stride = static_cast<int64_t>(l.h) * D, kv_stride = static_cast<int64_t>(l.hkv) * D;
  const bf16* qh = q + (static_cast<int64_t>(bb) * l.t * l.h + hh) * D;
  const bf16* kh_base = k + (static_cast<int64_t>(bb) * l.t * l.hkv + kh) * D;
  const bf16* vh_base = v + (static_cast<int64_t>(bb) * l.t * l.hkv + kh) * D;
  const int n_first = (l.window > 0 ? max(0, m0 - l.window + 1) : 0) / BN;
  const int n_last = (min(m0 + kRows, l.t) - 1) / BN;
  load_tile<D, kRows>(sq, qh, q_stride, m0, l.t);
  load_tile<D, BN>(sk, kh_base, kv_stride, n_first * BN, l.t);
  load_tile<D, BN>(sv, vh_base, kv_stride, n_first * BN, l.t);
  cp_async_commit();
  float o[D / 8][4];
  zero(o);
  float row_max[2] = {-INFINITY, -INFINITY}, row_sum[2] = {0.0f, 0.0f};
  const int wrow0 = m0 + warp * 16;
  for (int n = n_first; n <= n_last; ++n) {
    const int stage = (n - n_first) & 1;
    if (n < n_last) {
      load_tile<D, BN>(sk + (stage ^ 1) * BN * LD, kh_base, kv_stride, (n + 1) * BN, l.t);
      load_tile<D, BN>(sv + (stage ^ 1) * BN * LD, vh_base, kv_stride, (n + 1) * BN, l.t);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    const bf16* skt = sk + stage * BN * LD;
    const bf16* svt = sv + stage * BN * LD;
    float s[BN / 8][4];
    zero(s);
    mma_nt<BN, D>(s, sq + warp * 16 * LD, LD, skt, LD);
    const int key0 = n * BN;
    const bool masked = key0 + BN - 1 > wrow0 || (l.window > 0 && wrow0 + 15 - key0 >= l.window);
#pragma unroll
    for (int j = 0; j < BN / 8; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        float x = s[j][e] * l.scale_log2;
        if (masked && !l.visible(wrow0 + acc_row(e), key0 + acc_col(j, e))) x = -INFINITY;
        s[j][e] = x;
      }
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      float mx = row_max[r];
#pragma unroll
      for (int j = 0; j < BN / 8; ++j) mx = fmaxf(mx, fmaxf(s[j][2 * r], s[j][2 * r + 1]));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      const float ref = mx == -INFINITY ? 0.0f : mx;  // a row with no visible key yet stays at zero
      const float correction = exp2f(row_max[r] - ref);
      row_max[r] = mx;
      float sum = 0.0f;
#pragma unroll
      for (int j = 0; j < BN / 8; ++j) {
        s[j][2 * r] = exp2f(s[j][2 * r] - ref);
        s[j][2 * r + 1] = exp2f(s[j][2 * r + 1] - ref);
        sum += s[j][2 * r] + s[j][2 * r + 1];
      }
      row_sum[r] = row_sum[r] * correction + sum;  // this thread's columns; the quad adds up at the end
#pragma unroll
      for (int j = 0; j < D / 8; ++j) {
        o[j][2 * r] *= correction;
        o[j][2 * r + 1] *= correction;
      }
    }
    uint32_t pa[BN / 16][4];
    to_operand<BN>(pa, s);
    mma_rn<D, BN>(o, pa, svt, LD);
    __syncthreads();  // the next iteration's prefetch overwrites this stage
  }
  float inv[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    float sum = row_sum[r];
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    sum += __shfl_xor_sync(0xffffffffu, sum, 2);
    inv[r] = 1.0f / sum;
    const int row = wrow0 + lane / 4 + 8 * r;
    if (lane % 4 == 0 && row < l.t)
      lse[(static_cast<int64_t>(bb) * l.h + hh) * l.t + row] = (row_max[r] + log2f(sum)) * kLn2;
  }
  store_rows<D>(out + (static_cast<int64_t>(bb) * l.t * l.h + hh) * D, q_stride, wrow0, l.t, o, inv[0], inv[1]);
}

template <int D, int BQ>
constexpr int dkdv_smem_bytes() { return (2 * kRows + 4 * BQ) * (D + 8) * 2 + 4 * BQ * 4; }

// grid (B*Hkv, ceil(T/64)): block (64 keys, b, kv head) sums over the group's heads and the query
// tiles (BQ rows each) that see its keys. dk, dv: (B,T,Hkv,P), written.
template <int D, int BQ>
__global__ void __launch_bounds__(kWarps * 32) dkdv_kernel(Dims l, float* dk, float* dv, const bf16* q, const bf16* k,
                                                           const bf16* v, const bf16* dout, const float* lse,
                                                           const float* delta) {
  constexpr int LD = D + 8;
  extern __shared__ __align__(16) unsigned char smem[];
  bf16* sk = reinterpret_cast<bf16*>(smem);
  bf16* sv = sk + kRows * LD;
  bf16* sq = sv + kRows * LD;    // two stages
  bf16* sdo = sq + 2 * BQ * LD;  // two stages
  float* slse = reinterpret_cast<float*>(sdo + 2 * BQ * LD);  // two stages
  float* sdelta = slse + 2 * BQ;                              // two stages
  const int warp = threadIdx.x >> 5;
  const int bb = blockIdx.x / l.hkv, kh = blockIdx.x % l.hkv, group = l.h / l.hkv;
  const int key0 = blockIdx.y * kRows;
  const int64_t q_stride = static_cast<int64_t>(l.h) * D, kv_stride = static_cast<int64_t>(l.hkv) * D;
  const int64_t kv_offset = (static_cast<int64_t>(bb) * l.t * l.hkv + kh) * D;
  load_tile<D, kRows>(sk, k + kv_offset, kv_stride, key0, l.t);
  load_tile<D, kRows>(sv, v + kv_offset, kv_stride, key0, l.t);
  const int last_query = l.window > 0 ? min(l.t - 1, key0 + kRows - 1 + l.window - 1) : l.t - 1;
  const int m_first = key0 / BQ, per_head = last_query / BQ - m_first + 1, steps = group * per_head;
  auto load_step = [&](int step, int stage) {
    const int hh = kh * group + step / per_head, q0 = (m_first + step % per_head) * BQ;
    const int64_t head_offset = (static_cast<int64_t>(bb) * l.t * l.h + hh) * D;
    const int64_t row_offset = (static_cast<int64_t>(bb) * l.h + hh) * l.t;
    load_tile<D, BQ>(sq + stage * BQ * LD, q + head_offset, q_stride, q0, l.t);
    load_tile<D, BQ>(sdo + stage * BQ * LD, dout + head_offset, q_stride, q0, l.t);
    load_vector<BQ>(slse + stage * BQ, lse + row_offset, q0, l.t);
    load_vector<BQ>(sdelta + stage * BQ, delta + row_offset, q0, l.t);
  };
  load_step(0, 0);
  cp_async_commit();
  float dk_acc[D / 8][4], dv_acc[D / 8][4];
  zero(dk_acc);
  zero(dv_acc);
  const int wkey0 = key0 + warp * 16;
  for (int step = 0; step < steps; ++step) {
    const int stage = step & 1;
    if (step + 1 < steps) {
      load_step(step + 1, stage ^ 1);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    const bf16* sqt = sq + stage * BQ * LD;
    const bf16* sdot = sdo + stage * BQ * LD;
    const float* lse_t = slse + stage * BQ;
    const float* delta_t = sdelta + stage * BQ;
    const int q0 = (m_first + step % per_head) * BQ;
    float p[BQ / 8][4], ds[BQ / 8][4];  // transposed: rows are this warp's keys, columns queries
    zero(p);
    zero(ds);
    mma_nt<BQ, D>(p, sk + warp * 16 * LD, LD, sqt, LD);
    mma_nt<BQ, D>(ds, sv + warp * 16 * LD, LD, sdot, LD);
    const bool masked = q0 < wkey0 + 15 || q0 + BQ > l.t || (l.window > 0 && q0 + BQ - 1 - wkey0 >= l.window);
#pragma unroll
    for (int j = 0; j < BQ / 8; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int col = acc_col(j, e), query = q0 + col;
        float pr = exp2f(p[j][e] * l.scale_log2 - lse_t[col] * kLog2e);
        if (masked && (query >= l.t || !l.visible(query, wkey0 + acc_row(e)))) pr = 0.0f;
        p[j][e] = pr;
        ds[j][e] = pr * (ds[j][e] - delta_t[col]);
      }
    uint32_t a[BQ / 16][4];
    to_operand<BQ>(a, p);
    mma_rn<D, BQ>(dv_acc, a, sdot, LD);
    to_operand<BQ>(a, ds);
    mma_rn<D, BQ>(dk_acc, a, sqt, LD);
    __syncthreads();  // the next iteration's prefetch overwrites this stage
  }
  store_rows<D>(dk + kv_offset, kv_stride, wkey0, l.t, dk_acc, l.scale, l.scale);
  store_rows<D>(dv + kv_offset, kv_stride, wkey0, l.t, dv_acc, 1.0f, 1.0f);
}

template <int D, int BK>
constexpr int dq_smem_bytes() { return (2 * kRows + 4 * BK) * (D + 8) * 2; }

// grid (B*H, ceil(T/64)): block (64 queries, b, h) recomputes its probabilities tile by tile (BK
// keys each) and accumulates dq = scale * dS K. dq: (B,T,H,P), written.
template <int D, int BK>
__global__ void __launch_bounds__(kWarps * 32) dq_kernel(Dims l, float* dq, const bf16* q, const bf16* k, const bf16* v,
                                                         const bf16* dout, const float* lse, const float* delta) {
  constexpr int LD = D + 8;
  extern __shared__ __align__(16) unsigned char smem[];
  bf16* sq = reinterpret_cast<bf16*>(smem);
  bf16* sdo = sq + kRows * LD;
  bf16* sk = sdo + kRows * LD;  // two stages
  bf16* sv = sk + 2 * BK * LD;  // two stages
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int bb = blockIdx.x / l.h, hh = blockIdx.x % l.h, kh = hh / (l.h / l.hkv);
  const int m0 = (gridDim.y - 1 - blockIdx.y) * kRows;
  const int64_t q_stride = static_cast<int64_t>(l.h) * D, kv_stride = static_cast<int64_t>(l.hkv) * D;
  const int64_t q_offset = (static_cast<int64_t>(bb) * l.t * l.h + hh) * D;
  const int64_t kv_offset = (static_cast<int64_t>(bb) * l.t * l.hkv + kh) * D;
  const int n_first = (l.window > 0 ? max(0, m0 - l.window + 1) : 0) / BK;
  const int n_last = (min(m0 + kRows, l.t) - 1) / BK;
  load_tile<D, kRows>(sq, q + q_offset, q_stride, m0, l.t);
  load_tile<D, kRows>(sdo, dout + q_offset, q_stride, m0, l.t);
  load_tile<D, BK>(sk, k + kv_offset, kv_stride, n_first * BK, l.t);
  load_tile<D, BK>(sv, v + kv_offset, kv_stride, n_first * BK, l.t);
  cp_async_commit();
  const int wrow0 = m0 + warp * 16;
  float row_lse[2], row_delta[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int row = wrow0 + lane / 4 + 8 * r;
    const int64_t at = (static_cast<int64_t>(bb) * l.h + hh) * l.t + min(row, l.t - 1);
    row_lse[r] = lse[at] * kLog2e;
    row_delta[r] = delta[at];
  }
  float dq_acc[D / 8][4];
  zero(dq_acc);
  for (int n = n_first; n <= n_last; ++n) {
    const int stage = (n - n_first) & 1;
    if (n < n_last) {
      load_tile<D, BK>(sk + (stage ^ 1) * BK * LD, k + kv_offset, kv_stride, (n + 1) * BK, l.t);
      load_tile<D, BK>(sv + (stage ^ 1) * BK * LD, v + kv_offset, kv_stride, (n + 1) * BK, l.t);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    const bf16* skt = sk + stage * BK * LD;
    float p[BK / 8][4], ds[BK / 8][4];
    zero(p);
    zero(ds);
    mma_nt<BK, D>(p, sq + warp * 16 * LD, LD, skt, LD);
    mma_nt<BK, D>(ds, sdo + warp * 16 * LD, LD, sv + stage * BK * LD, LD);
    const int key0 = n * BK;
    const bool masked = key0 + BK - 1 > wrow0 || (l.window > 0 && wrow0 + 15 - key0 >= l.window);
#pragma unroll
    for (int j = 0; j < BK / 8; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int r = e >> 1;
        float pr = exp2f(p[j][e] * l.scale_log2 - row_lse[r]);
        if (masked && !l.visible(wrow0 + acc_row(e), key0 + acc_col(j, e))) pr = 0.0f;
        ds[j][e] = pr * (ds[j][e] - row_delta[r]);
      }
    uint32_t a[BK / 16][4];
    to_operand<BK>(a, ds);
    mma_rn<D, BK>(dq_acc, a, skt, LD);
    __syncthreads();  // the next iteration's prefetch overwrites this stage
  }
  store_rows<D>(dq + q_offset, q_stride, wrow0, l.t, dq_acc, l.scale, l.scale);
}

// Kernel variants per head dim: backward query / key tile sizes keep the fp32 accumulators of
// dK, dV (or dQ) plus the score tiles within the register file.
template <int D>
struct Tiles;
template <>
struct Tiles<64> {
  static constexpr int kBackwardTile = 64;
};
template <>
struct Tiles<128> {
  static constexpr int kBackwardTile = 32;
};

template <typename Kernel>
void allow_smem(Kernel kernel, int bytes, const char* op) {
  STRATA_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes), op);
}

// bf16 copies of q, k, v (and dout) in scratch slot 2; delta in slot 3.
struct Bf16Inputs {
  bf16 *q, *k, *v, *dout;
};
Bf16Inputs convert_inputs(CudaBackendState& s, const Tensor& q, const Tensor& k, const Tensor& v, bool with_dout,
                          const char* op) {
  const int64_t nq = q.numel(), nkv = k.numel();
  bf16* base = s.scratch_as<bf16>(2, nq * (with_dout ? 2 : 1) + 2 * nkv, op);
  Bf16Inputs r{base, base + nq, base + nq + nkv, with_dout ? base + nq + 2 * nkv : nullptr};
  to_bf16_kernel<<<grid_for(nq), kThreads, 0, s.stream>>>(r.q, q.data, nq);
  to_bf16_kernel<<<grid_for(nkv), kThreads, 0, s.stream>>>(r.k, k.data, nkv);
  to_bf16_kernel<<<grid_for(nkv), kThreads, 0, s.stream>>>(r.v, v.data, nkv);
  return r;
}

template <int D>
void forward(CudaBackendState& s, const Dims& l, const AttentionFwd& a, const char* op) {
  static bool configured = false;
  if (!configured) allow_smem(forward_kernel<D>, forward_smem_bytes<D>(), op), configured = true;
  const Bf16Inputs in = convert_inputs(s, a.q, a.k, a.v, false, op);
  const dim3 grid(static_cast<unsigned>(l.b * l.h), static_cast<unsigned>((l.t + kRows - 1) / kRows));
  forward_kernel<D><<<grid, kWarps * 32, forward_smem_bytes<D>(), s.stream>>>(l, a.out.data, a.lse.data, in.q, in.k,
                                                                              in.v);
}

template <int D>
void backward(CudaBackendState& s, const Dims& l, const AttentionBwd& a, const char* op) {
  constexpr int kTile = Tiles<D>::kBackwardTile;
  static bool configured = false;
  if (!configured) {
    allow_smem(dkdv_kernel<D, kTile>, dkdv_smem_bytes<D, kTile>(), op);
    allow_smem(dq_kernel<D, kTile>, dq_smem_bytes<D, kTile>(), op);
    configured = true;
  }
  const Bf16Inputs in = convert_inputs(s, a.q, a.k, a.v, true, op);
  const int64_t rows = static_cast<int64_t>(l.b) * l.t * l.h;
  float* delta = s.scratch_as<float>(3, rows, op);
  delta_kernel<<<static_cast<unsigned>((rows + kWarps - 1) / kWarps), kWarps * 32, 0, s.stream>>>(
      delta, in.dout, a.dout.data, a.out.data, rows, l.t, l.h, D);
  const unsigned tiles = static_cast<unsigned>((l.t + kRows - 1) / kRows);
  dkdv_kernel<D, kTile><<<dim3(static_cast<unsigned>(l.b * l.hkv), tiles), kWarps * 32, dkdv_smem_bytes<D, kTile>(),
                          s.stream>>>(l, a.dk.data, a.dv.data, in.q, in.k, in.v, in.dout, a.lse.data, delta);
  dq_kernel<D, kTile><<<dim3(static_cast<unsigned>(l.b * l.h), tiles), kWarps * 32, dq_smem_bytes<D, kTile>(),
                        s.stream>>>(l, a.dq.data, in.q, in.k, in.v, in.dout, a.lse.data, delta);
}

}  // namespace flash

// ---------------------------------------------------------------------------------------------
// Split-KV decode for large query groups (5..8 query heads per KV head; head dims 64 / 128; sm_80+):
// block (b, kv head, split) streams its share of the cache in kTileRows-row tiles through shared
// memory (cp.async, two stages: the next tile loads while this one computes), so the block keeps a
// whole tile in flight with few registers. Per tile:
//   scores: warp w holds query heads 2w, 2w+1; lane s dots the tile's K row s with both (the
//           queries are broadcast shared reads, pre-scaled into log2 units); the warp's shuffles
//           give each head's tile max and sum (online softmax), probabilities go to shared memory.
//   output: thread (4 dims, 2 heads, half of the tile's rows) rescales and accumulates p * V; the
//           two halves add once at the end.
// Leaves the same (max in natural-log units, sum, unnormalized output) per (row, split) as
// attention_decode_split_kernel; attention_decode_combine_kernel merges the splits.
// ---------------------------------------------------------------------------------------------
namespace decode {

constexpr int kTileRows = 32;  // cached positions per tile: one lane per position
constexpr int kHeads = 8;      // query heads of a group (padded with zero queries)
constexpr int kThreads = 128;  // 4 warps x 2 heads
static_assert(kThreads / 32 * 2 == kHeads, "two heads per warp");

template <int P>
struct Smem {
  static constexpr int kStride = P + 4;  // K rows padded: lanes reading 16 bytes of different rows hit distinct banks
  static constexpr int kStage = kTileRows * kStride + kTileRows * P;  // K tile then V tile (floats)
  static constexpr int kFloats = 2 * kStage + kHeads * P + kTileRows * kHeads + kHeads;
  static constexpr size_t kBytes = sizeof(float) * kFloats;
};

// cached rows [row0, row0 + kTileRows) of (b, kv head) into stage `k_tile` / `v_tile`; rows past
// `last` are zero-filled (their probability is zero, and 0 * garbage could be NaN).
template <int P>
__device__ __forceinline__ void load_tile(float* k_tile, float* v_tile, const float* kb, const float* vb,
                                         int64_t row_stride, int64_t row0, int64_t last) {
  constexpr int kChunks = P / 4;
  for (int i = threadIdx.x; i < kTileRows * kChunks; i += kThreads) {
    const int r = i / kChunks, c = (i % kChunks) * 4;
    const bool valid = row0 + r <= last;
    const int64_t offset = (valid ? row0 + r : 0) * row_stride + c;
    flash::cp_async16(k_tile + r * Smem<P>::kStride + c, kb + offset, valid);
    flash::cp_async16(v_tile + r * P + c, vb + offset, valid);
  }
}

template <int P>
__global__ void __launch_bounds__(kThreads) tile_kernel(float* part_stats, float* part_acc, const float* q,
                                                        const float* k_cache, const float* v_cache, int heads,
                                                        int hkv, int64_t cap, int64_t begin, int64_t position,
                                                        int splits, int64_t span, float scale_log2) {
  constexpr int C4 = P / 4;       // float4 columns of a row
  constexpr int NC = C4 / 16;     // output columns per thread (16 column slots x 4 head pairs x 2 halves)
  extern __shared__ float4 smem_raw[];
  float* smem = reinterpret_cast<float*>(smem_raw);
  float* q_s = smem + 2 * Smem<P>::kStage;  // (kHeads, P), scaled by scale * log2(e)
  float* p_s = q_s + kHeads * P;            // (kTileRows, kHeads) probabilities of the tile
  float* corr_s = p_s + kTileRows * kHeads;  // (kHeads) rescaling of the running output
  const int split = blockIdx.x % splits, kh = (blockIdx.x / splits) % hkv, b = blockIdx.x / (splits * hkv);
  const int group = heads / hkv, tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int64_t first = begin + static_cast<int64_t>(split) * span, last = min(position, first + span - 1);
  const int64_t row_stride = static_cast<int64_t>(hkv) * P;
  const float* kb = k_cache + (static_cast<int64_t>(b) * cap * hkv + kh) * P;
  const float* vb = v_cache + (static_cast<int64_t>(b) * cap * hkv + kh) * P;
  const int tiles = first <= last ? static_cast<int>((last - first) / kTileRows + 1) : 0;
  if (tiles > 0) {
    load_tile<P>(smem, smem + kTileRows * Smem<P>::kStride, kb, vb, row_stride, first, last);
    flash::cp_async_commit();
  }
  const float* qb = q + (static_cast<int64_t>(b) * heads + static_cast<int64_t>(kh) * group) * P;
  for (int i = tid; i < kHeads * P; i += kThreads) q_s[i] = i / P < group ? qb[i] * scale_log2 : 0.0f;
  // scores: this warp's heads; output: this thread's head pair, half and columns
  const int g0 = 2 * warp;
  float run_max[2] = {-INFINITY, -INFINITY}, run_sum[2] = {0.0f, 0.0f};
  const int half = tid / 64, pair = (tid / 16) % 4, col = tid % 16;
  float4 acc[NC][2];
#pragma unroll
  for (int j = 0; j < NC; ++j) acc[j][0] = acc[j][1] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
  for (int t = 0; t < tiles; ++t) {
    const int64_t row0 = first + static_cast<int64_t>(t) * kTileRows;
    if (t + 1 < tiles) {
      float* next = smem + ((t + 1) & 1) * Smem<P>::kStage;
      load_tile<P>(next, next + kTileRows * Smem<P>::kStride, kb, vb, row_stride, row0 + kTileRows, last);
      flash::cp_async_commit();
      flash::cp_async_wait<1>();
    } else {
      flash::cp_async_wait<0>();
    }
    __syncthreads();  // tile t (and the queries) visible to every thread
    const float* k_tile = smem + (t & 1) * Smem<P>::kStage;
    const float* v_tile = k_tile + kTileRows * Smem<P>::kStride;
    {
      const float4* krow = reinterpret_cast<const float4*>(k_tile + lane * Smem<P>::kStride);
      const float4* qa = reinterpret_cast<const float4*>(q_s + g0 * P);
      const float4* qc = reinterpret_cast<const float4*>(q_s + (g0 + 1) * P);
      float dot[2] = {0.0f, 0.0f};
#pragma unroll 8
      for (int c = 0; c < C4; ++c) {
        const float4 k = krow[c], a = qa[c], e = qc[c];
        dot[0] += k.x * a.x + k.y * a.y + k.z * a.z + k.w * a.w;
        dot[1] += k.x * e.x + k.y * e.y + k.z * e.z + k.w * e.w;
      }
      const bool valid = row0 + lane <= last;
      float pr[2], corr[2];
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const float x = valid ? dot[h] : -INFINITY;
        const float top = fmaxf(run_max[h], warp_max(x));
        const float ref = top == -INFINITY ? 0.0f : top;  // nothing visible yet: stay at zero
        corr[h] = exp2f(run_max[h] - ref);
        pr[h] = valid ? exp2f(x - ref) : 0.0f;
        run_sum[h] = run_sum[h] * corr[h] + warp_sum(pr[h]);
        run_max[h] = top;
      }
      *reinterpret_cast<float2*>(p_s + lane * kHeads + g0) = make_float2(pr[0], pr[1]);
      if (lane == 0) corr_s[g0] = corr[0], corr_s[g0 + 1] = corr[1];
    }
    __syncthreads();  // probabilities and rescalings visible
    {
      const float c0 = corr_s[2 * pair], c1 = corr_s[2 * pair + 1];
#pragma unroll
      for (int j = 0; j < NC; ++j) {
        acc[j][0].x *= c0, acc[j][0].y *= c0, acc[j][0].z *= c0, acc[j][0].w *= c0;
        acc[j][1].x *= c1, acc[j][1].y *= c1, acc[j][1].z *= c1, acc[j][1].w *= c1;
      }
#pragma unroll 4
      for (int s = half * (kTileRows / 2); s < (half + 1) * (kTileRows / 2); ++s) {
        const float2 p = *reinterpret_cast<const float2*>(p_s + s * kHeads + 2 * pair);
#pragma unroll
        for (int j = 0; j < NC; ++j) {
          const float4 v = reinterpret_cast<const float4*>(v_tile + s * P)[col + 16 * j];
          acc[j][0].x += p.x * v.x, acc[j][0].y += p.x * v.y, acc[j][0].z += p.x * v.z, acc[j][0].w += p.x * v.w;
          acc[j][1].x += p.y * v.x, acc[j][1].y += p.y * v.y, acc[j][1].z += p.y * v.z, acc[j][1].w += p.y * v.w;
        }
      }
    }
    __syncthreads();  // tile t fully read before it is reloaded, probabilities before rewritten
  }
  // the second half's sums join the first half's through the (now idle) stage buffers
  float4* merge = reinterpret_cast<float4*>(smem);  // (kHeads, C4)
  if (half == 1) {
#pragma unroll
    for (int j = 0; j < NC; ++j) {
      merge[(2 * pair) * C4 + col + 16 * j] = acc[j][0];
      merge[(2 * pair + 1) * C4 + col + 16 * j] = acc[j][1];
    }
  }
  __syncthreads();
  if (half == 0) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int g = 2 * pair + h;
      if (g >= group) break;
      const int64_t item = ((static_cast<int64_t>(b) * heads + static_cast<int64_t>(kh) * group + g) * splits + split);
#pragma unroll
      for (int j = 0; j < NC; ++j) {
        const float4 other = merge[g * C4 + col + 16 * j];
        float4 out = acc[j][h];
        out.x += other.x, out.y += other.y, out.z += other.z, out.w += other.w;
        reinterpret_cast<float4*>(part_acc + item * P)[col + 16 * j] = out;
      }
    }
  }
  if (lane == 0) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int g = g0 + h;
      if (g >= group) break;
      const int64_t item = ((static_cast<int64_t>(b) * heads + static_cast<int64_t>(kh) * group + g) * splits + split);
      part_stats[item * 2] = run_max[h] * flash::kLn2;  // log2 units -> natural log
      part_stats[item * 2 + 1] = run_sum[h];
    }
  }
}

}  // namespace decode

float resolve_scale(float scale, int64_t p) { return scale > 0.0f ? scale : 1.0f / std::sqrt(float(p)); }

void check_head_dim(const char* op, int64_t p) {
  STRATA_CHECK(p <= 32 * kMaxPerLane, op, ": head dim ", p, " exceeds the CUDA kernels' limit of ", 32 * kMaxPerLane);
}

// The tensor-core path runs when GEMMs run in reduced precision (bf16 / fp8 modes) for head dims 64
// and 128 on sm_80+; fp32 mode keeps the exact fp32 kernels above.
bool use_flash(const CudaBackend& backend, int64_t p, int64_t t) {
  return backend.effective_gemm_mode() != CudaGemmMode::Fp32 && (p == 64 || p == 128) &&
         backend.compute_capability() >= 80 && t < (int64_t(1) << 30);
}
flash::Dims flash_dims(const AttnDev& l) {
  // a window of at least T keys is the full causal mask
  const int window = l.window > 0 && l.window < l.t ? static_cast<int>(l.window) : 0;
  return {static_cast<int>(l.b), static_cast<int>(l.t), static_cast<int>(l.h), static_cast<int>(l.hkv), window,
          l.scale * flash::kLog2e, l.scale};
}

// Decode kernel for head dims 64 / 128: STRATA_CUDA_DECODE_ATTN=tile (tiled kernel for every group
// of at most 8 heads) or =group (warp-per-group kernel for every group), default tile for groups of
// 5..8 heads and group below. Read once.
enum class DecodeKernel { Default, Tile, Group };
DecodeKernel decode_kernel_choice() {
  static const DecodeKernel choice = [] {
    const char* env = std::getenv("STRATA_CUDA_DECODE_ATTN");
    const std::string value = env ? env : "";
    return value == "tile" ? DecodeKernel::Tile : value == "group" ? DecodeKernel::Group : DecodeKernel::Default;
  }();
  return choice;
}
int sm_count() {
  static const int count = [] {
    int device = 0, n = 0;
    if (cudaGetDevice(&device) != cudaSuccess ||
        cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, device) != cudaSuccess || n <= 0)
      return 132;
    return n;
  }();
  return count;
}

unsigned warp_blocks(int64_t rows) { return static_cast<unsigned>((rows + kWarpsPerBlock - 1) / kWarpsPerBlock); }

}  // namespace

void CudaBackend::attention_forward(const AttentionFwd& a) {
  const char* op = "cuda attention_forward";
  AttnDev l{a.q.size(0), a.q.size(1), a.q.size(2), a.k.size(2), a.q.size(3), 0.0f, a.window};
  check_head_dim(op, l.p);
  l.scale = resolve_scale(a.scale, l.p);
  const int64_t rows = l.b * l.h * l.t;
  if (rows == 0) return;
  if (use_flash(*this, l.p, l.t)) {
    const flash::Dims d = flash_dims(l);
    if (l.p == 64) flash::forward<64>(*state_, d, a, op);
    else flash::forward<128>(*state_, d, a, op);
    finish_op(op);
    return;
  }
  attention_forward_kernel<<<warp_blocks(rows), 32 * kWarpsPerBlock, 0, state_->stream>>>(l, a.out.data, a.lse.data,
                                                                                          a.q.data, a.k.data, a.v.data);
  finish_op(op);
}

void CudaBackend::attention_backward(const AttentionBwd& a) {
  const char* op = "cuda attention_backward";
  AttnDev l{a.q.size(0), a.q.size(1), a.q.size(2), a.k.size(2), a.q.size(3), 0.0f, a.window};
  check_head_dim(op, l.p);
  l.scale = resolve_scale(a.scale, l.p);
  const int64_t rows = l.b * l.h * l.t;
  if (rows == 0) return;
  if (use_flash(*this, l.p, l.t)) {
    const flash::Dims d = flash_dims(l);
    if (l.p == 64) flash::backward<64>(*state_, d, a, op);
    else flash::backward<128>(*state_, d, a, op);
    finish_op(op);
    return;
  }
  float* delta = state_->scratch_as<float>(2, rows, op);
  const unsigned threads = 32 * kWarpsPerBlock;
  attention_delta_kernel<<<warp_blocks(rows), threads, 0, state_->stream>>>(l, delta, a.dout.data, a.out.data);
  attention_dq_kernel<<<warp_blocks(rows), threads, 0, state_->stream>>>(l, a.dq.data, a.q.data, a.k.data, a.v.data,
                                                                         a.dout.data, a.lse.data, delta);
  attention_dkdv_kernel<<<warp_blocks(l.b * l.hkv * l.t), threads, 0, state_->stream>>>(
      l, a.dk.data, a.dv.data, a.q.data, a.k.data, a.v.data, a.dout.data, a.lse.data, delta);
  finish_op(op);
}

void CudaBackend::attention_decode(const AttentionDecode& a) {
  const char* op = "cuda attention_decode";
  const int64_t bsz = a.q.size(0), heads = a.q.size(1), p = a.q.size(2);
  const int64_t cap = a.k_cache.size(1), hkv = a.k_cache.size(2);
  check_head_dim(op, p);
  if (bsz * heads == 0) return;
  kv_cache_write_kernel<<<grid_for(bsz * hkv * p), kThreads, 0, state_->stream>>>(
      a.k_cache.data, a.v_cache.data, a.k_new.data, a.v_new.data, bsz, cap, hkv, p, a.position);
  const int64_t begin = a.window > 0 ? std::max<int64_t>(0, a.position - a.window + 1) : 0;
  const int64_t rows = bsz * heads, positions = a.position - begin + 1, group = heads / hkv;
  const bool aligned = (reinterpret_cast<uintptr_t>(a.q.data) | reinterpret_cast<uintptr_t>(a.k_cache.data) |
                        reinterpret_cast<uintptr_t>(a.v_cache.data)) % 16 == 0;
  const float scale = resolve_scale(a.scale, p);
  const DecodeKernel choice = decode_kernel_choice();
  if ((p == 64 || p == 128) && group <= decode::kHeads && aligned && compute_capability() >= 80 &&
      (choice == DecodeKernel::Tile || (choice == DecodeKernel::Default && group > 4))) {
    // blocks for about 4 per SM, at least 4 tiles per split; spans are whole tiles
    const int64_t pairs = bsz * hkv, tiles = (positions + decode::kTileRows - 1) / decode::kTileRows;
    const int64_t want = std::max<int64_t>(1, std::min<int64_t>((4 * sm_count() + pairs - 1) / pairs, tiles / 4));
    const int64_t span = (tiles + want - 1) / want * decode::kTileRows;
    const int64_t splits = (positions + span - 1) / span;
    float* part_stats = state_->scratch_as<float>(3, rows * splits * 2, op);
    float* part_acc = state_->scratch_as<float>(4, rows * splits * p, op);
    const auto kernel = p == 64 ? decode::tile_kernel<64> : decode::tile_kernel<128>;
    const size_t smem = p == 64 ? decode::Smem<64>::kBytes : decode::Smem<128>::kBytes;
    static const bool attributes_set = [] {  // > 48 KB of dynamic shared memory needs an opt-in
      return cudaFuncSetAttribute(decode::tile_kernel<64>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                  static_cast<int>(decode::Smem<64>::kBytes)) == cudaSuccess &&
             cudaFuncSetAttribute(decode::tile_kernel<128>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                  static_cast<int>(decode::Smem<128>::kBytes)) == cudaSuccess;
    }();
    STRATA_CHECK(attributes_set, op, ": could not raise the decode kernel's shared-memory limit");
    kernel<<<static_cast<unsigned>(pairs * splits), decode::kThreads, smem, state_->stream>>>(
        part_stats, part_acc, a.q.data, a.k_cache.data, a.v_cache.data, static_cast<int>(heads),
        static_cast<int>(hkv), cap, begin, a.position, static_cast<int>(splits), span, scale * flash::kLog2e);
    attention_decode_combine_kernel<<<static_cast<unsigned>(rows), kThreads, 0, state_->stream>>>(
        a.out.data, part_stats, part_acc, p, splits);
    finish_op(op);
    return;
  }
  if ((p == 64 || p == 128) && group <= kDecodeMaxGroup && aligned) {
    // about 2k warps, at least 64 positions per split
    const int64_t pairs = bsz * hkv;
    const int64_t splits = std::max<int64_t>(1, std::min<int64_t>((positions + 63) / 64, (2048 + pairs - 1) / pairs));
    const int64_t span = (positions + splits - 1) / splits;
    float* part_stats = state_->scratch_as<float>(3, rows * splits * 2, op);
    float* part_acc = state_->scratch_as<float>(4, rows * splits * p, op);
    using Kernel = decltype(&attention_decode_group_kernel<64, 1>);
    const Kernel kernels[2][4] = {{attention_decode_group_kernel<64, 1>, attention_decode_group_kernel<64, 2>,
                                   attention_decode_group_kernel<64, 4>, attention_decode_group_kernel<64, 8>},
                                  {attention_decode_group_kernel<128, 1>, attention_decode_group_kernel<128, 2>,
                                   attention_decode_group_kernel<128, 4>, attention_decode_group_kernel<128, 8>}};
    const Kernel kernel = kernels[p == 128][group <= 1 ? 0 : group <= 2 ? 1 : group <= 4 ? 2 : 3];
    kernel<<<warp_blocks(pairs * splits), 32 * kWarpsPerBlock, 0, state_->stream>>>(
        part_stats, part_acc, a.q.data, a.k_cache.data, a.v_cache.data, static_cast<int>(bsz), static_cast<int>(heads),
        static_cast<int>(hkv), cap, begin, a.position, static_cast<int>(splits), span, scale * flash::kLog2e);
    attention_decode_combine_kernel<<<static_cast<unsigned>(rows), kThreads, 0, state_->stream>>>(
        a.out.data, part_stats, part_acc, p, splits);
    finish_op(op);
    return;
  }
  // About 8k warps in flight, at least 32 positions per split.
  const int64_t splits = std::max<int64_t>(1, std::min<int64_t>((positions + 31) / 32, (8192 + rows - 1) / rows));
  const int64_t span = (positions + splits - 1) / splits;
  float* part_stats = state_->scratch_as<float>(3, rows * splits * 2, op);
  float* part_acc = state_->scratch_as<float>(4, rows * splits * p, op);
  attention_decode_split_kernel<<<warp_blocks(rows * splits), 32 * kWarpsPerBlock, 0, state_->stream>>>(
      part_stats, part_acc, a.q.data, a.k_cache.data, a.v_cache.data, bsz, heads, hkv, p, cap, begin, a.position,
      splits, span, scale);
  attention_decode_combine_kernel<<<static_cast<unsigned>(rows), kThreads, 0, state_->stream>>>(
      a.out.data, part_stats, part_acc, p, splits);
  finish_op(op);
}

void CudaBackend::rope(const RopeArgs& a) {
  const int64_t bsz = a.x.size(0), t_len = a.x.size(1), heads = a.x.size(2), p = a.x.size(3);
  const int64_t rotated = static_cast<int64_t>(p * static_cast<double>(a.fraction)) / 2 * 2;
  if (rotated / 2 == 0 || a.x.numel() == 0) return;
  rope_kernel<<<grid_for(bsz * t_len * heads * (rotated / 2)), kThreads, 0, state_->stream>>>(
      a.x.data, bsz, t_len, heads, p, rotated, static_cast<double>(a.theta), a.position_offset, a.inverse ? -1.0 : 1.0);
  finish_op("cuda rope");
}

}  // namespace strata
