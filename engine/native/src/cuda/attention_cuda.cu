// CUDA kernels of causal GQA attention (optional sliding window), RoPE and the KV-cache decode step.
// Flash-style: one warp per query row streams the visible keys with an online softmax (running max
// and sum), so no T x T matrix exists; the row's log-sum-exp is saved. The backward recomputes each
// probability from the saved log-sum-exp: one warp per query row for dq, one warp per key row for
// dk / dv (looping over the query heads of its KV group), so every output row has one writer.
// Head dims up to 256 (each lane holds P/32 values). Formulas follow cpu/attention_cpu.cpp.
#include <cmath>

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

// One warp per row: out = sum_s acc_s * exp(max_s - M) / sum_s sum_s * exp(max_s - M), M = max_s max_s.
__global__ void attention_decode_combine_kernel(float* out, const float* part_stats, const float* part_acc,
                                                int64_t rows, int64_t p, int64_t splits) {
  const int lane = threadIdx.x & 31;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + (threadIdx.x >> 5);
  if (row >= rows) return;
  const float* stats = part_stats + row * splits * 2;
  float top = -INFINITY;
  for (int64_t s = lane; s < splits; s += 32) top = fmaxf(top, stats[s * 2]);
  top = warp_max(top);
  float total = 0.0f;
  for (int64_t s = lane; s < splits; s += 32) {
    if (stats[s * 2 + 1] > 0.0f) total += stats[s * 2 + 1] * expf(stats[s * 2] - top);
  }
  total = warp_sum(total);
  for (int64_t d = lane; d < p; d += 32) {
    float value = 0.0f;
    for (int64_t s = 0; s < splits; ++s) {
      if (stats[s * 2 + 1] > 0.0f) value += part_acc[(row * splits + s) * p + d] * expf(stats[s * 2] - top);
    }
    out[row * p + d] = value / total;
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

float resolve_scale(float scale, int64_t p) { return scale > 0.0f ? scale : 1.0f / std::sqrt(float(p)); }

void check_head_dim(const char* op, int64_t p) {
  STRATA_CHECK(p <= 32 * kMaxPerLane, op, ": head dim ", p, " exceeds the CUDA kernels' limit of ", 32 * kMaxPerLane);
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
  // About 8k warps in flight, at least 32 positions per split.
  const int64_t rows = bsz * heads, positions = a.position - begin + 1;
  const int64_t splits = std::max<int64_t>(1, std::min<int64_t>((positions + 31) / 32, (8192 + rows - 1) / rows));
  const int64_t span = (positions + splits - 1) / splits;
  float* part_stats = state_->scratch_as<float>(3, rows * splits * 2, op);
  float* part_acc = state_->scratch_as<float>(4, rows * splits * p, op);
  attention_decode_split_kernel<<<warp_blocks(rows * splits), 32 * kWarpsPerBlock, 0, state_->stream>>>(
      part_stats, part_acc, a.q.data, a.k_cache.data, a.v_cache.data, bsz, heads, hkv, p, cap, begin, a.position,
      splits, span, resolve_scale(a.scale, p));
  attention_decode_combine_kernel<<<warp_blocks(rows), 32 * kWarpsPerBlock, 0, state_->stream>>>(
      a.out.data, part_stats, part_acc, rows, p, splits);
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
