// CUDA kernels of Mamba-2's depthwise causal conv1d (+ fused SiLU) over whole sequences, forward
// and backward (dx, and dw / dbias summed per block in double and added column-wise in order:
// deterministic). x and dx rows may lie x_ld / dx_ld elements apart (columns of a wider matrix);
// y (dy) is stored as up to 3 contiguous column parts (ConvParts).
// Formulas follow cpu/conv1d_cpu.cpp. Not here: the conv's single-token decode step
// (ssm_step_cuda.cu) or the SSD scan (ssd_cuda.cu).
//
// Shape legend: B batch, T time, C channels, K conv width (taps).
#include <cstdint>
#include <initializer_list>
#include <type_traits>

#include "../ops/conv1d.h"
#include "cuda_common.cuh"

namespace strata {
namespace {

// ---- conv1d ------------------------------------------------------------------------------------

// The forward and backward kernels run on tiles: thread (x, y) of a (32, 8) block owns 4 adjacent
// channels (float4 loads and stores when `vec` (a template parameter, so the float4 kernels carry no
// scalar-path registers): C, every row pitch and part width a multiple of 4 and 16-byte aligned
// tensors, else scalar) over one run of kConvTile time steps of one sequence (tile = blockIdx.y * 8 + y), keeping the
// last K inputs (and in backward the next K pre-activation gradients) in registers, so every input is
// read about once. K is a template parameter (1..kConvMaxTaps).
constexpr int64_t kConvTile = 16;
constexpr int kConvMaxTaps = 8;
constexpr int kConvAhead = 2;  // rows loaded ahead of use (memory-level parallelism per thread)
// The output y (dy in backward) as column parts: channels [end[i-1], end[i]) (end[-1] = 0) live in
// data[i], rows end[i] - end[i-1] wide; an absent part is empty (end[i] = end[i-1]).
struct ConvParts {
  float* data[3];
  int64_t end[3];
};
ConvParts conv_parts(const std::array<Tensor, 3>& parts) {
  ConvParts p{};
  int64_t end = 0;
  for (int i = 0; i < 3; ++i) {
    if (parts[i].defined()) end += parts[i].size(2);
    p.data[i] = parts[i].defined() ? parts[i].data : nullptr;
    p.end[i] = end;
  }
  return p;
}
// x_ld / dx_ld: row pitches (elements) of x and dx.
struct ConvTiles {
  int64_t t_len, c_len, x_ld, dx_ld, tiles_per_seq, tiles;
  bool vec;
};
ConvTiles conv_tiles(int64_t bsz, int64_t t_len, int64_t c_len, int64_t x_ld, int64_t dx_ld, const ConvParts& parts,
                     std::initializer_list<const float*> tensors) {
  bool vec = c_len % 4 == 0 && x_ld % 4 == 0 && dx_ld % 4 == 0;
  for (int i = 0; i < 3; ++i) {
    vec = vec && parts.end[i] % 4 == 0 && reinterpret_cast<uintptr_t>(parts.data[i]) % 16 == 0;
  }
  for (const float* t : tensors) vec = vec && reinterpret_cast<uintptr_t>(t) % 16 == 0;
  const int64_t tiles_per_seq = (t_len + kConvTile - 1) / kConvTile;
  return {t_len, c_len, x_ld, dx_ld, tiles_per_seq, bsz * tiles_per_seq, vec};
}
dim3 conv_tile_grid(const ConvTiles& d) {
  return dim3(static_cast<unsigned>((d.c_len + 127) / 128), static_cast<unsigned>((d.tiles + 7) / 8));
}

// Read-only inputs (x, dy) go through the non-coherent load path.
__device__ __forceinline__ float4 conv_load4(const float* p, int64_t c0, int64_t c_len, bool vec) {
  if (vec) return __ldg(reinterpret_cast<const float4*>(p + c0));
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
// Channel c of row r (= b*T + t) of a column-split tensor (c < C).
__device__ __forceinline__ float* part_at(const ConvParts& p, int64_t r, int64_t c) {
  const int i = c < p.end[0] ? 0 : c < p.end[1] ? 1 : 2;
  const int64_t begin = i == 0 ? 0 : i == 1 ? p.end[0] : p.end[1];
  const int64_t end = i == 0 ? p.end[0] : i == 1 ? p.end[1] : p.end[2];
  float* base = i == 0 ? p.data[0] : i == 1 ? p.data[1] : p.data[2];
  return base + r * (end - begin) + (c - begin);
}
// With vec the 4 channels c0..c0+3 of a thread share a part: row r of them starts at base + r * pitch
// (found once per thread; empty without vec).
struct PartColumn {
  float* base;
  int64_t pitch;
};
__device__ __forceinline__ PartColumn part_column(const ConvParts& p, int64_t c0, bool vec) {
  if (!vec) return {nullptr, 0};
  float* row0 = part_at(p, 0, c0);
  return {row0, part_at(p, 1, c0) - row0};
}
// Channels c0..c0+3 of row r (zeros / nothing past C).
__device__ __forceinline__ float4 part_load4(const ConvParts& p, const PartColumn& col, int64_t r, int64_t c0,
                                             int64_t c_len, bool vec) {
  if (vec) return __ldg(reinterpret_cast<const float4*>(col.base + r * col.pitch));
  float v[4];
  for (int l = 0; l < 4; ++l) v[l] = c0 + l < c_len ? *part_at(p, r, c0 + l) : 0.0f;
  return make_float4(v[0], v[1], v[2], v[3]);
}
__device__ __forceinline__ void part_store4(const ConvParts& p, const PartColumn& col, int64_t r, int64_t c0,
                                            int64_t c_len, bool vec, float4 v) {
  if (vec) {
    *reinterpret_cast<float4*>(col.base + r * col.pitch) = v;
    return;
  }
  const float e[4] = {v.x, v.y, v.z, v.w};
  for (int l = 0; l < 4; ++l)
    if (c0 + l < c_len) *part_at(p, r, c0 + l) = e[l];
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

template <int K, bool Vec>
__global__ void conv1d_forward_kernel(ConvParts y, const float* __restrict__ x, const float* w, const float* bias,
                                      ConvTiles d, bool silu) {
  const int64_t c0 = (static_cast<int64_t>(blockIdx.x) * 32 + threadIdx.x) * 4;
  const int64_t tile = static_cast<int64_t>(blockIdx.y) * 8 + threadIdx.y;
  if (c0 >= d.c_len || tile >= d.tiles) return;
  const int64_t seq = tile / d.tiles_per_seq, t0 = (tile % d.tiles_per_seq) * kConvTile;
  const int64_t t1 = min(d.t_len, t0 + kConvTile);
  const float* xs = x + seq * d.t_len * d.x_ld;
  const PartColumn ycol = part_column(y, c0, Vec);
  float4 wv[K], xw[K];
  conv_taps<K>(wv, w, c0, d.c_len);
  const float4 b4 = bias ? conv_load4(bias, c0, d.c_len, false) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
  for (int j = 0; j + 1 < K; ++j) {
    const int64_t t = t0 - (K - 1) + j;
    xw[j] = t >= 0 ? conv_load4(xs + t * d.x_ld, c0, d.c_len, Vec) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
  }
  float4 ahead[kConvAhead];  // x rows t .. t + kConvAhead - 1, loaded ahead of use
  for (int i = 0; i < kConvAhead; ++i) {
    ahead[i] = t0 + i < t1 ? conv_load4(xs + (t0 + i) * d.x_ld, c0, d.c_len, Vec) : make_float4(0.f, 0.f, 0.f, 0.f);
  }
  for (int64_t t = t0; t < t1; ++t) {
    xw[K - 1] = ahead[0];
    for (int i = 0; i + 1 < kConvAhead; ++i) ahead[i] = ahead[i + 1];
    const int64_t later = t + kConvAhead;
    if (later < t1) ahead[kConvAhead - 1] = conv_load4(xs + later * d.x_ld, c0, d.c_len, Vec);
    float4 v = conv_pre4<K>(wv, xw, b4);
    if (silu) v = make_float4(dev_silu(v.x), dev_silu(v.y), dev_silu(v.z), dev_silu(v.w));
    part_store4(y, ycol, seq * d.t_len + t, c0, d.c_len, Vec, v);
    for (int j = 0; j + 1 < K; ++j) xw[j] = xw[j + 1];
  }
}

// Backward of one tile, walking time downwards: g[s] = dL/d(pre)[s] = dy[s] silu'(pre[s]) (the K-1
// rows after the tile are recomputed, not counted), dx[s] = sum_j g[s+K-1-j] w[c,j], and per-thread
// sums over the tile's kConvTile rows of g[s] x[s-K+1+j] (dw) and g[s] (dbias). When partials is set
// the 8 tiles of a block are added in order in shared memory (double) and written as
// partials[blockIdx.y * (K+1) * C + j * C + c] (j == K: the bias), the column layout ConvDwSink
// reads after add_column_partials.
template <int K, bool Vec>
__global__ void conv1d_backward_kernel(float* __restrict__ dx, double* __restrict__ partials, ConvParts dy,
                                       const float* __restrict__ x, const float* w, const float* bias, ConvTiles d,
                                       bool silu) {
  __shared__ double shared[8][128];
  const int64_t c0 = (static_cast<int64_t>(blockIdx.x) * 32 + threadIdx.x) * 4;
  const int64_t tile = static_cast<int64_t>(blockIdx.y) * 8 + threadIdx.y;
  float acc[K + 1][4];
  for (int j = 0; j <= K; ++j)
    for (int l = 0; l < 4; ++l) acc[j][l] = 0.0f;
  if (c0 < d.c_len && tile < d.tiles) {
    const int64_t seq = tile / d.tiles_per_seq, t0 = (tile % d.tiles_per_seq) * kConvTile;
    const int64_t t1 = min(d.t_len, t0 + kConvTile), top = min(d.t_len, t1 + K - 1) - 1;
    const float* xs = x + seq * d.t_len * d.x_ld;
    const int64_t row0 = seq * d.t_len;  // dy row of t = 0
    const PartColumn dycol = part_column(dy, c0, Vec);
    float* dxs = dx + seq * d.t_len * d.dx_ld;
    const float4 zero = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    float4 wv[K], xw[K], gw[K];  // xw[j] = x[s-K+1+j], gw[i] = g[s+i] (zeros outside the sequence)
    conv_taps<K>(wv, w, c0, d.c_len);
    const float4 b4 = bias ? conv_load4(bias, c0, d.c_len, false) : zero;
    for (int j = 0; j < K; ++j) {
      const int64_t t = top - (K - 1) + j;
      xw[j] = t >= 0 ? conv_load4(xs + t * d.x_ld, c0, d.c_len, Vec) : zero;
      gw[j] = zero;
    }
    // dy rows s, s-1, ... and the x rows entering the window, s-K, s-K-1, ..., loaded ahead of use
    float4 dy_ahead[kConvAhead], x_ahead[kConvAhead];
    for (int i = 0; i < kConvAhead; ++i) {
      dy_ahead[i] = top - i >= t0 ? part_load4(dy, dycol, row0 + top - i, c0, d.c_len, Vec) : zero;
      x_ahead[i] = top - K - i >= 0 ? conv_load4(xs + (top - K - i) * d.x_ld, c0, d.c_len, Vec) : zero;
    }
    for (int64_t s = top; s >= t0; --s) {
      float4 g = dy_ahead[0];
      const float4 x_enter = x_ahead[0];
      for (int i = 0; i + 1 < kConvAhead; ++i) dy_ahead[i] = dy_ahead[i + 1], x_ahead[i] = x_ahead[i + 1];
      const int64_t later = s - kConvAhead;
      if (later >= t0) dy_ahead[kConvAhead - 1] = part_load4(dy, dycol, row0 + later, c0, d.c_len, Vec);
      x_ahead[kConvAhead - 1] = later - K >= 0 ? conv_load4(xs + (later - K) * d.x_ld, c0, d.c_len, Vec) : zero;
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
        conv_store4(dxs + s * d.dx_ld, c0, d.c_len, Vec, v);
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

const float* opt(const Tensor& t) { return t.defined() ? t.data : nullptr; }
float* opt_mut(const Tensor& t) { return t.defined() ? t.data : nullptr; }

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
  const ConvParts y = conv_parts(a.y_parts);
  const ConvTiles d = conv_tiles(bsz, t_len, c_len, a.x_ld, c_len, y, {a.x.data});
  STRATA_CHECK((d.tiles + 7) / 8 <= 65535, op, ": ", bsz, " x ", t_len, " rows are more than this backend tiles");
  with_taps(k, op, [&](auto taps) {
    constexpr int K = decltype(taps)::value;
    auto kernel = d.vec ? conv1d_forward_kernel<K, true> : conv1d_forward_kernel<K, false>;
    kernel<<<conv_tile_grid(d), dim3(32, 8), 0, state_->stream>>>(y, a.x.data, a.w.data, opt(a.bias), d, a.silu);
  });
  finish_op(op, a.y_parts[0].name.c_str());
}

void CudaBackend::conv1d_backward(const Conv1dBwd& a) {
  const char* op = "cuda conv1d_backward";
  const int64_t bsz = a.x.size(0), t_len = a.x.size(1), c_len = a.x.size(2), k = a.w.size(1);
  if (a.x.numel() == 0) return;
  const ConvParts dy = conv_parts(a.dy_parts);
  for (const Tensor& part : a.dy_parts) {
    STRATA_CHECK(a.dx.data != part.data, op, ": dx must not share memory with dy");
  }
  STRATA_CHECK(a.dx.data != a.x.data, op, ": dx must not share memory with x");
  const ConvTiles d = conv_tiles(bsz, t_len, c_len, a.x_ld, a.dx_ld, dy, {a.dx.data, a.x.data});
  STRATA_CHECK((d.tiles + 7) / 8 <= 65535, op, ": ", bsz, " x ", t_len, " rows are more than this backend tiles");
  const dim3 grid = conv_tile_grid(d);
  const int64_t slices = grid.y, cols = c_len * (k + 1);
  const bool sums = a.dw.defined() || a.dbias.defined();
  double* partials = sums ? state_->scratch_as<double>(3, slices * cols, op) : nullptr;
  with_taps(k, op, [&](auto taps) {
    constexpr int K = decltype(taps)::value;
    auto kernel = d.vec ? conv1d_backward_kernel<K, true> : conv1d_backward_kernel<K, false>;
    kernel<<<grid, dim3(32, 8), 0, state_->stream>>>(a.dx.data, partials, dy, a.x.data, a.w.data, opt(a.bias), d,
                                                      a.silu);
  });
  op_phase(*state_, op, "dx");
  if (sums) {
    add_column_partials<<<grid_for(cols), kThreads, 0, state_->stream>>>(
        partials, slices, cols, ConvDwSink{opt_mut(a.dw), opt_mut(a.dbias), c_len, k});
  }
  finish_op(op, "dw");
}

}  // namespace strata
