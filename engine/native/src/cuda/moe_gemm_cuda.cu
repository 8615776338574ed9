// CUDA grouped expert GEMM (ops/moe.h, MoeExpertGemm): every expert's rows in one launch, the row
// ranges read from the device copy of the routing plan's offsets, so the host never waits for them.
// Tiles of BM x BN outputs with BK-deep slices of both operands staged in shared memory:
//   bf16 (GEMM mode bf16 or fp8): fp32 operands are rounded to bf16 while staged, 16x16x16 WMMA
//        tensor-core products with fp32 accumulation (4 warps, 32 x 32 outputs each);
//   fp32 (GEMM mode fp32): the same tiles multiplied on CUDA cores in fp32 (the exact reference).
// Every sum runs in a fixed order (no atomics): the result does not depend on scheduling.
// Fprop / Dgrad: a 1-D list of (expert, row tile) pairs, found by each block from the offsets (the
// grid has ceil(R/BM) + E slots, the upper bound; empty slots exit); with few rows (decoding) the
// reduction is also split over grid.z into partial sums that a second kernel adds in order.
// With few rows in Fprop (decoding) a GEMV kernel instead: vector loads of each weight row once
// per 8 routed rows of its expert.
// Wgrad: one grid layer per expert, reducing over that expert's rows.
// Shapes (ops/moe.h): R routed rows, E experts, O / I out / in features of an expert linear.
// This file is not the router, the routing plan or the permutation (moe_cuda.cu), and not the
// dense GEMM (gemm_cuda.cu, cuBLASLt).
#include <cuda_bf16.h>
#include <mma.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <type_traits>

#include "../ops/moe.h"
#include "cuda_common.cuh"

namespace strata {
namespace {

constexpr int BM = 64, BN = 64, BK = 32, kGemmThreads = 128, kPad = 8;
enum GroupedError { kBadOffsets = 1 };

// Tile operand staged in shared memory: element (outer, inner) of a tile whose inner index is
// contiguous in global memory, stored at [outer][inner] with a padded row.
template <typename T, int OUTER, int INNER>
struct StagedTile {
  T v[OUTER][INNER + kPad];
};

template <typename T>
__device__ __forceinline__ T to_staged(float x) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    return __float2bfloat16_rn(x);
  } else {
    return x;
  }
}

// Loads an OUTER x INNER tile, src[o * ld + i] for o < outer_valid and i < inner_valid (else 0).
// Consecutive threads read consecutive inner elements (coalesced); each thread keeps one column i
// and walks the rows o0, o0 + kGemmThreads / INNER, ...
template <typename T, int OUTER, int INNER>
__device__ __forceinline__ void stage(StagedTile<T, OUTER, INNER>& dst, const float* src, int64_t ld,
                                      int outer_valid, int inner_valid) {
  constexpr int kPerThread = OUTER * INNER / kGemmThreads, kRowStep = kGemmThreads / INNER;
  const int i = threadIdx.x % INNER, o0 = threadIdx.x / INNER;
  const float* column = src + o0 * ld + i;
  const bool column_ok = i < inner_valid;
  float values[kPerThread];
#pragma unroll
  for (int j = 0; j < kPerThread; ++j) {
    values[j] = column_ok && o0 + j * kRowStep < outer_valid ? column[j * kRowStep * ld] : 0.0f;
  }
#pragma unroll
  for (int j = 0; j < kPerThread; ++j) dst.v[o0 + j * kRowStep][i] = to_staged<T>(values[j]);
}

// Where one block's operands come from. A (M x K) is K-contiguous (rows of x or dy) or
// M-contiguous (dy in Wgrad, read transposed); B (K x N) is K-contiguous (w rows in Fprop) or
// N-contiguous (w in Dgrad, x in Wgrad).
struct TileSource {
  const float* a;  // element (m, k) at a[m * lda + k] (K-contiguous) or a[k * lda + m]
  int64_t lda;
  const float* b;  // element (k, n) at b[n * ldb + k] (K-contiguous) or b[k * ldb + n]
  int64_t ldb;
  int m_valid, n_valid;  // rows / columns of this tile inside the problem
  int64_t k;             // reduction length
};

// Shared-memory layout of one block's operands for A / B contiguity.
template <typename T, bool A_K, bool B_K>
struct Operands {
  std::conditional_t<A_K, StagedTile<T, BM, BK>, StagedTile<T, BK, BM>> a;
  std::conditional_t<B_K, StagedTile<T, BN, BK>, StagedTile<T, BK, BN>> b;
};

template <typename T, bool A_K, bool B_K>
__device__ __forceinline__ void stage_slice(Operands<T, A_K, B_K>& s, const TileSource& t, int64_t k0) {
  const int k_valid = static_cast<int>(min(static_cast<int64_t>(BK), t.k - k0));
  if constexpr (A_K) {
    stage(s.a, t.a + k0, t.lda, t.m_valid, k_valid);
  } else {
    stage(s.a, t.a + k0 * t.lda, t.lda, k_valid, t.m_valid);
  }
  if constexpr (B_K) {
    stage(s.b, t.b + k0, t.ldb, t.n_valid, k_valid);
  } else {
    stage(s.b, t.b + k0 * t.ldb, t.ldb, k_valid, t.n_valid);
  }
}

// out[m * ldo + n] (+)= sum_k A(m,k) B(k,n) for the tile, in bf16 on tensor cores.
template <bool A_K, bool B_K>
__device__ void tile_product_bf16(const TileSource& t, float* out, int64_t ldo, bool accumulate) {
  using namespace nvcuda;
  __shared__ __align__(128) Operands<__nv_bfloat16, A_K, B_K> s;
  __shared__ __align__(128) float c_tile[BM][BN + 4];
  using ALayout = std::conditional_t<A_K, wmma::row_major, wmma::col_major>;
  using BLayout = std::conditional_t<B_K, wmma::col_major, wmma::row_major>;
  const int warp = threadIdx.x / 32, wm = warp / 2, wn = warp % 2;
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][2];
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 2; ++j) wmma::fill_fragment(acc[i][j], 0.0f);
  for (int64_t k0 = 0; k0 < t.k; k0 += BK) {
    stage_slice(s, t, k0);
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < BK; kk += 16) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, ALayout> fa[2];
      wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, BLayout> fb[2];
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        const int m = wm * 32 + i * 16;
        if constexpr (A_K) {
          wmma::load_matrix_sync(fa[i], &s.a.v[m][kk], BK + kPad);
        } else {
          wmma::load_matrix_sync(fa[i], &s.a.v[kk][m], BM + kPad);
        }
      }
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        const int n = wn * 32 + j * 16;
        if constexpr (B_K) {
          wmma::load_matrix_sync(fb[j], &s.b.v[n][kk], BK + kPad);
        } else {
          wmma::load_matrix_sync(fb[j], &s.b.v[kk][n], BN + kPad);
        }
      }
#pragma unroll
      for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int j = 0; j < 2; ++j) wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 2; ++j)
      wmma::store_matrix_sync(&c_tile[wm * 32 + i * 16][wn * 32 + j * 16], acc[i][j], BN + 4, wmma::mem_row_major);
  __syncthreads();
  for (int idx = threadIdx.x; idx < BM * BN; idx += kGemmThreads) {
    const int m = idx / BN, n = idx % BN;
    if (m >= t.m_valid || n >= t.n_valid) continue;
    float* dst = out + m * ldo + n;
    *dst = accumulate ? *dst + c_tile[m][n] : c_tile[m][n];
  }
}

// The same tile product in fp32 on CUDA cores: thread (ty, tx) of 8 x 16 owns rows ty*8..ty*8+7
// and columns tx + 16 j, j < 4.
template <bool A_K, bool B_K>
__device__ void tile_product_fp32(const TileSource& t, float* out, int64_t ldo, bool accumulate) {
  __shared__ __align__(128) Operands<float, A_K, B_K> s;
  const int ty = threadIdx.x / 16, tx = threadIdx.x % 16;
  float acc[8][4] = {};
  for (int64_t k0 = 0; k0 < t.k; k0 += BK) {
    stage_slice(s, t, k0);
    __syncthreads();
#pragma unroll 4
    for (int kk = 0; kk < BK; ++kk) {
      float av[8], bv[4];
#pragma unroll
      for (int i = 0; i < 8; ++i) av[i] = A_K ? s.a.v[ty * 8 + i][kk] : s.a.v[kk][ty * 8 + i];
#pragma unroll
      for (int j = 0; j < 4; ++j) bv[j] = B_K ? s.b.v[tx + 16 * j][kk] : s.b.v[kk][tx + 16 * j];
#pragma unroll
      for (int i = 0; i < 8; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 8; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int m = ty * 8 + i, n = tx + 16 * j;
      if (m >= t.m_valid || n >= t.n_valid) continue;
      float* dst = out + m * ldo + n;
      *dst = accumulate ? *dst + acc[i][j] : acc[i][j];
    }
}

template <bool BF16, bool A_K, bool B_K>
__device__ __forceinline__ void tile_product(const TileSource& t, float* out, int64_t ldo, bool accumulate) {
  if constexpr (BF16) {
    tile_product_bf16<A_K, B_K>(t, out, ldo, accumulate);
  } else {
    tile_product_fp32<A_K, B_K>(t, out, ldo, accumulate);
  }
}

// Rows of expert e, or false (and a report) when the offsets are not a valid plan of r rows.
__device__ __forceinline__ bool expert_rows(const int32_t* offsets, int64_t e, int64_t experts, int64_t r,
                                            int64_t* first, int64_t* count, DeviceErrorFlag* flag) {
  const int64_t lo = offsets[e], hi = offsets[e + 1];
  if (lo < 0 || hi < lo || hi > r || (e == experts - 1 && hi != r) || (e == 0 && lo != 0)) {
    if (threadIdx.x == 0) report_error(flag, kBadOffsets, e, hi);
    return false;
  }
  *first = lo;
  *count = hi - lo;
  return true;
}

// Fprop (DGRAD false): out (R,N) rows of e = a (R,K) rows of e @ w[e]^T, w[e] (N,K).
// Dgrad (DGRAD true):  out (R,N) rows of e = a (R,K) rows of e @ w[e],   w[e] (K,N).
// With split-K (few rows, as in decoding: grid.z > 1), layer z covers k in [z*k_split, (z+1)*k_split)
// and writes its partial sums to out + z*R*N; sum_partials adds the layers in order.
template <bool BF16, bool DGRAD>
__global__ void __launch_bounds__(kGemmThreads, 3) grouped_rows_kernel(float* out, const float* a, const float* w,
                                                                    const int32_t* offsets, int64_t experts,
                                                                    int64_t r, int64_t n, int64_t k, int64_t k_split,
                                                                    DeviceErrorFlag* flag) {
  // Which (expert, row tile) this slot is: walk the experts' tile counts.
  int64_t slot = blockIdx.x, e = 0, first = 0, rows = 0;
  for (; e < experts; ++e) {
    if (!expert_rows(offsets, e, experts, r, &first, &rows, flag)) return;
    const int64_t tiles = (rows + BM - 1) / BM;
    if (slot < tiles) break;
    slot -= tiles;
  }
  if (e == experts) return;
  const int64_t m0 = first + slot * BM, n0 = static_cast<int64_t>(blockIdx.y) * BN;
  const int64_t k0 = static_cast<int64_t>(blockIdx.z) * k_split;
  TileSource t;
  t.a = a + m0 * k + k0;
  t.lda = k;
  t.b = DGRAD ? w + e * k * n + k0 * n + n0 : w + e * n * k + n0 * k + k0;
  t.ldb = DGRAD ? n : k;
  t.m_valid = static_cast<int>(min(static_cast<int64_t>(BM), first + rows - m0));
  t.n_valid = static_cast<int>(min(static_cast<int64_t>(BN), n - n0));
  t.k = min(k_split, k - k0);
  tile_product<BF16, true, !DGRAD>(t, out + static_cast<int64_t>(blockIdx.z) * r * n + m0 * n + n0, n, false);
}

// out[i] = sum over the splits s (in order) of partials[s * count + i].
__global__ void sum_partials(float* out, const float* partials, int64_t count, int64_t splits) {
  STRATA_GRID_STRIDE(i, count) {
    float total = 0.0f;
    for (int64_t s = 0; s < splits; ++s) total += partials[s * count + i];
    out[i] = total;
  }
}

// Wgrad: out[e] (M,N) += a[rows of e]^T @ b[rows of e], a (R,M), b (R,N); grid.z = expert.
template <bool BF16>
__global__ void __launch_bounds__(kGemmThreads, 3) grouped_wgrad_kernel(float* out, const float* a, const float* b,
                                                                     const int32_t* offsets, int64_t experts,
                                                                     int64_t r, int64_t m, int64_t n,
                                                                     DeviceErrorFlag* flag) {
  const int64_t e = blockIdx.z;
  int64_t first = 0, rows = 0;
  if (!expert_rows(offsets, e, experts, r, &first, &rows, flag) || rows == 0) return;
  const int64_t m0 = static_cast<int64_t>(blockIdx.y) * BM, n0 = static_cast<int64_t>(blockIdx.x) * BN;
  TileSource t;
  t.a = a + first * m + m0;
  t.lda = m;
  t.b = b + first * n + n0;
  t.ldb = n;
  t.m_valid = static_cast<int>(min(static_cast<int64_t>(BM), m - m0));
  t.n_valid = static_cast<int>(min(static_cast<int64_t>(BN), n - n0));
  t.k = rows;
  tile_product<BF16, false, false>(t, out + e * m * n + m0 * n + n0, n, true);
}

// Fprop for few routed rows (decoding), a GEMV per expert: block (feature group, expert) computes
// kGemvWarps x kGemvFeatures output features of all the expert's rows. The rows' activations stage
// in shared memory (kGemvRows rows x kGemvChunk inputs at a time); lane l of a warp reads 16 bytes
// of each of its features' weight rows at inputs 4l, 4l + 128, ... (coalesced, weights read once
// per kGemvRows rows), accumulates every staged row, and the warp sums its lanes at the end (fixed
// order). In bf16 mode both operands are rounded to bf16 as the tensor-core path does; products and
// sums stay fp32. Needs K a multiple of 4 and 16-byte aligned operands.
constexpr int kGemvRows = 8, kGemvChunk = 1024, kGemvWarps = 4, kGemvFeatures = 4;

template <bool BF16>
__device__ __forceinline__ float4 gemv_operand(float4 v) {
  if constexpr (BF16) {
    v.x = __bfloat162float(__float2bfloat16_rn(v.x)), v.y = __bfloat162float(__float2bfloat16_rn(v.y));
    v.z = __bfloat162float(__float2bfloat16_rn(v.z)), v.w = __bfloat162float(__float2bfloat16_rn(v.w));
  }
  return v;
}

template <bool BF16>
__global__ void __launch_bounds__(kGemvWarps * 32) grouped_gemv_kernel(float* out, const float* a, const float* w,
                                                                       const int32_t* offsets, int64_t experts,
                                                                       int64_t r, int64_t n, int64_t k,
                                                                       DeviceErrorFlag* flag) {
  __shared__ __align__(16) float a_s[kGemvRows][kGemvChunk];
  const int64_t e = blockIdx.y;
  int64_t first = 0, rows = 0;
  if (!expert_rows(offsets, e, experts, r, &first, &rows, flag) || rows == 0) return;  // uniform in the block
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t f0 = (static_cast<int64_t>(blockIdx.x) * kGemvWarps + warp) * kGemvFeatures;
  const float* w_e = w + e * n * k;
  for (int64_t m0 = 0; m0 < rows; m0 += kGemvRows) {
    const int count = static_cast<int>(min(static_cast<int64_t>(kGemvRows), rows - m0));
    float acc[kGemvFeatures][kGemvRows] = {};
    for (int64_t k0 = 0; k0 < k; k0 += kGemvChunk) {
      const int quads = static_cast<int>(min(static_cast<int64_t>(kGemvChunk), k - k0)) / 4;
      __syncthreads();  // the previous chunk is fully read
      for (int i = threadIdx.x; i < count * quads; i += kGemvWarps * 32) {
        const int row = i / quads, q = i % quads;
        const float4 v = *reinterpret_cast<const float4*>(a + (first + m0 + row) * k + k0 + 4 * q);
        reinterpret_cast<float4*>(a_s[row])[q] = gemv_operand<BF16>(v);
      }
      __syncthreads();
      for (int q = lane; q < quads; q += 32) {
        float4 wv[kGemvFeatures];
#pragma unroll
        for (int f = 0; f < kGemvFeatures; ++f) {
          wv[f] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
          if (f0 + f < n) wv[f] = gemv_operand<BF16>(__ldg(reinterpret_cast<const float4*>(w_e + (f0 + f) * k + k0) + q));
        }
#pragma unroll
        for (int row = 0; row < kGemvRows; ++row) {
          if (row >= count) break;
          const float4 x = reinterpret_cast<const float4*>(a_s[row])[q];
#pragma unroll
          for (int f = 0; f < kGemvFeatures; ++f)
            acc[f][row] += x.x * wv[f].x + x.y * wv[f].y + x.z * wv[f].z + x.w * wv[f].w;
        }
      }
    }
#pragma unroll
    for (int row = 0; row < kGemvRows; ++row) {
      if (row >= count) break;
#pragma unroll
      for (int f = 0; f < kGemvFeatures; ++f) {
        const float total = warp_sum(acc[f][row]);
        if (lane == 0 && f0 + f < n) out[(first + m0 + row) * n + f0 + f] = total;
      }
    }
  }
}

// The GEMV path serves Fprop up to this many routed rows (decoding: batch x top-k); STRATA_CUDA_MOE_GEMV=0
// keeps the split-K tile path instead. Read once.
constexpr int64_t kGemvRowsLimit = 128;
bool gemv_enabled() {
  static const bool enabled = [] {
    const char* env = std::getenv("STRATA_CUDA_MOE_GEMV");
    return !(env && std::string(env) == "0");
  }();
  return enabled;
}

DeviceErrorReporter grouped_report(const char* op) {
  return [op](const DeviceErrorFlag& flag) {
    throw Error(detail::concat(op, ": expert offsets are not a routing plan (expert ", flag.index, " ends at ",
                               flag.value, ")"));
  };
}

// Split-K for few routed rows (decoding): row tiles alone would leave most SMs idle while each
// block streams a whole K of its experts' weights. Splits of at least kMinSplitK.
constexpr int64_t kSplitRowsLimit = 512, kMinSplitK = 128, kMaxSplits = 8;

template <bool BF16>
void launch_grouped(CudaBackendState& s, const MoeExpertGemm& g, DeviceErrorFlag* flag, const char* op) {
  const int64_t experts = g.expert_offsets.size(0) - 1, r = g.a.size(0);
  if (g.pass == GemmPass::Wgrad) {
    const int64_t m = g.out.size(1), n = g.out.size(2);
    const dim3 grid(static_cast<unsigned>((n + BN - 1) / BN), static_cast<unsigned>((m + BM - 1) / BM),
                    static_cast<unsigned>(experts));
    grouped_wgrad_kernel<BF16><<<grid, kGemmThreads, 0, s.stream>>>(g.out.data, g.a.data, g.b.data,
                                                                    g.expert_offsets.data, experts, r, m, n, flag);
    return;
  }
  const int64_t n = g.out.size(1), k = g.a.size(1);
  const bool aligned = (reinterpret_cast<uintptr_t>(g.a.data) | reinterpret_cast<uintptr_t>(g.b.data)) % 16 == 0;
  if (g.pass == GemmPass::Fprop && r <= kGemvRowsLimit && k % 4 == 0 && aligned && gemv_enabled()) {
    const dim3 grid(static_cast<unsigned>((n + kGemvWarps * kGemvFeatures - 1) / (kGemvWarps * kGemvFeatures)),
                    static_cast<unsigned>(experts));
    grouped_gemv_kernel<BF16><<<grid, kGemvWarps * 32, 0, s.stream>>>(g.out.data, g.a.data, g.b.data,
                                                                      g.expert_offsets.data, experts, r, n, k, flag);
    return;
  }
  const int64_t splits = r <= kSplitRowsLimit ? std::max<int64_t>(1, std::min(kMaxSplits, k / kMinSplitK)) : 1;
  const int64_t k_split = (k + splits - 1) / splits;
  float* target = splits > 1 ? s.scratch_as<float>(3, splits * r * n, op) : g.out.data;
  const dim3 grid(static_cast<unsigned>((r + BM - 1) / BM + experts), static_cast<unsigned>((n + BN - 1) / BN),
                  static_cast<unsigned>(splits));
  if (g.pass == GemmPass::Fprop) {
    grouped_rows_kernel<BF16, false><<<grid, kGemmThreads, 0, s.stream>>>(target, g.a.data, g.b.data,
                                                                          g.expert_offsets.data, experts, r, n, k,
                                                                          k_split, flag);
  } else {
    grouped_rows_kernel<BF16, true><<<grid, kGemmThreads, 0, s.stream>>>(target, g.a.data, g.b.data,
                                                                         g.expert_offsets.data, experts, r, n, k,
                                                                         k_split, flag);
  }
  if (splits > 1) sum_partials<<<grid_for(r * n), kThreads, 0, s.stream>>>(g.out.data, target, r * n, splits);
}

}  // namespace

void CudaBackend::moe_expert_gemm(const MoeExpertGemm& g) {
  const char* op = "moe_expert_gemm";
  if (g.a.size(0) == 0 && g.pass != GemmPass::Wgrad) return;
  if (g.out.numel() == 0) return;
  DeviceErrorFlag* record = state_->error_record(grouped_report(op), op);
  if (effective_gemm_mode() == CudaGemmMode::Fp32) {
    launch_grouped<false>(*state_, g, record, op);
  } else {
    launch_grouped<true>(*state_, g, record, op);
  }
  finish_op(op);
}

}  // namespace strata
