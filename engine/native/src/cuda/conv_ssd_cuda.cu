// CUDA kernels of Mamba-2's sequence mixers: the depthwise causal conv1d (+ fused SiLU) forward and
// backward, and the SSD chunked scan forward and exact backward (the single-token decode steps of
// both are in ssm_step_cuda.cu).
// SSD is chunk-parallel: one thread block per (batch, head, chunk) computes what the chunk adds to
// the state from a zero entering state; a short sequential pass per (batch, head) turns those into
// the entering state of every chunk (kept in chunk_states, as the op contract saves it); then one
// block per chunk computes the outputs (the masked quadratic form inside the chunk plus the
// entering-state term). The backward mirrors it: chunk-local state gradients, a reverse pass per
// (batch, head) giving the gradient of the state leaving every chunk, then one block per chunk for
// all other gradients. B and C are shared by the heads of a group: by default the output and
// gradient blocks are per (batch, group, chunk) and walk the group's heads (C B^T computed once, dB
// and dC owned by the block: no atomics, deterministic; per-head parameter gradients reduced in a
// second pass); STRATA_CUDA_SSD=tiled selects the per-head blocks instead (dB, dC, A_log, dt_bias and
// D gradients atomically accumulated), kept for one A/B visit. Formulas follow
// cpu/ssd_cpu.cpp (the derivation is in its comments) and cpu/conv1d_cpu.cpp. Every matrix product
// of a chunk (states, outputs and all their gradients) goes through shared-memory tiles (block_gemm,
// 64 x 64 outputs per pass): fp32 on CUDA cores, or for the grouped output / gradient kernels in a
// non-fp32 GEMM mode bf16 mma.sync with fp32 accumulation (the chunk states stay fp32); not here:
// cuBLAS forms of them, cp.async pipelining of the tile loads.
#include <cuda_bf16.h>

#include <algorithm>
#include <cstdlib>
#include <initializer_list>
#include <string>
#include <type_traits>

#include "../ops/conv1d.h"
#include "../ops/ssd.h"
#include "cuda_common.cuh"

namespace strata {
namespace {

// ---- conv1d ------------------------------------------------------------------------------------

// The forward and backward kernels run on tiles: thread (x, y) of a (32, 8) block owns 4 adjacent
// channels (float4 loads and stores when `vec`: C a multiple of 4 and 16-byte aligned tensors, else
// scalar) over one run of kConvTile time steps of one sequence (tile = blockIdx.y * 8 + y), keeping the
// last K inputs (and in backward the next K pre-activation gradients) in registers, so every input is
// read about once. K is a template parameter (1..kConvMaxTaps).
constexpr int64_t kConvTile = 16;
constexpr int kConvMaxTaps = 8;
constexpr int kConvAhead = 2;  // rows loaded ahead of use (memory-level parallelism per thread)
struct ConvTiles {
  int64_t t_len, c_len, tiles_per_seq, tiles;
  bool vec;
};
ConvTiles conv_tiles(int64_t bsz, int64_t t_len, int64_t c_len, std::initializer_list<const float*> tensors) {
  bool vec = c_len % 4 == 0;
  for (const float* t : tensors) vec = vec && reinterpret_cast<uintptr_t>(t) % 16 == 0;
  const int64_t tiles_per_seq = (t_len + kConvTile - 1) / kConvTile;
  return {t_len, c_len, tiles_per_seq, bsz * tiles_per_seq, vec};
}
dim3 conv_tile_grid(const ConvTiles& d) {
  return dim3(static_cast<unsigned>((d.c_len + 127) / 128), static_cast<unsigned>((d.tiles + 7) / 8));
}

__device__ __forceinline__ float4 conv_load4(const float* p, int64_t c0, int64_t c_len, bool vec) {
  if (vec) return *reinterpret_cast<const float4*>(p + c0);
  float v[4];
  for (int l = 0; l < 4; ++l) v[l] = c0 + l < c_len ? p[c0 + l] : 0.0f;
  return make_float4(v[0], v[1], v[2], v[3]);
}
__device__ __forceinline__ void conv_store4(float* p, int64_t c0, int64_t c_len, bool vec, float4 v) {
  if (vec) {
    *reinterpret_cast<float4*>(p + c0) = v;
    return;
  }
  const float e[4] = {v.x, v.y, v.z, v.w};
  for (int l = 0; l < 4; ++l)
    if (c0 + l < c_len) p[c0 + l] = e[l];
}
__device__ __forceinline__ float4 fma4(float4 w, float4 x, float4 acc) {
  return make_float4(fmaf(w.x, x.x, acc.x), fmaf(w.y, x.y, acc.y), fmaf(w.z, x.z, acc.z), fmaf(w.w, x.w, acc.w));
}
// Taps of channels c0..c0+3 (zeros past C): wv[j] = w[c, j].
template <int K>
__device__ __forceinline__ void conv_taps(float4 (&wv)[K], const float* w, int64_t c0, int64_t c_len) {
  for (int j = 0; j < K; ++j) {
    float v[4];
    for (int l = 0; l < 4; ++l) v[l] = c0 + l < c_len ? w[(c0 + l) * K + j] : 0.0f;
    wv[j] = make_float4(v[0], v[1], v[2], v[3]);
  }
}
// pre = bias + sum_j w[j] x[t-K+1+j], xw[j] holding x[t-K+1+j] (zeros before the sequence start).
template <int K>
__device__ __forceinline__ float4 conv_pre4(const float4 (&wv)[K], const float4 (&xw)[K], float4 bias) {
  float4 v = bias;
  for (int j = 0; j < K; ++j) v = fma4(wv[j], xw[j], v);
  return v;
}

template <int K>
__global__ void conv1d_forward_kernel(float* __restrict__ y, const float* __restrict__ x, const float* w,
                                      const float* bias, ConvTiles d, bool silu) {
  const int64_t c0 = (static_cast<int64_t>(blockIdx.x) * 32 + threadIdx.x) * 4;
  const int64_t tile = static_cast<int64_t>(blockIdx.y) * 8 + threadIdx.y;
  if (c0 >= d.c_len || tile >= d.tiles) return;
  const int64_t seq = tile / d.tiles_per_seq, t0 = (tile % d.tiles_per_seq) * kConvTile;
  const int64_t t1 = min(d.t_len, t0 + kConvTile);
  const float* xs = x + seq * d.t_len * d.c_len;
  float* ys = y + seq * d.t_len * d.c_len;
  float4 wv[K], xw[K];
  conv_taps<K>(wv, w, c0, d.c_len);
  const float4 b4 = bias ? conv_load4(bias, c0, d.c_len, false) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
  for (int j = 0; j + 1 < K; ++j) {
    const int64_t t = t0 - (K - 1) + j;
    xw[j] = t >= 0 ? conv_load4(xs + t * d.c_len, c0, d.c_len, d.vec) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
  }
  float4 ahead[kConvAhead];  // x rows t .. t + kConvAhead - 1, loaded ahead of use
  for (int i = 0; i < kConvAhead; ++i) {
    ahead[i] = t0 + i < t1 ? conv_load4(xs + (t0 + i) * d.c_len, c0, d.c_len, d.vec) : make_float4(0.f, 0.f, 0.f, 0.f);
  }
  for (int64_t t = t0; t < t1; ++t) {
    xw[K - 1] = ahead[0];
    for (int i = 0; i + 1 < kConvAhead; ++i) ahead[i] = ahead[i + 1];
    const int64_t later = t + kConvAhead;
    if (later < t1) ahead[kConvAhead - 1] = conv_load4(xs + later * d.c_len, c0, d.c_len, d.vec);
    float4 v = conv_pre4<K>(wv, xw, b4);
    if (silu) v = make_float4(dev_silu(v.x), dev_silu(v.y), dev_silu(v.z), dev_silu(v.w));
    conv_store4(ys + t * d.c_len, c0, d.c_len, d.vec, v);
    for (int j = 0; j + 1 < K; ++j) xw[j] = xw[j + 1];
  }
}

// Backward of one tile, walking time downwards: g[s] = dL/d(pre)[s] = dy[s] silu'(pre[s]) (the K-1
// rows after the tile are recomputed, not counted), dx[s] = sum_j g[s+K-1-j] w[c,j], and per-thread
// sums over the tile's kConvTile rows of g[s] x[s-K+1+j] (dw) and g[s] (dbias). When partials is set
// the 8 tiles of a block are added in order in shared memory (double) and written as
// partials[blockIdx.y * (K+1) * C + j * C + c] (j == K: the bias), the column layout ConvDwSink
// reads after add_column_partials.
template <int K>
__global__ void conv1d_backward_kernel(float* __restrict__ dx, double* __restrict__ partials,
                                       const float* __restrict__ dy, const float* __restrict__ x, const float* w,
                                       const float* bias, ConvTiles d, bool silu) {
  __shared__ double shared[8][128];
  const int64_t c0 = (static_cast<int64_t>(blockIdx.x) * 32 + threadIdx.x) * 4;
  const int64_t tile = static_cast<int64_t>(blockIdx.y) * 8 + threadIdx.y;
  float acc[K + 1][4];
  for (int j = 0; j <= K; ++j)
    for (int l = 0; l < 4; ++l) acc[j][l] = 0.0f;
  if (c0 < d.c_len && tile < d.tiles) {
    const int64_t seq = tile / d.tiles_per_seq, t0 = (tile % d.tiles_per_seq) * kConvTile;
    const int64_t t1 = min(d.t_len, t0 + kConvTile), top = min(d.t_len, t1 + K - 1) - 1;
    const int64_t offset = seq * d.t_len * d.c_len;
    const float4 zero = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    float4 wv[K], xw[K], gw[K];  // xw[j] = x[s-K+1+j], gw[i] = g[s+i] (zeros outside the sequence)
    conv_taps<K>(wv, w, c0, d.c_len);
    const float4 b4 = bias ? conv_load4(bias, c0, d.c_len, false) : zero;
    for (int j = 0; j < K; ++j) {
      const int64_t t = top - (K - 1) + j;
      xw[j] = t >= 0 ? conv_load4(x + offset + t * d.c_len, c0, d.c_len, d.vec) : zero;
      gw[j] = zero;
    }
    // dy rows s, s-1, ... and the x rows entering the window, s-K, s-K-1, ..., loaded ahead of use
    float4 dy_ahead[kConvAhead], x_ahead[kConvAhead];
    for (int i = 0; i < kConvAhead; ++i) {
      dy_ahead[i] = top - i >= t0 ? conv_load4(dy + offset + (top - i) * d.c_len, c0, d.c_len, d.vec) : zero;
      x_ahead[i] = top - K - i >= 0 ? conv_load4(x + offset + (top - K - i) * d.c_len, c0, d.c_len, d.vec) : zero;
    }
    for (int64_t s = top; s >= t0; --s) {
      float4 g = dy_ahead[0];
      const float4 x_enter = x_ahead[0];
      for (int i = 0; i + 1 < kConvAhead; ++i) dy_ahead[i] = dy_ahead[i + 1], x_ahead[i] = x_ahead[i + 1];
      const int64_t later = s - kConvAhead;
      if (later >= t0) dy_ahead[kConvAhead - 1] = conv_load4(dy + offset + later * d.c_len, c0, d.c_len, d.vec);
      x_ahead[kConvAhead - 1] =
          later - K >= 0 ? conv_load4(x + offset + (later - K) * d.c_len, c0, d.c_len, d.vec) : zero;
      if (silu) {
        const float4 pre = conv_pre4<K>(wv, xw, b4);
        g = make_float4(g.x * dev_silu_grad(pre.x), g.y * dev_silu_grad(pre.y), g.z * dev_silu_grad(pre.z),
                        g.w * dev_silu_grad(pre.w));
      }
      for (int i = K - 1; i > 0; --i) gw[i] = gw[i - 1];
      gw[0] = g;
      if (s < t1) {
        const float ge[4] = {g.x, g.y, g.z, g.w};
        for (int j = 0; j < K; ++j) {
          const float xe[4] = {xw[j].x, xw[j].y, xw[j].z, xw[j].w};
          for (int l = 0; l < 4; ++l) acc[j][l] = fmaf(ge[l], xe[l], acc[j][l]);
        }
        for (int l = 0; l < 4; ++l) acc[K][l] += ge[l];
        float4 v = zero;
        for (int j = 0; j < K; ++j) v = fma4(gw[K - 1 - j], wv[j], v);
        conv_store4(dx + offset + s * d.c_len, c0, d.c_len, d.vec, v);
      }
      for (int j = K - 1; j > 0; --j) xw[j] = xw[j - 1];
      xw[0] = x_enter;
    }
  }
  if (!partials) return;  // the same for the whole grid
  const int lane = static_cast<int>(threadIdx.y * 32 + threadIdx.x);
  const int64_t column = static_cast<int64_t>(blockIdx.x) * 128 + lane;
  for (int j = 0; j <= K; ++j) {
    for (int l = 0; l < 4; ++l) shared[threadIdx.y][threadIdx.x * 4 + l] = static_cast<double>(acc[j][l]);
    __syncthreads();
    if (lane < 128 && column < d.c_len) {
      double total = 0.0;
      for (int r = 0; r < 8; ++r) total += shared[r][lane];
      partials[static_cast<int64_t>(blockIdx.y) * (K + 1) * d.c_len + j * d.c_len + column] = total;
    }
    __syncthreads();
  }
}

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

// block_gemm: the chunk's matrix products on shared-memory tiles, fp32 on CUDA cores. An operand
// element is o.p[r * o.row_stride + q * o.q_stride] (r: the output row i for A, the output column j
// for B; q: the summed index), one of the two strides being 1 (tile loads are coalesced along it),
// times o.scale[i] for A (a per-row scale) or o.scale[q] for B when o.scale is set.
struct TileOperand {
  const float* p;
  int64_t row_stride, q_stride;
  const float* scale;
};
// Where A(i, q) can be non-zero: everywhere, only for q <= i (Lower) or only for q >= i (Upper);
// the k steps wholly outside are skipped (the entries there must be zeros in memory).
enum class Band { Full, Lower, Upper };
// One term of a sum of products: A (m x k) times B (k x n).
struct GemmTerm {
  TileOperand a, b;
  int64_t k;
  Band band;
};
// Tiles: 64 x 64 outputs per pass, 32-wide k steps, each of the 256 threads holding 4 x 4 outputs
// (4 consecutive rows times 4 consecutive columns, read from shared memory as float4).
constexpr int kGemmTile = 64;
constexpr int kGemmK = 32;
constexpr int kGemmPitch = kGemmTile + 4;  // padded (fewer bank conflicts on transposed stores), float4-aligned
constexpr int kGemmFloats = 2 * kGemmK * kGemmPitch;

// dst[q][r] = operand (r0 + r, q0 + q), zero outside rows x k.
__device__ __forceinline__ void load_gemm_tile(float* dst, const TileOperand& o, int64_t r0, int64_t rows, int64_t q0,
                                               int64_t k, bool row_scale) {
  for (int e = threadIdx.x; e < kGemmK * kGemmTile; e += blockDim.x) {
    const bool q_fast = o.q_stride == 1;
    const int r = q_fast ? e / kGemmK : e % kGemmTile, q = q_fast ? e % kGemmK : e / kGemmTile;
    const int64_t gr = r0 + r, gq = q0 + q;
    float v = 0.0f;
    if (gr < rows && gq < k) {
      v = o.p[gr * o.row_stride + gq * o.q_stride];
      if (o.scale) v *= o.scale[row_scale ? gr : gq];
    }
    dst[q * kGemmPitch + r] = v;
  }
}

// The same tile, 4 consecutive elements along the operand's contiguous index per load: one float4
// global load where the operand is 16-byte aligned (base and stride) and the 4 lie inside, element
// by element otherwise (partial edges, odd strides).
__device__ __forceinline__ void load_gemm_tile_vec(float* dst, const TileOperand& o, int64_t r0, int64_t rows,
                                                   int64_t q0, int64_t k, bool row_scale) {
  const bool q_fast = o.q_stride == 1;
  const int64_t ld = q_fast ? o.row_stride : o.q_stride;
  const bool aligned = (reinterpret_cast<uintptr_t>(o.p) & 15) == 0 && ld % 4 == 0;
  for (int e = threadIdx.x; e < kGemmK * kGemmTile / 4; e += blockDim.x) {
    // (r, q): the first of the 4; they run along q (q_fast) or along r
    const int r = q_fast ? e / (kGemmK / 4) : 4 * (e % (kGemmTile / 4));
    const int q = q_fast ? 4 * (e % (kGemmK / 4)) : e / (kGemmTile / 4);
    const int64_t gr = r0 + r, gq = q0 + q;
    const bool other_inside = q_fast ? gr < rows : gq < k;
    const int64_t ahead = q_fast ? k - gq : rows - gr;                 // inside along the 4 when > 0
    const int64_t inside = other_inside ? (ahead < 4 ? ahead : 4) : 0;  // how many of the 4 are inside
    const float* src = o.p + gr * o.row_stride + gq * o.q_stride;
    float v[4];
    if (inside == 4 && aligned) {
      const float4 f = *reinterpret_cast<const float4*>(src);
      v[0] = f.x, v[1] = f.y, v[2] = f.z, v[3] = f.w;
    } else {
#pragma unroll
      for (int j = 0; j < 4; ++j) v[j] = j < inside ? src[j] : 0.0f;  // the 4 are contiguous
    }
    if (o.scale) {
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int64_t si = row_scale ? gr + (q_fast ? 0 : j) : gq + (q_fast ? j : 0);
        if (j < inside) v[j] *= o.scale[si];
      }
    }
    if (q_fast) {
#pragma unroll
      for (int j = 0; j < 4; ++j) dst[(q + j) * kGemmPitch + r] = v[j];
    } else {
      *reinterpret_cast<float4*>(dst + q * kGemmPitch + r) = make_float4(v[0], v[1], v[2], v[3]);
    }
  }
}

// bf16 tensor-core pieces of block_gemm<kMma>: two floats rounded to a bf16 pair (lo in the low half),
// and c (16 x 8) += a (16 x 16, row) b (16 x 8, col) on mma.sync with fp32 accumulation.
__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&v);
}
__device__ __forceinline__ void mma_bf16(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
               "{%0,%1,%2,%3};\n"
               : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// epilogue(i, j, sum over the terms of sum_q A(i, q) B(q, j)) for every i < m, j < n (with lower_only:
// only for the 64 x 64 output tiles not wholly above the diagonal, j <= i somewhere in them). Each
// output is handed to the epilogue by one thread, the same thread for equal (m, n). kVec: tiles loaded
// by load_gemm_tile_vec (the grouped kernels and the phase-1 kernels they run with), else by
// load_gemm_tile (the STRATA_CUDA_SSD=tiled path, as before). kMma: the products on bf16 tensor cores
// (operands rounded to bf16 from the fp32 tiles, fp32 accumulation; warp w owns rows 16 (w % 4) and
// columns 32 (w / 4) of the 64 x 64 tile, four m16n8k16 per 16 k), else fp32 FMAs. Needs blockDim.x
// == kThreads; every thread of the block must call it (it synchronizes); `tiles` holds kGemmFloats
// and is 16-byte aligned.
template <bool kVec, bool kMma, int kTerms, typename Epilogue>
__device__ void block_gemm(int64_t m, int64_t n, const GemmTerm (&terms)[kTerms], bool lower_only, float* tiles,
                           Epilogue epilogue) {
  static_assert(kThreads == 256, "block_gemm maps 256 threads onto 16 x 16, 4 x 4 outputs each");
  float* ta = tiles;
  float* tb = tiles + kGemmK * kGemmPitch;
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  const int gid = (threadIdx.x & 31) >> 2, tig = threadIdx.x & 3;  // mma: the lane's row group and pair
  const int wm = (threadIdx.x >> 5) & 3, wn = threadIdx.x >> 7;     // mma: the warp's 16 rows, 32 columns
  for (int64_t i0 = 0; i0 < m; i0 += kGemmTile) {
    for (int64_t j0 = 0; j0 < n; j0 += kGemmTile) {
      if (lower_only && j0 > i0 + kGemmTile - 1) continue;
      float acc[4][4] = {};
#pragma unroll
      for (int t = 0; t < kTerms; ++t) {
        const GemmTerm& term = terms[t];
        for (int64_t q0 = 0; q0 < term.k; q0 += kGemmK) {
          if (term.band == Band::Lower && q0 > i0 + kGemmTile - 1) break;
          if (term.band == Band::Upper && q0 + kGemmK - 1 < i0) continue;
          if constexpr (kVec) {
            load_gemm_tile_vec(ta, term.a, i0, m, q0, term.k, true);
            load_gemm_tile_vec(tb, term.b, j0, n, q0, term.k, false);
          } else {
            load_gemm_tile(ta, term.a, i0, m, q0, term.k, true);
            load_gemm_tile(tb, term.b, j0, n, q0, term.k, false);
          }
          __syncthreads();
          if constexpr (kMma) {
#pragma unroll
            for (int kk = 0; kk < kGemmK; kk += 16) {
              // A(r, q) = ta[q][r], B(q, c) = tb[q][c]: this lane's k pairs are 2 tig (+1) and 2 tig + 8 (+1)
              const float* a = ta + (kk + 2 * tig) * kGemmPitch + wm * 16 + gid;
              const uint32_t af[4] = {pack_bf16(a[0], a[kGemmPitch]), pack_bf16(a[8], a[kGemmPitch + 8]),
                                      pack_bf16(a[8 * kGemmPitch], a[9 * kGemmPitch]),
                                      pack_bf16(a[8 * kGemmPitch + 8], a[9 * kGemmPitch + 8])};
#pragma unroll
              for (int nt = 0; nt < 4; ++nt) {
                const float* bp = tb + (kk + 2 * tig) * kGemmPitch + wn * 32 + nt * 8 + gid;
                mma_bf16(acc[nt], af, pack_bf16(bp[0], bp[kGemmPitch]),
                         pack_bf16(bp[8 * kGemmPitch], bp[9 * kGemmPitch]));
              }
            }
          } else {
#pragma unroll
            for (int q = 0; q < kGemmK; ++q) {
              const float4 a4 = *reinterpret_cast<const float4*>(ta + q * kGemmPitch + 4 * ty);
              const float4 b4 = *reinterpret_cast<const float4*>(tb + q * kGemmPitch + 4 * tx);
              const float av[4] = {a4.x, a4.y, a4.z, a4.w}, bv[4] = {b4.x, b4.y, b4.z, b4.w};
#pragma unroll
              for (int r = 0; r < 4; ++r) {
#pragma unroll
                for (int c = 0; c < 4; ++c) acc[r][c] += av[r] * bv[c];
              }
            }
          }
          __syncthreads();
        }
      }
#pragma unroll
      for (int r = 0; r < 4; ++r) {
#pragma unroll
        for (int c = 0; c < 4; ++c) {
          // fp32: acc[r][c] is (4 ty + r, 4 tx + c); mma: acc[nt][c] is (16 wm + gid (+8 for c >= 2),
          // 32 wn + 8 nt + 2 tig + c % 2)
          const int64_t i = kMma ? i0 + wm * 16 + gid + (c >= 2 ? 8 : 0) : i0 + 4 * ty + r;
          const int64_t j = kMma ? j0 + wn * 32 + r * 8 + 2 * tig + (c & 1) : j0 + 4 * tx + c;
          if (i < m && j < n) epilogue(i, j, acc[r][c]);
        }
      }
    }
  }
}

// Operand views: a row-major matrix read as A(i, q) = p[i * ld + q] ("rows"), or its transpose
// A(i, q) = p[q * ld + i] ("columns"); for B, r is the output column j.
__device__ __forceinline__ TileOperand rows_of(const float* p, int64_t ld, const float* scale = nullptr) {
  return {p, ld, 1, scale};
}
__device__ __forceinline__ TileOperand columns_of(const float* p, int64_t ld, const float* scale = nullptr) {
  return {p, 1, ld, scale};
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
template <bool kVec>
__global__ void ssd_chunk_state_kernel(SsdDev l, float* chunk_states, float* final_state, float* decays,
                                       const float* x, const float* dt, const float* a_log, const float* bm) {
  extern __shared__ float shared[];
  __shared__ __align__(16) float tiles[kGemmFloats];
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
  // S (P x N) = x^T (P x len) times (w B) (len x N)
  const GemmTerm terms[1] = {{columns_of(x + l.xi(v.b, v.t0, v.h), l.heads * l.p),
                              columns_of(bm + l.bci(v.b, v.t0, v.g), l.groups * l.n, w), v.len, Band::Full}};
  const int64_t n = l.n;
  block_gemm<kVec, false>(l.p, l.n, terms, false, tiles,
                          [&](int64_t p, int64_t k, float acc) { dest[p * n + k] = acc; });
}

// Forward phase 2 (blocks over (b, h) x slices of the state, one thread per state element): the
// sequential pass over chunks, entering(c + 1) = decay(c) * entering(c) + S(c), in place over the
// chunk-local states.
__global__ void ssd_state_pass_kernel(SsdDev l, float* chunk_states, float* final_state, const float* decays,
                                      const float* initial_state) {
  const int64_t b = blockIdx.x / l.heads, h = blockIdx.x % l.heads;
  const float* decay = decays + static_cast<int64_t>(blockIdx.x) * l.chunks;
  const int64_t idx = static_cast<int64_t>(blockIdx.y) * blockDim.x + threadIdx.x;
  if (idx < l.p * l.n) {
    float carry = initial_state ? initial_state[l.fi(b, h) + idx] : 0.0f;
    chunk_states[l.si(b, 0, h) + idx] = carry;
    auto leaving = [&](int64_t c) {  // where the state leaving chunk c goes
      return c + 1 < l.chunks ? chunk_states + l.si(b, c + 1, h) : (final_state ? final_state + l.fi(b, h) : nullptr);
    };
    float* next = leaving(0);
    float s_next = next ? next[idx] : 0.0f;
    for (int64_t c = 0; next; ++c) {
      const float s_local = s_next;
      float* after = c + 1 < l.chunks ? leaving(c + 1) : nullptr;
      if (after) s_next = after[idx];  // loaded before this chunk's store
      carry = decay[c] * carry + s_local;
      next[idx] = carry;
      next = after;
    }
  }
}

// Forward phase 3 (one block per chunk): y = D x + exp(cum) C h_entering + the masked quadratic form
// within the chunk.
__global__ void ssd_chunk_output_kernel(SsdDev l, float* y, const float* chunk_states, const float* x,
                                        const float* dt, const float* a_log, const float* bm, const float* cm,
                                        const float* d, float* coef_scratch) {
  extern __shared__ float shared[];
  __shared__ __align__(16) float tiles[kGemmFloats];
  const int64_t L = l.chunk;
  float* cum = shared;
  float* dts = shared + L;
  float* ecum = shared + 2 * L;  // exp(cum[i])
  const SsdChunk v = ssd_chunk_of_block(l);
  const float D = d ? d[v.h] : 0.0f;
  float* coef = coef_scratch + static_cast<int64_t>(blockIdx.x) * L * L;
  ssd_load_chunk_decay(l, v, dt, -expf(a_log[v.h]), dts, cum);
  for (int64_t i = threadIdx.x; i < v.len; i += blockDim.x) ecum[i] = expf(cum[i]);
  const float* h0 = chunk_states + l.si(v.b, v.c, v.h);
  const int64_t len = v.len, bc_stride = l.groups * l.n, xy_stride = l.heads * l.p;
  const float* c_chunk = cm + l.bci(v.b, v.t0, v.g);
  const float* x_chunk = x + l.xi(v.b, v.t0, v.h);
  // coef[i,s] = (C B^T)[i,s] exp(cum[i] - cum[s]) dt[s] for s <= i, 0 above the diagonal
  const float* b_chunk = bm + l.bci(v.b, v.t0, v.g);
  const GemmTerm cb[1] = {{rows_of(c_chunk, bc_stride), rows_of(b_chunk, bc_stride), l.n, Band::Full}};
  block_gemm<false, false>(len, len, cb, true, tiles, [&](int64_t i, int64_t s, float acc) {
    coef[i * L + s] = s <= i ? acc * expf(cum[i] - cum[s]) * dts[s] : 0.0f;
  });
  __syncthreads();
  // y = D x + (exp(cum) C) h0^T + coef x
  const GemmTerm terms[2] = {{rows_of(c_chunk, bc_stride, ecum), rows_of(h0, l.n), l.n, Band::Full},
                             {rows_of(coef, L), columns_of(x_chunk, xy_stride), len, Band::Lower}};
  float* y_chunk = y + l.xi(v.b, v.t0, v.h);
  block_gemm<false, false>(len, l.p, terms, false, tiles, [&](int64_t i, int64_t p, float acc) {
    y_chunk[i * xy_stride + p] = D * x_chunk[i * xy_stride + p] + acc;
  });
}

// Forward phase 3, grouped (the default; STRATA_CUDA_SSD=tiled selects the kernel above): one block
// per (batch, group, chunk) computes C B^T once (cbraw) and walks the group's heads in order; per head
// the decay and dt are applied one warp per row (coalesced), then the outputs as above.
template <bool kMma>
__global__ void ssd_chunk_output_group_kernel(SsdDev l, float* y, const float* chunk_states, const float* x,
                                              const float* dt, const float* a_log, const float* bm,
                                              const float* cm, const float* d, float* cbraw_scratch,
                                              float* coef_scratch) {
  extern __shared__ float shared[];
  __shared__ __align__(16) float tiles[kGemmFloats];
  const int64_t L = l.chunk;
  float* cum = shared;
  float* dts = shared + L;
  float* ecum = shared + 2 * L;  // exp(cum[i])
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  const int64_t bg = blockIdx.x / l.chunks, c = blockIdx.x % l.chunks;
  const int64_t b = bg / l.groups, g = bg % l.groups, hpg = l.hpg();
  const int64_t t0 = c * L, len = min(L, l.t_len - t0);
  const int64_t bc_stride = l.groups * l.n, xy_stride = l.heads * l.p;
  float* CBraw = cbraw_scratch + static_cast<int64_t>(blockIdx.x) * L * L;  // C B^T, shared by the heads
  float* coef = coef_scratch + static_cast<int64_t>(blockIdx.x) * L * L;
  const float* b_chunk = bm + l.bci(b, t0, g);
  const float* c_chunk = cm + l.bci(b, t0, g);
  const GemmTerm cb[1] = {{rows_of(c_chunk, bc_stride), rows_of(b_chunk, bc_stride), l.n, Band::Full}};
  block_gemm<true, kMma>(len, len, cb, true, tiles, [&](int64_t i, int64_t s, float acc) { CBraw[i * L + s] = acc; });
  for (int64_t hh = 0; hh < hpg; ++hh) {
    const int64_t h = g * hpg + hh;
    const SsdChunk v{b, h, g, c, t0, len};
    const float D = d ? d[h] : 0.0f;
    __syncthreads();  // the previous head's shared values are no longer read
    ssd_load_chunk_decay(l, v, dt, -expf(a_log[h]), dts, cum);
    for (int64_t i = threadIdx.x; i < len; i += blockDim.x) ecum[i] = expf(cum[i]);
    // coef[i,s] = (C B^T)[i,s] exp(cum[i] - cum[s]) dt[s] for s <= i, 0 above the diagonal
    for (int64_t i = warp; i < len; i += warps) {
      for (int64_t s = lane; s < len; s += 32) {
        coef[i * L + s] = s <= i ? CBraw[i * L + s] * expf(cum[i] - cum[s]) * dts[s] : 0.0f;
      }
    }
    __syncthreads();
    // y = D x + (exp(cum) C) h0^T + coef x
    const float* h0 = chunk_states + l.si(b, c, h);
    const float* x_chunk = x + l.xi(b, t0, h);
    const GemmTerm terms[2] = {{rows_of(c_chunk, bc_stride, ecum), rows_of(h0, l.n), l.n, Band::Full},
                               {rows_of(coef, L), columns_of(x_chunk, xy_stride), len, Band::Lower}};
    float* y_chunk = y + l.xi(b, t0, h);
    block_gemm<true, kMma>(len, l.p, terms, false, tiles, [&](int64_t i, int64_t p, float acc) {
      y_chunk[i * xy_stride + p] = D * x_chunk[i * xy_stride + p] + acc;
    });
  }
}

struct SsdGrads {
  float *dx, *ddt_raw, *ddt_bias, *da_log, *db, *dc, *dd, *dinitial_state;
};

// Backward phase 1 (one block per chunk): the chunk's own contribution to the gradient of the state
// entering it, Q[p,k] = sum_i exp(cum[i]) dy[i,p] C[i,k], and the chunk's total decay.
template <bool kVec>
__global__ void ssd_chunk_state_grad_kernel(SsdDev l, float* state_grads, float* decays, const float* dy,
                                            const float* dt, const float* a_log, const float* cm) {
  extern __shared__ float shared[];
  __shared__ __align__(16) float tiles[kGemmFloats];
  float* cum = shared;
  float* e = shared + l.chunk;
  const SsdChunk v = ssd_chunk_of_block(l);
  ssd_load_chunk_decay(l, v, dt, -expf(a_log[v.h]), e, cum);
  for (int64_t i = threadIdx.x; i < v.len; i += blockDim.x) e[i] = expf(cum[i]);
  __syncthreads();
  if (threadIdx.x == 0) decays[blockIdx.x] = expf(cum[v.len - 1]);
  float* q = state_grads + static_cast<int64_t>(blockIdx.x) * l.p * l.n;
  // Q (P x N) = dy^T (P x len) times (e C) (len x N)
  const GemmTerm terms[1] = {{columns_of(dy + l.xi(v.b, v.t0, v.h), l.heads * l.p),
                              columns_of(cm + l.bci(v.b, v.t0, v.g), l.groups * l.n, e), v.len, Band::Full}};
  const int64_t n = l.n;
  block_gemm<kVec, false>(l.p, l.n, terms, false, tiles, [&](int64_t p, int64_t k, float acc) { q[p * n + k] = acc; });
}

// Backward phase 2 (blocks over (b, h) x slices of the state, one thread per state element): the
// reverse pass over chunks. Replaces each chunk's Q by the gradient of the state LEAVING that chunk
// (dfinal_state for the last one); the gradient of the state entering chunk c is decay(c) *
// leaving(c) + Q(c), which leaves chunk 0 as dinitial_state.
__global__ void ssd_state_grad_pass_kernel(SsdDev l, float* state_grads, const float* decays,
                                           const float* dfinal_state, float* dinitial_state) {
  const int64_t b = blockIdx.x / l.heads, h = blockIdx.x % l.heads, pn = l.p * l.n;
  const float* decay = decays + static_cast<int64_t>(blockIdx.x) * l.chunks;
  float* grads = state_grads + static_cast<int64_t>(blockIdx.x) * l.chunks * pn;
  const int64_t idx = static_cast<int64_t>(blockIdx.y) * blockDim.x + threadIdx.x;
  if (idx < pn) {
    float carry = dfinal_state ? dfinal_state[l.fi(b, h) + idx] : 0.0f;
    float q_next = grads[(l.chunks - 1) * pn + idx];
    for (int64_t c = l.chunks - 1; c >= 0; --c) {
      const float q = q_next;
      if (c > 0) q_next = grads[(c - 1) * pn + idx];  // loaded before this chunk's store
      grads[c * pn + idx] = carry;
      carry = decay[c] * carry + q;
    }
    if (dinitial_state) dinitial_state[l.fi(b, h) + idx] = carry;
  }
}

// Backward phase 3 (one block per chunk): every other gradient of the chunk, given the gradient of
// the state leaving it (dh) and the state entering it (h0). The products go through block_gemm:
//   dx = D dy + dt (E^T dy) + exp(last - cum) dt (B dh^T)
//   dC = (exp(cum) dy) h0 + (FS dt) B            dB = (exp(last - cum) dt x) dh + (FS dt)^T C
// with E = C B^T and FS = dy x^T, both times exp(cum[i] - cum[s]) and masked to s <= i.
// (128 registers at most: two blocks per SM)
__global__ void __launch_bounds__(kThreads, 2)
    ssd_chunk_backward_kernel(SsdDev l, SsdGrads gr, const float* dy, const float* x, const float* dt_raw,
                              const float* dt_bias, const float* a_log, const float* bm, const float* cm,
                              const float* d, const float* dt, const float* chunk_states, const float* state_grads,
                              float* cb_scratch, float* ds_scratch, float* fs_scratch, float* uv_scratch) {
  extern __shared__ float shared[];
  __shared__ double reduce[32];
  __shared__ __align__(16) float tiles[kGemmFloats];
  const int64_t L = l.chunk;
  float* cum = shared;
  float* dts = shared + L;
  float* dcum = shared + 2 * L;
  float* ddt = shared + 3 * L;
  float* vv = shared + 4 * L;
  float* ecum = shared + 5 * L;   // exp(cum[i])
  float* wdt = shared + 6 * L;    // exp(last - cum[s]) dt[s]
  const SsdChunk v = ssd_chunk_of_block(l);
  const int64_t b = v.b, h = v.h, g = v.g, t0 = v.t0, len = v.len;
  const int64_t pn = l.p * l.n;
  const float A = -expf(a_log[h]);
  const float D = d ? d[h] : 0.0f;
  float* CB = cb_scratch + static_cast<int64_t>(blockIdx.x) * L * L;
  float* DS = ds_scratch + static_cast<int64_t>(blockIdx.x) * L * L;
  float* FS = fs_scratch + static_cast<int64_t>(blockIdx.x) * L * L;  // DS with the decay, times dt[s]
  float* U = uv_scratch + static_cast<int64_t>(blockIdx.x) * 2 * L * l.p;  // U[s,p] = (B dh^T)[s, p]
  float* V = U + L * l.p;                                                  // V[i,p] = (C h0^T)[i, p]
  const float* dh = state_grads + static_cast<int64_t>(blockIdx.x) * pn;
  const float* h0 = chunk_states + l.si(b, v.c, h);
  auto x_at = [&](int64_t i) { return x + l.xi(b, t0 + i, h); };
  auto dy_at = [&](int64_t i) { return dy + l.xi(b, t0 + i, h); };
  ssd_load_chunk_decay(l, v, dt, A, dts, cum);
  const float last = cum[len - 1];
  const float e_last = expf(last);
  for (int64_t i = threadIdx.x; i < len; i += blockDim.x) {
    ecum[i] = expf(cum[i]);
    wdt[i] = expf(last - cum[i]) * dts[i];
  }
  const int64_t bc_stride = l.groups * l.n, xy_stride = l.heads * l.p, p_dim = l.p;
  const float* b_chunk = bm + l.bci(b, t0, g);
  const float* c_chunk = cm + l.bci(b, t0, g);
  const float* x_chunk = x_at(0);
  const float* dy_chunk = dy_at(0);
  // CB and DS (lower triangles), then E = CB * decay in place and FS = DS * decay * dt[s], both
  // zero above the diagonal; DS stays as is.
  const GemmTerm cb[1] = {{rows_of(c_chunk, bc_stride), rows_of(b_chunk, bc_stride), l.n, Band::Full}};
  block_gemm<false, false>(len, len, cb, true, tiles, [&](int64_t i, int64_t s, float acc) { CB[i * L + s] = acc; });
  const GemmTerm ds[1] = {{rows_of(dy_chunk, xy_stride), rows_of(x_chunk, xy_stride), l.p, Band::Full}};
  block_gemm<false, false>(len, len, ds, true, tiles, [&](int64_t i, int64_t s, float acc) { DS[i * L + s] = acc; });
  const GemmTerm u[1] = {{rows_of(b_chunk, bc_stride), rows_of(dh, l.n), l.n, Band::Full}};
  block_gemm<false, false>(len, l.p, u, false, tiles, [&](int64_t s, int64_t p, float acc) { U[s * p_dim + p] = acc; });
  const GemmTerm vt[1] = {{rows_of(c_chunk, bc_stride), rows_of(h0, l.n), l.n, Band::Full}};
  block_gemm<false, false>(len, l.p, vt, false, tiles,
                           [&](int64_t i, int64_t p, float acc) { V[i * p_dim + p] = acc; });
  __syncthreads();
  for (int64_t idx = threadIdx.x; idx < len * len; idx += blockDim.x) {
    const int64_t i = idx / len, s = idx % len;
    if (s <= i) {
      const float decay = expf(cum[i] - cum[s]);
      CB[i * L + s] *= decay;
      FS[i * L + s] = DS[i * L + s] * decay * dts[s];
    } else {
      CB[i * L + s] = 0.0f;
      FS[i * L + s] = 0.0f;
    }
  }
  for (int64_t s = threadIdx.x; s < len; s += blockDim.x) {
    const float* xs = x_at(s);
    float val = 0.0f;
    for (int64_t p = 0; p < l.p; ++p) val += xs[p] * U[s * l.p + p];
    vv[s] = val;
  }
  __syncthreads();
  // dx (owned by this block)
  const GemmTerm dx_terms[1] = {{columns_of(CB, L), columns_of(dy_chunk, xy_stride), len, Band::Upper}};
  float* dx_chunk = gr.dx + l.xi(b, t0, h);
  block_gemm<false, false>(len, l.p, dx_terms, false, tiles, [&](int64_t s, int64_t p, float acc) {
    dx_chunk[s * xy_stride + p] = D * dy_chunk[s * xy_stride + p] + dts[s] * acc + wdt[s] * U[s * p_dim + p];
  });
  // dC and dB (shared by the group's heads)
  const GemmTerm dc_terms[2] = {{rows_of(dy_chunk, xy_stride, ecum), columns_of(h0, l.n), l.p, Band::Full},
                                {rows_of(FS, L), columns_of(b_chunk, bc_stride), len, Band::Lower}};
  float* dc_chunk = gr.dc + l.bci(b, t0, g);
  block_gemm<false, false>(len, l.n, dc_terms, false, tiles,
                           [&](int64_t i, int64_t k, float acc) { atomicAdd(dc_chunk + i * bc_stride + k, acc); });
  const GemmTerm db_terms[2] = {{rows_of(x_chunk, xy_stride, wdt), columns_of(dh, l.n), l.p, Band::Full},
                                {columns_of(FS, L), columns_of(c_chunk, bc_stride), len, Band::Upper}};
  float* db_chunk = gr.db + l.bci(b, t0, g);
  block_gemm<false, false>(len, l.n, db_terms, false, tiles,
                           [&](int64_t s, int64_t k, float acc) { atomicAdd(db_chunk + s * bc_stride + k, acc); });
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
  // The reverse running sum over the chunk is sequential (thread 0); the dt gradients are not.
  __shared__ double dA_total;
  if (threadIdx.x == 0) {
    float extra = e_last * static_cast<float>(hh);
    for (int64_t s = 0; s < len; ++s) extra += wdt[s] * vv[s];
    dcum[len - 1] += extra;
    float da = 0.0f;
    double dA_acc = 0.0;
    for (int64_t r = len - 1; r >= 0; --r) {
      da += dcum[r];
      ddt[r] += da * A;
      dA_acc += static_cast<double>(da) * dts[r];
    }
    dA_total = dA_acc;
  }
  __syncthreads();
  double ddt_bias_local = 0.0;
  for (int64_t r = threadIdx.x; r < len; r += blockDim.x) {
    const int64_t idx = l.ti(b, t0 + r, h);
    bool passes = true;
    l.dt_value(dt_raw[idx], dt_bias[h], &passes);
    const float g_raw = passes ? ddt[r] * dev_sigmoid(dt_raw[idx] + dt_bias[h]) : 0.0f;
    gr.ddt_raw[idx] = g_raw;
    ddt_bias_local += g_raw;
  }
  const double ddt_bias_total = block_sum(ddt_bias_local, reduce);
  if (threadIdx.x == 0) {
    atomicAdd(gr.da_log + h, static_cast<float>(dA_total * A));
    atomicAdd(gr.ddt_bias + h, static_cast<float>(ddt_bias_total));
    if (d && gr.dd) atomicAdd(gr.dd + h, static_cast<float>(dD_total));
  }
}

// Backward phase 3, grouped (the default; STRATA_CUDA_SSD=tiled selects the kernel above): one block
// per (batch, group, chunk) walks the group's heads in order, so dB and dC are owned by one block and
// written without atomics (the first head stores, the others add: the same thread owns the same
// output for every head, see block_gemm), C B^T is computed once for the group (cbraw), and every
// per-row pass is one warp per row with coalesced loads: the masked products of E = C B^T and
// D S = dy x^T give their row sums (warp shuffles) and column sums (a row of colpart per warp, summed
// in warp order). The per-head parameter gradients go to partials[(b, h, c)] = (dA_log, ddt_bias, dD),
// summed in a fixed order by ssd_param_grads_kernel: the whole backward is deterministic.
// Shared: 9 L floats + 8 L column partials (kThreads / 32 warps): ssd_group_shared_bytes.
template <bool kMma>
__global__ void __launch_bounds__(kThreads, 2)
    ssd_chunk_backward_group_kernel(SsdDev l, SsdGrads gr, const float* dy, const float* x, const float* dt_raw,
                                    const float* dt_bias, const float* a_log, const float* bm, const float* cm,
                                    const float* d, const float* dt, const float* chunk_states,
                                    const float* state_grads, float* cbraw_scratch, float* cb_scratch,
                                    float* ds_scratch, float* fs_scratch, float* uv_scratch, double* partials) {
  extern __shared__ float shared[];
  __shared__ double reduce[32];
  __shared__ __align__(16) float tiles[kGemmFloats];
  __shared__ double dA_total;
  const int64_t L = l.chunk;
  float* cum = shared;
  float* dts = shared + L;
  float* dcum = shared + 2 * L;
  float* ddt = shared + 3 * L;
  float* vv = shared + 4 * L;     // x[s] . U[s]
  float* ecum = shared + 5 * L;   // exp(cum[i])
  float* wdt = shared + 6 * L;    // exp(last - cum[s]) dt[s]
  float* inter = shared + 7 * L;  // dy[i] . V[i]
  float* rsum = shared + 8 * L;   // sum_{s <= i} M[i,s] dt[s], M = DS * E (E with the decay)
  float* colpart = shared + 9 * L;  // [warp][s]: that warp's rows' sum of M[i,s]
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  const int64_t bg = blockIdx.x / l.chunks, c = blockIdx.x % l.chunks;
  const int64_t b = bg / l.groups, g = bg % l.groups, hpg = l.hpg();
  const int64_t t0 = c * L, len = min(L, l.t_len - t0), pn = l.p * l.n;
  const int64_t bc_stride = l.groups * l.n, xy_stride = l.heads * l.p, p_dim = l.p;
  float* CBraw = cbraw_scratch + static_cast<int64_t>(blockIdx.x) * L * L;  // C B^T, shared by the heads
  float* CB = cb_scratch + static_cast<int64_t>(blockIdx.x) * L * L;        // times the decay, masked
  float* DS = ds_scratch + static_cast<int64_t>(blockIdx.x) * L * L;
  float* FS = fs_scratch + static_cast<int64_t>(blockIdx.x) * L * L;  // DS with the decay, times dt[s]
  float* U = uv_scratch + static_cast<int64_t>(blockIdx.x) * 2 * L * l.p;  // U[s,p] = (B dh^T)[s, p]
  float* V = U + L * l.p;                                                  // V[i,p] = (C h0^T)[i, p]
  const float* b_chunk = bm + l.bci(b, t0, g);
  const float* c_chunk = cm + l.bci(b, t0, g);
  float* dc_chunk = gr.dc + l.bci(b, t0, g);
  float* db_chunk = gr.db + l.bci(b, t0, g);
  const GemmTerm cb[1] = {{rows_of(c_chunk, bc_stride), rows_of(b_chunk, bc_stride), l.n, Band::Full}};
  block_gemm<true, kMma>(len, len, cb, true, tiles, [&](int64_t i, int64_t s, float acc) { CBraw[i * L + s] = acc; });
  for (int64_t hh = 0; hh < hpg; ++hh) {
    const int64_t h = g * hpg + hh;
    const bool first = hh == 0;
    const SsdChunk v{b, h, g, c, t0, len};
    const int64_t bhc = (b * l.heads + h) * l.chunks + c;  // the block index of the per-head kernels
    const float A = -expf(a_log[h]);
    const float D = d ? d[h] : 0.0f;
    const float* dh = state_grads + bhc * pn;
    const float* h0 = chunk_states + l.si(b, c, h);
    const float* x_chunk = x + l.xi(b, t0, h);
    const float* dy_chunk = dy + l.xi(b, t0, h);
    __syncthreads();  // the previous head's shared values are no longer read
    ssd_load_chunk_decay(l, v, dt, A, dts, cum);
    const float last = cum[len - 1];
    const float e_last = expf(last);
    for (int64_t i = threadIdx.x; i < len; i += blockDim.x) {
      ecum[i] = expf(cum[i]);
      wdt[i] = expf(last - cum[i]) * dts[i];
    }
    const GemmTerm ds[1] = {{rows_of(dy_chunk, xy_stride), rows_of(x_chunk, xy_stride), l.p, Band::Full}};
    block_gemm<true, kMma>(len, len, ds, true, tiles, [&](int64_t i, int64_t s, float acc) { DS[i * L + s] = acc; });
    const GemmTerm u[1] = {{rows_of(b_chunk, bc_stride), rows_of(dh, l.n), l.n, Band::Full}};
    block_gemm<true, kMma>(len, l.p, u, false, tiles, [&](int64_t s, int64_t p, float acc) { U[s * p_dim + p] = acc; });
    const GemmTerm vt[1] = {{rows_of(c_chunk, bc_stride), rows_of(h0, l.n), l.n, Band::Full}};
    block_gemm<true, kMma>(len, l.p, vt, false, tiles,
                           [&](int64_t i, int64_t p, float acc) { V[i * p_dim + p] = acc; });
    __syncthreads();
    // One warp per row i: E and FS (zero above the diagonal), the row and column sums of M, and the
    // row dot products vv, inter and dy . x.
    float* my_cols = colpart + warp * L;
    for (int64_t s = lane; s < len; s += 32) my_cols[s] = 0.0f;
    double dD_local = 0.0;
    for (int64_t i = warp; i < len; i += warps) {
      float row = 0.0f;
      for (int64_t s = lane; s < len; s += 32) {
        if (s <= i) {
          const float decay = expf(cum[i] - cum[s]);
          const float e = CBraw[i * L + s] * decay, dsv = DS[i * L + s];
          const float m = dsv * e;
          CB[i * L + s] = e;
          FS[i * L + s] = dsv * decay * dts[s];
          row += m * dts[s];
          my_cols[s] += m;
        } else {
          CB[i * L + s] = 0.0f;
          FS[i * L + s] = 0.0f;
        }
      }
      const float* xi = x_chunk + i * xy_stride;
      const float* dyi = dy_chunk + i * xy_stride;
      float xu = 0.0f, dyv = 0.0f, dyx = 0.0f;
      for (int64_t p = lane; p < l.p; p += 32) {
        const float xp = xi[p], dyp = dyi[p];
        xu += xp * U[i * p_dim + p];
        dyv += dyp * V[i * p_dim + p];
        dyx += dyp * xp;
      }
      row = warp_sum(row);
      xu = warp_sum(xu);
      dyv = warp_sum(dyv);
      dyx = warp_sum(dyx);
      if (lane == 0) {
        rsum[i] = row;
        vv[i] = xu;
        inter[i] = dyv;
        dD_local += dyx;
      }
    }
    __syncthreads();
    // per-time scalars: gradient of the cumulative decay and of dt
    for (int64_t i = threadIdx.x; i < len; i += blockDim.x) {
      float col = 0.0f;
      for (int w = 0; w < warps; ++w) col += colpart[w * L + i];
      const float w_i = expf(last - cum[i]);
      dcum[i] = ecum[i] * inter[i] + rsum[i] - col * dts[i] - w_i * dts[i] * vv[i];
      ddt[i] = col + w_i * vv[i];
    }
    // dx (owned by this block)
    const GemmTerm dx_terms[1] = {{columns_of(CB, L), columns_of(dy_chunk, xy_stride), len, Band::Upper}};
    float* dx_chunk = gr.dx + l.xi(b, t0, h);
    block_gemm<true, kMma>(len, l.p, dx_terms, false, tiles, [&](int64_t s, int64_t p, float acc) {
      dx_chunk[s * xy_stride + p] = D * dy_chunk[s * xy_stride + p] + dts[s] * acc + wdt[s] * U[s * p_dim + p];
    });
    // dC and dB: owned by this block, summed over the group's heads in order
    const GemmTerm dc_terms[2] = {{rows_of(dy_chunk, xy_stride, ecum), columns_of(h0, l.n), l.p, Band::Full},
                                  {rows_of(FS, L), columns_of(b_chunk, bc_stride), len, Band::Lower}};
    block_gemm<true, kMma>(len, l.n, dc_terms, false, tiles, [&](int64_t i, int64_t k, float acc) {
      float* o = dc_chunk + i * bc_stride + k;
      *o = first ? acc : *o + acc;
    });
    const GemmTerm db_terms[2] = {{rows_of(x_chunk, xy_stride, wdt), columns_of(dh, l.n), l.p, Band::Full},
                                  {columns_of(FS, L), columns_of(c_chunk, bc_stride), len, Band::Upper}};
    block_gemm<true, kMma>(len, l.n, db_terms, false, tiles, [&](int64_t s, int64_t k, float acc) {
      float* o = db_chunk + s * bc_stride + k;
      *o = first ? acc : *o + acc;
    });
    double hh_dot = 0.0;
    for (int64_t idx = threadIdx.x; idx < pn; idx += blockDim.x) hh_dot += static_cast<double>(dh[idx]) * h0[idx];
    hh_dot = block_sum(hh_dot, reduce);  // synchronizes: dcum / ddt are complete after this
    const double dD_total = block_sum(dD_local, reduce);
    // The reverse running sum over the chunk is sequential (thread 0); the dt gradients are not.
    if (threadIdx.x == 0) {
      float extra = e_last * static_cast<float>(hh_dot);
      for (int64_t s = 0; s < len; ++s) extra += wdt[s] * vv[s];
      dcum[len - 1] += extra;
      float da = 0.0f;
      double dA_acc = 0.0;
      for (int64_t r = len - 1; r >= 0; --r) {
        da += dcum[r];
        ddt[r] += da * A;
        dA_acc += static_cast<double>(da) * dts[r];
      }
      dA_total = dA_acc;
    }
    __syncthreads();
    double ddt_bias_local = 0.0;
    for (int64_t r = threadIdx.x; r < len; r += blockDim.x) {
      const int64_t idx = l.ti(b, t0 + r, h);
      bool passes = true;
      l.dt_value(dt_raw[idx], dt_bias[h], &passes);
      const float g_raw = passes ? ddt[r] * dev_sigmoid(dt_raw[idx] + dt_bias[h]) : 0.0f;
      gr.ddt_raw[idx] = g_raw;
      ddt_bias_local += g_raw;
    }
    const double ddt_bias_total = block_sum(ddt_bias_local, reduce);
    if (threadIdx.x == 0) {
      partials[bhc * 3 + 0] = dA_total * A;
      partials[bhc * 3 + 1] = ddt_bias_total;
      partials[bhc * 3 + 2] = dD_total;
    }
  }
}

// The per-head parameter gradients of the grouped backward: one thread per head sums its (b, c)
// partials in order and adds them to da_log, ddt_bias and (when given) dd.
__global__ void ssd_param_grads_kernel(SsdDev l, SsdGrads gr, const double* partials, bool has_d) {
  const int64_t h = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (h >= l.heads) return;
  double sums[3] = {0.0, 0.0, 0.0};
  for (int64_t b = 0; b < l.bsz; ++b) {
    for (int64_t c = 0; c < l.chunks; ++c) {
      const double* q = partials + ((b * l.heads + h) * l.chunks + c) * 3;
      for (int j = 0; j < 3; ++j) sums[j] += q[j];
    }
  }
  gr.da_log[h] += static_cast<float>(sums[0]);
  gr.ddt_bias[h] += static_cast<float>(sums[1]);
  if (has_d && gr.dd) gr.dd[h] += static_cast<float>(sums[2]);
}

// STRATA_CUDA_SSD, read once (kept for the A/B of the next GPU visit): "tiled" runs the per-head
// kernels with scalar tile loads and fp32 products (the previous path), "fp32" the grouped kernels
// with fp32 products in every GEMM mode; unset: grouped, bf16 tensor-core chunk products unless the
// GEMM mode is fp32.
enum class SsdEnv { Default, Tiled, Fp32 };
SsdEnv ssd_env() {
  static const SsdEnv mode = [] {
    const char* env = std::getenv("STRATA_CUDA_SSD");
    const std::string v = env ? env : "";
    return v == "tiled" ? SsdEnv::Tiled : v == "fp32" ? SsdEnv::Fp32 : SsdEnv::Default;
  }();
  return mode;
}
// The grouped SSD kernels (ssd_chunk_output_group_kernel, ssd_chunk_backward_group_kernel) run unless
// STRATA_CUDA_SSD=tiled, or the (batch, group, chunk) blocks are too few to fill the GPU twice while
// the per-head blocks would (few groups of many heads: each grouped block walks all its heads); the
// grouped backward also needs its shared memory (9 L floats + one row of L column partials per warp)
// to fit in 48 KB.
bool ssd_grouped(const SsdDev& l) {
  if (ssd_env() == SsdEnv::Tiled) return false;
  int device = 0, sms = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess) {
    return false;
  }
  const int64_t group_blocks = l.bsz * l.groups * l.chunks, head_blocks = l.bsz * l.heads * l.chunks;
  return l.heads == l.groups || group_blocks >= 2 * sms || head_blocks < 2 * sms;
}
std::size_t ssd_group_shared_bytes(int64_t chunk) {
  return static_cast<std::size_t>((9 + kThreads / 32) * chunk) * sizeof(float);
}
bool ssd_use_grouped_backward(const SsdDev& l) {
  const std::size_t static_bytes = kGemmFloats * sizeof(float) + 64 * sizeof(double);
  return ssd_grouped(l) && ssd_group_shared_bytes(l.chunk) + static_bytes <= 48 * 1024;
}

const float* opt(const Tensor& t) { return t.defined() ? t.data : nullptr; }
float* opt_mut(const Tensor& t) { return t.defined() ? t.data : nullptr; }

}  // namespace

namespace {
// Runs launch(std::integral_constant<int, K>) for the kernel width k (1..kConvMaxTaps).
template <typename Launch>
void with_taps(int64_t k, const char* op, Launch&& launch) {
  STRATA_CHECK(k >= 1 && k <= kConvMaxTaps, op, ": kernel width ", k, " is outside the 1..", kConvMaxTaps,
               " taps this backend supports");
  switch (k) {
    case 1: launch(std::integral_constant<int, 1>{}); break;
    case 2: launch(std::integral_constant<int, 2>{}); break;
    case 3: launch(std::integral_constant<int, 3>{}); break;
    case 4: launch(std::integral_constant<int, 4>{}); break;
    case 5: launch(std::integral_constant<int, 5>{}); break;
    case 6: launch(std::integral_constant<int, 6>{}); break;
    case 7: launch(std::integral_constant<int, 7>{}); break;
    default: launch(std::integral_constant<int, 8>{}); break;
  }
}
}  // namespace

void CudaBackend::conv1d_forward(const Conv1dFwd& a) {
  const char* op = "cuda conv1d_forward";
  const int64_t bsz = a.x.size(0), t_len = a.x.size(1), c_len = a.x.size(2), k = a.w.size(1);
  if (a.x.numel() == 0) return;
  const ConvTiles d = conv_tiles(bsz, t_len, c_len, {a.y.data, a.x.data});
  STRATA_CHECK((d.tiles + 7) / 8 <= 65535, op, ": ", bsz, " x ", t_len, " rows are more than this backend tiles");
  with_taps(k, op, [&](auto taps) {
    conv1d_forward_kernel<decltype(taps)::value><<<conv_tile_grid(d), dim3(32, 8), 0, state_->stream>>>(
        a.y.data, a.x.data, a.w.data, opt(a.bias), d, a.silu);
  });
  finish_op(op, a.y.name.c_str());
}

void CudaBackend::conv1d_backward(const Conv1dBwd& a) {
  const char* op = "cuda conv1d_backward";
  const int64_t bsz = a.x.size(0), t_len = a.x.size(1), c_len = a.x.size(2), k = a.w.size(1);
  if (a.x.numel() == 0) return;
  STRATA_CHECK(a.dx.data != a.dy.data && a.dx.data != a.x.data, op, ": dx must not share memory with dy or x");
  const ConvTiles d = conv_tiles(bsz, t_len, c_len, {a.dx.data, a.dy.data, a.x.data});
  STRATA_CHECK((d.tiles + 7) / 8 <= 65535, op, ": ", bsz, " x ", t_len, " rows are more than this backend tiles");
  const dim3 grid = conv_tile_grid(d);
  const int64_t slices = grid.y, cols = c_len * (k + 1);
  const bool sums = a.dw.defined() || a.dbias.defined();
  double* partials = sums ? state_->scratch_as<double>(3, slices * cols, op) : nullptr;
  with_taps(k, op, [&](auto taps) {
    conv1d_backward_kernel<decltype(taps)::value><<<grid, dim3(32, 8), 0, state_->stream>>>(
        a.dx.data, partials, a.dy.data, a.x.data, a.w.data, opt(a.bias), d, a.silu);
  });
  op_phase(*state_, op, "dx");
  if (sums) {
    add_column_partials<<<grid_for(cols), kThreads, 0, state_->stream>>>(
        partials, slices, cols, ConvDwSink{opt_mut(a.dw), opt_mut(a.dbias), c_len, k});
  }
  finish_op(op, "dw");
}

void CudaBackend::ssd_forward(const SsdFwd& a) {
  const char* op = "cuda ssd_forward";
  const SsdDev l = ssd_dims(a.x, a.b, a.params);
  if (l.t_len == 0 || l.bsz * l.heads == 0) return;
  const int64_t heads_total = l.bsz * l.heads, blocks = heads_total * l.chunks;
  const int64_t group_blocks = l.bsz * l.groups * l.chunks, ll = l.chunk * l.chunk;
  // grouped: coef of every (b, g, c) block, then C B^T of every block
  const bool grouped = ssd_grouped(l);
  float* coef = state_->scratch_as<float>(2, grouped ? 2 * group_blocks * ll : blocks * ll, op);
  float* decays = state_->scratch_as<float>(4, blocks, op);
  const std::size_t shared2 = static_cast<std::size_t>(2 * l.chunk) * sizeof(float);
  const std::size_t shared3 = static_cast<std::size_t>(3 * l.chunk) * sizeof(float);
  const dim3 pass_grid(static_cast<unsigned>(heads_total),
                       static_cast<unsigned>((l.p * l.n + kThreads - 1) / kThreads));
  cudaStream_t stream = state_->stream;
  ssd_dt_kernel<<<grid_for(l.bsz * l.t_len * l.heads), kThreads, 0, stream>>>(l, a.dt.data, a.dt_raw.data,
                                                                              a.dt_bias.data);
  auto* const state_kernel = grouped ? ssd_chunk_state_kernel<true> : ssd_chunk_state_kernel<false>;
  state_kernel<<<static_cast<unsigned>(blocks), kThreads, shared2, stream>>>(
      l, a.chunk_states.data, opt_mut(a.final_state), decays, a.x.data, a.dt.data, a.a_log.data, a.b.data);
  op_phase(*state_, op, "chunk states");
  ssd_state_pass_kernel<<<pass_grid, kThreads, 0, stream>>>(
      l, a.chunk_states.data, opt_mut(a.final_state), decays, opt(a.initial_state));
  op_phase(*state_, op, "state pass");
  if (grouped) {
    const bool mma = effective_gemm_mode() != CudaGemmMode::Fp32 && ssd_env() != SsdEnv::Fp32;
    auto* const output_kernel = mma ? ssd_chunk_output_group_kernel<true> : ssd_chunk_output_group_kernel<false>;
    output_kernel<<<static_cast<unsigned>(group_blocks), kThreads, shared3, stream>>>(
        l, a.y.data, a.chunk_states.data, a.x.data, a.dt.data, a.a_log.data, a.b.data, a.c.data, opt(a.d),
        coef + group_blocks * ll, coef);
  } else {
    ssd_chunk_output_kernel<<<static_cast<unsigned>(blocks), kThreads, shared3, stream>>>(
        l, a.y.data, a.chunk_states.data, a.x.data, a.dt.data, a.a_log.data, a.b.data, a.c.data, opt(a.d), coef);
  }
  finish_op(op, "chunk outputs");
}

void CudaBackend::ssd_backward(const SsdBwd& a) {
  const char* op = "cuda ssd_backward";
  const SsdDev l = ssd_dims(a.x, a.b, a.params);
  if (l.t_len == 0 || l.bsz * l.heads == 0) return;
  const int64_t heads_total = l.bsz * l.heads, blocks = heads_total * l.chunks;
  const int64_t group_blocks = l.bsz * l.groups * l.chunks, ll = l.chunk * l.chunk;
  const bool grouped = ssd_use_grouped_backward(l);
  const int64_t chunk_blocks = grouped ? group_blocks : blocks;  // blocks of the chunk grads kernel
  float* state_grads = state_->scratch_as<float>(4, blocks * l.p * l.n, op);
  float* decays = state_->scratch_as<float>(5, blocks, op);
  float* cb = state_->scratch_as<float>(2, (grouped ? 2 : 1) * chunk_blocks * ll, op);
  float* ds = state_->scratch_as<float>(3, chunk_blocks * ll, op);
  float* fs = state_->scratch_as<float>(0, chunk_blocks * ll, op);
  // grouped: the (b, h, c) parameter partials (3 doubles = 6 floats each) first, then U and V
  const int64_t partial_floats = grouped ? 6 * blocks : 0;
  float* uv_base = state_->scratch_as<float>(1, partial_floats + chunk_blocks * 2 * l.chunk * l.p, op);
  float* uv = uv_base + partial_floats;
  cudaStream_t stream = state_->stream;
  SsdGrads gr{a.dx.data, a.ddt_raw.data, a.ddt_bias.data, a.da_log.data, a.db.data, a.dc.data, opt_mut(a.dd),
              opt_mut(a.dinitial_state)};
  const std::size_t shared2 = static_cast<std::size_t>(2 * l.chunk) * sizeof(float);
  const dim3 pass_grid(static_cast<unsigned>(heads_total),
                       static_cast<unsigned>((l.p * l.n + kThreads - 1) / kThreads));
  auto* const state_grad_kernel = grouped ? ssd_chunk_state_grad_kernel<true> : ssd_chunk_state_grad_kernel<false>;
  state_grad_kernel<<<static_cast<unsigned>(blocks), kThreads, shared2, stream>>>(
      l, state_grads, decays, a.dy.data, a.dt.data, a.a_log.data, a.c.data);
  op_phase(*state_, op, "chunk state grads");
  ssd_state_grad_pass_kernel<<<pass_grid, kThreads, 0, stream>>>(
      l, state_grads, decays, opt(a.dfinal_state), opt_mut(a.dinitial_state));
  op_phase(*state_, op, "state grad pass");
  if (grouped) {
    double* partials = reinterpret_cast<double*>(uv_base);
    const bool mma = effective_gemm_mode() != CudaGemmMode::Fp32 && ssd_env() != SsdEnv::Fp32;
    auto* const grads_kernel = mma ? ssd_chunk_backward_group_kernel<true> : ssd_chunk_backward_group_kernel<false>;
    grads_kernel<<<static_cast<unsigned>(group_blocks), kThreads, ssd_group_shared_bytes(l.chunk), stream>>>(
        l, gr, a.dy.data, a.x.data, a.dt_raw.data, a.dt_bias.data, a.a_log.data, a.b.data, a.c.data, opt(a.d),
        a.dt.data, a.chunk_states.data, state_grads, cb + group_blocks * ll, cb, ds, fs, uv, partials);
    op_phase(*state_, op, "chunk grads");
    ssd_param_grads_kernel<<<static_cast<unsigned>((l.heads + kThreads - 1) / kThreads), kThreads, 0, stream>>>(
        l, gr, partials, a.d.defined());
    finish_op(op, "param grads");
    return;
  }
  STRATA_CUDA_CHECK(cudaMemsetAsync(a.db.data, 0, a.db.numel() * sizeof(float), stream), op);
  STRATA_CUDA_CHECK(cudaMemsetAsync(a.dc.data, 0, a.dc.numel() * sizeof(float), stream), op);
  const std::size_t shared7 = static_cast<std::size_t>(7 * l.chunk) * sizeof(float);
  ssd_chunk_backward_kernel<<<static_cast<unsigned>(blocks), kThreads, shared7, stream>>>(
      l, gr, a.dy.data, a.x.data, a.dt_raw.data, a.dt_bias.data, a.a_log.data, a.b.data, a.c.data, opt(a.d),
      a.dt.data, a.chunk_states.data, state_grads, cb, ds, fs, uv);
  finish_op(op, "chunk grads");
}

}  // namespace strata
