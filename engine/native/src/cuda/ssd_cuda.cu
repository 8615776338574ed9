// CUDA kernels of Mamba-2's SSD chunked scan, forward and exact backward (the single-token decode
// step is in ssm_step_cuda.cu, the depthwise conv1d before it in conv1d_cuda.cu), and the op entry
// points. When every chunk is full (T % L == 0, L 64 or 128) the chunk products run as batched cuBLAS
// products (ssd_batched_cuda.cu) and only the dt kernel, the state passes and the parameter-gradient
// sum here run; the block kernels below serve every other shape and STRATA_CUDA_SSD=blocks.
// SSD is chunk-parallel: one thread block per (batch, head, chunk) computes what the chunk adds to
// the state from a zero entering state; a short sequential pass per (batch, head) turns those into
// the entering state of every chunk (kept in chunk_states, as the op contract saves it); then one
// block per chunk computes the outputs (the masked quadratic form inside the chunk plus the
// entering-state term). The backward mirrors it: chunk-local state gradients, a reverse pass per
// (batch, head) giving the gradient of the state leaving every chunk, then one block per chunk for
// all other gradients. B and C are shared by the heads of a group: by default the output and
// gradient blocks are per (batch, group, chunk) and walk the group's heads (C B^T computed once, dB
// and dC owned by the block: no atomics, deterministic; the FS terms of dB and dC summed over the
// heads and multiplied once; per-head parameter gradients reduced in a second pass);
// STRATA_CUDA_SSD=grouped_v1 selects the grouped kernels with per-head FS terms and fp32 chunk
// states, STRATA_CUDA_SSD=tiled the per-head blocks (dB, dC, A_log, dt_bias and D gradients
// atomically accumulated), both kept for A/B visits and as fallbacks. Formulas follow
// cpu/ssd_cpu.cpp (the derivation is in its comments). Every matrix product of a chunk in these
// block kernels (states, outputs and all their gradients) goes through shared-memory tiles
// (block_gemm, 64 x 64 outputs per pass, the next k step's loads in flight during this one's
// products): fp32 on CUDA cores, or in a non-fp32 GEMM mode bf16 mma.sync with fp32 accumulation
// (the grouped kernels and, by default, the chunk-state kernels); not here: cp.async or TMA tile
// loads (the operands are fp32 in memory and rounded to bf16 on the way into shared memory).
//
// Shape legend: B batch, T time, H heads, P head dim, N state size, G groups (H % G == 0),
//               L chunk length (the last chunk of a sequence may be shorter).
#include <cuda_bf16.h>

#include <algorithm>
#include <cstdlib>
#include <string>

#include "../ops/ssd.h"
#include "cuda_common.cuh"
#include "ssd_common.cuh"

namespace strata {
namespace {


// block_gemm: the chunk's matrix products on shared-memory tiles. An operand element is
// o.p[r * o.row_stride + q * o.q_stride] (r: the output row i for A, the output column j for B; q:
// the summed index), one of the two strides being 1 (tile loads are coalesced along it), times
// o.scale[i] for A (a per-row scale) or o.scale[q] for B when o.scale is set.
struct TileOperand {
  const float* p;
  int row_stride, q_stride;  // int: fewer registers in block_gemm's loops (strides are row widths)
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
// Tiles: 64 x 64 outputs per pass, 32-wide k steps in two shared-memory stages: the global loads of
// the next k step are issued into registers before the products of this one, so one load latency
// per step is hidden behind the products and one __syncthreads separates the steps (a whole tile
// inside its operand takes unchecked float4 loads and stores). A stage holds the A and B tiles as
// fp32 [q][r] (fp32 products: each of the 256 threads reads 4 rows and 4 columns as float4) or as
// bf16 [r][q] (tensor cores: every mma fragment register is one 32-bit shared load; 20 words per
// row, so the 8 rows x 4 pairs of a fragment hit 32 different banks).
constexpr int kGemmTile = 64;
constexpr int kGemmK = 32;
constexpr int kGemmPitch = kGemmTile + 4;  // fp32 [q][r], padded, float4-aligned
constexpr int kGemmPitchH = kGemmK + 8;    // bf16 [r][q], in halves
constexpr int kGemmStageF = 2 * kGemmK * kGemmPitch;  // floats of an fp32 stage
constexpr int kGemmStageH = kGemmTile * kGemmPitchH;  // floats of a bf16 stage (2 tiles of halves)
constexpr int kGemmStage = kGemmStageF > kGemmStageH ? kGemmStageF : kGemmStageH;
constexpr int kGemmFloats = 2 * kGemmStage;

// The 8 elements of one operand tile (64 r x 32 q) a thread loads, as two groups of 4 (slot s):
// along q when q is the contiguous index ((r, q .. q + 3)), else along r ((r .. r + 3, q + s): the
// two groups are neighbouring q, so the bf16 pairs along q are in one thread).
struct TileRegs {
  static constexpr int kSlots = 2;
  float v[kSlots][4];
};
__device__ __forceinline__ void tile_slot(bool q_fast, int s, int& r, int& q) {
  const int e = threadIdx.x;
  if (q_fast) {
    const int g = e + s * kThreads;
    r = g / (kGemmK / 4), q = 4 * (g % (kGemmK / 4));
  } else {
    r = 4 * (e % (kGemmTile / 4)), q = 2 * (e / (kGemmTile / 4)) + s;
  }
}

// Global loads of the tile (r0 + r, q0 + q), zero outside rows x k (unscaled: commit_tile scales).
// One float4 load per group where the operand is 16-byte aligned (base and stride) and the 4 lie
// inside, element by element otherwise. Plain loads: operands may be scratch this block wrote.
__device__ __forceinline__ void fetch_tile(TileRegs& t, const TileOperand& o, int64_t r0, int64_t rows,
                                           int64_t q0, int64_t k) {
  const bool q_fast = o.q_stride == 1;
  const int ld = q_fast ? o.row_stride : o.q_stride;
  const bool aligned = (reinterpret_cast<uintptr_t>(o.p) & 15) == 0 && ld % 4 == 0;
  if (aligned && r0 + kGemmTile <= rows && q0 + kGemmK <= k) {  // the whole tile inside: float4 loads
    const float* base = o.p + r0 * o.row_stride + q0 * o.q_stride;
#pragma unroll
    for (int s = 0; s < TileRegs::kSlots; ++s) {
      int r, q;
      tile_slot(q_fast, s, r, q);
      const float4 f = *reinterpret_cast<const float4*>(base + (r * o.row_stride + q * o.q_stride));
      t.v[s][0] = f.x, t.v[s][1] = f.y, t.v[s][2] = f.z, t.v[s][3] = f.w;
    }
    return;
  }
#pragma unroll
  for (int s = 0; s < TileRegs::kSlots; ++s) {
    int r, q;
    tile_slot(q_fast, s, r, q);
    const int64_t gr = r0 + r, gq = q0 + q;
    const bool other_inside = q_fast ? gr < rows : gq < k;
    const int64_t ahead = q_fast ? k - gq : rows - gr;  // inside along the 4 when > 0
    const int inside = other_inside ? static_cast<int>(ahead < 0 ? 0 : ahead < 4 ? ahead : 4) : 0;
    const float* src = o.p + gr * o.row_stride + gq * o.q_stride;
    if (inside == 4 && aligned) {
      const float4 f = *reinterpret_cast<const float4*>(src);
      t.v[s][0] = f.x, t.v[s][1] = f.y, t.v[s][2] = f.z, t.v[s][3] = f.w;
    } else {
#pragma unroll
      for (int j = 0; j < 4; ++j) t.v[s][j] = j < inside ? src[j] : 0.0f;  // the 4 are contiguous
    }
  }
}

// bf16 tensor-core pieces: two floats rounded to a bf16 pair (lo in the low half), and c (16 x 8)
// += a (16 x 16, row) b (16 x 8, col) on mma.sync with fp32 accumulation.
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

// Where operand B's tile starts in a stage (floats from the stage's start).
template <bool kMma>
constexpr int kStageB = kMma ? kGemmTile * kGemmPitchH / 2 : kGemmK * kGemmPitch;

// The fetched tile, scaled (A: by its row, B: by q), into one operand's place of a stage: fp32 [q][r]
// at `dst`, or (kMma) bf16 [r][q] at `dst` read as halves.
template <bool kMma>
__device__ __forceinline__ void commit_tile(float* dst, TileRegs t, const TileOperand& o, int64_t r0,
                                            int64_t rows, int64_t q0, int64_t k, bool row_scale) {
  const bool q_fast = o.q_stride == 1;
  const bool inside = r0 + kGemmTile <= rows && q0 + kGemmK <= k;  // no element outside
  const float* scale = o.scale ? o.scale + (row_scale ? r0 : q0) : nullptr;
#pragma unroll
  for (int s = 0; s < TileRegs::kSlots; ++s) {
    int r, q;
    tile_slot(q_fast, s, r, q);
    if (scale) {
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int dr = r + (q_fast ? 0 : j), dq = q + (q_fast ? j : 0);
        if (inside || (r0 + dr < rows && q0 + dq < k)) t.v[s][j] *= scale[row_scale ? dr : dq];
      }
    }
    if constexpr (!kMma) {
      if (q_fast) {
#pragma unroll
        for (int j = 0; j < 4; ++j) dst[(q + j) * kGemmPitch + r] = t.v[s][j];
      } else {
        *reinterpret_cast<float4*>(dst + q * kGemmPitch + r) = make_float4(t.v[s][0], t.v[s][1], t.v[s][2], t.v[s][3]);
      }
    } else if (q_fast) {
      __nv_bfloat16* h = reinterpret_cast<__nv_bfloat16*>(dst) + r * kGemmPitchH + q;
      *reinterpret_cast<uint2*>(h) = make_uint2(pack_bf16(t.v[s][0], t.v[s][1]), pack_bf16(t.v[s][2], t.v[s][3]));
    }
  }
  if constexpr (kMma) {
    if (!q_fast) {  // slots 0 and 1 are q and q + 1 of rows r .. r + 3
      int r, q;
      tile_slot(false, 0, r, q);
      uint32_t* w = reinterpret_cast<uint32_t*>(dst);
#pragma unroll
      for (int j = 0; j < 4; ++j) w[((r + j) * kGemmPitchH + q) / 2] = pack_bf16(t.v[0][j], t.v[1][j]);
    }
  }
}

// terms[t] for a t known only at run time (selects, no local-memory array indexing).
template <int kTerms>
__device__ __forceinline__ GemmTerm term_at(const GemmTerm (&terms)[kTerms], int t) {
  GemmTerm r = terms[0];
#pragma unroll
  for (int u = 1; u < kTerms; ++u) {
    if (t == u) r = terms[u];
  }
  return r;
}

// For every i < m, j < n (with lower_only: only in the 64 x 64 output tiles not wholly above the
// diagonal, j <= i somewhere in them): epilogue(i, j, sum over the terms of sum_q A(i, q) B(q, j),
// pre(i, j)), where pre (a float2 the epilogue needs from memory) is read for all of a thread's
// outputs before any epilogue runs, so those loads overlap. Each output is handed to the epilogue by
// one thread, the same thread for equal (m, n). kMma: the products on bf16 tensor cores (operands
// rounded to bf16 when stored in the stage, fp32 accumulation; warp w owns rows 16 (w % 4) and
// columns 32 (w / 4) of the 64 x 64 tile, four m16n8k16 per 16 k), else fp32 FMAs. Needs blockDim.x
// == kThreads; every thread of the block must call it (it synchronizes); `tiles` holds kGemmFloats
// and is 16-byte aligned.
template <bool kMma, int kTerms, typename Pre, typename Epilogue>
__device__ void block_gemm(int64_t m, int64_t n, const GemmTerm (&terms)[kTerms], bool lower_only, float* tiles,
                           Pre pre, Epilogue epilogue) {
  static_assert(kThreads == 256, "block_gemm maps 256 threads onto 16 x 16, 4 x 4 outputs each");
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  const int gid = (threadIdx.x & 31) >> 2, tig = threadIdx.x & 3;  // mma: the lane's row group and pair
  const int wm = (threadIdx.x >> 5) & 3, wn = threadIdx.x >> 7;     // mma: the warp's 16 rows, 32 columns
  for (int64_t i0 = 0; i0 < m; i0 += kGemmTile) {
    for (int64_t j0 = 0; j0 < n; j0 += kGemmTile) {
      if (lower_only && j0 > i0 + kGemmTile - 1) continue;
      // The k steps of this output tile: term t at offset q0, q0 in [lo(t), hi(t)) (the band's part;
      // i0 is a multiple of the step).
      auto lo = [&](int t) -> int64_t { return term_at(terms, t).band == Band::Upper ? i0 : 0; };
      auto hi = [&](int t) -> int64_t {
        const GemmTerm term = term_at(terms, t);
        return term.band == Band::Lower ? min(term.k, i0 + kGemmTile) : term.k;
      };
      auto settle = [&](int& t, int64_t& q0) {  // to the first step at or after (t, q0)
        while (t < kTerms && q0 >= hi(t)) {
          ++t;
          if (t < kTerms) q0 = lo(t);
        }
      };
      float acc[4][4] = {};
      int t = 0;
      int64_t q0 = lo(0);
      settle(t, q0);
      if (t < kTerms) {
        TileRegs ra, rb;
        GemmTerm cur = term_at(terms, t);
        fetch_tile(ra, cur.a, i0, m, q0, cur.k);
        fetch_tile(rb, cur.b, j0, n, q0, cur.k);
        int stage = 0;
        commit_tile<kMma>(tiles, ra, cur.a, i0, m, q0, cur.k, true);
        commit_tile<kMma>(tiles + kStageB<kMma>, rb, cur.b, j0, n, q0, cur.k, false);
        __syncthreads();
        for (;;) {
          int nt = t;
          int64_t nq0 = q0 + kGemmK;
          settle(nt, nq0);
          const bool more = nt < kTerms;
          if (more) {  // the next step's loads, in flight during this step's products
            cur = term_at(terms, nt);
            fetch_tile(ra, cur.a, i0, m, nq0, cur.k);
            fetch_tile(rb, cur.b, j0, n, nq0, cur.k);
          }
          const float* st = tiles + stage * kGemmStage;
          if constexpr (kMma) {
            const uint32_t* aw = reinterpret_cast<const uint32_t*>(st);
            const uint32_t* bw = aw + kStageB<kMma>;
            constexpr int kRow = kGemmPitchH / 2;  // words per row
#pragma unroll
            for (int kk = 0; kk < kGemmK; kk += 16) {
              const int c0 = kk / 2 + tig, ra0 = wm * 16 + gid;
              const uint32_t af[4] = {aw[ra0 * kRow + c0], aw[(ra0 + 8) * kRow + c0], aw[ra0 * kRow + c0 + 4],
                                      aw[(ra0 + 8) * kRow + c0 + 4]};
#pragma unroll
              for (int nt2 = 0; nt2 < 4; ++nt2) {
                const int col = wn * 32 + nt2 * 8 + gid;
                mma_bf16(acc[nt2], af, bw[col * kRow + c0], bw[col * kRow + c0 + 4]);
              }
            }
          } else {
            const float* ta = st;
            const float* tb = st + kStageB<kMma>;
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
          if (!more) break;
          // The other stage was last read before the previous __syncthreads: free to fill.
          stage ^= 1;
          float* next = tiles + stage * kGemmStage;
          commit_tile<kMma>(next, ra, cur.a, i0, m, nq0, cur.k, true);
          commit_tile<kMma>(next + kStageB<kMma>, rb, cur.b, j0, n, nq0, cur.k, false);
          __syncthreads();
          t = nt, q0 = nq0;
        }
        __syncthreads();  // the stages are free again for the next tile or call
      }
      // fp32: acc[r][c] is (4 ty + r, 4 tx + c); mma: acc[nt][c] is (16 wm + gid (+8 for c >= 2),
      // 32 wn + 8 nt + 2 tig + c % 2)
      auto out_i = [&](int r, int c) { return kMma ? i0 + wm * 16 + gid + (c >= 2 ? 8 : 0) : i0 + 4 * ty + r; };
      auto out_j = [&](int r, int c) { return kMma ? j0 + wn * 32 + r * 8 + 2 * tig + (c & 1) : j0 + 4 * tx + c; };
      const bool inside = i0 + kGemmTile <= m && j0 + kGemmTile <= n;
      float2 pv[4][4];
#pragma unroll
      for (int r = 0; r < 4; ++r) {
#pragma unroll
        for (int c = 0; c < 4; ++c) {
          const int64_t i = out_i(r, c), j = out_j(r, c);
          pv[r][c] = inside || (i < m && j < n) ? pre(i, j) : make_float2(0.0f, 0.0f);
        }
      }
#pragma unroll
      for (int r = 0; r < 4; ++r) {
#pragma unroll
        for (int c = 0; c < 4; ++c) {
          const int64_t i = out_i(r, c), j = out_j(r, c);
          if (inside || (i < m && j < n)) epilogue(i, j, acc[r][c], pv[r][c]);
        }
      }
    }
  }
}
// The same with an epilogue that reads nothing from memory: epilogue(i, j, acc).
template <bool kMma, int kTerms, typename Epilogue>
__device__ void block_gemm(int64_t m, int64_t n, const GemmTerm (&terms)[kTerms], bool lower_only, float* tiles,
                           Epilogue epilogue) {
  block_gemm<kMma>(
      m, n, terms, lower_only, tiles, [](int64_t, int64_t) { return make_float2(0.0f, 0.0f); },
      [&](int64_t i, int64_t j, float acc, float2) { epilogue(i, j, acc); });
}

// Operand views: a row-major matrix read as A(i, q) = p[i * ld + q] ("rows"), or its transpose
// A(i, q) = p[q * ld + i] ("columns"); for B, r is the output column j.
__device__ __forceinline__ TileOperand rows_of(const float* p, int64_t ld, const float* scale = nullptr) {
  return {p, static_cast<int>(ld), 1, scale};
}
__device__ __forceinline__ TileOperand columns_of(const float* p, int64_t ld, const float* scale = nullptr) {
  return {p, 1, static_cast<int>(ld), scale};
}


// dt = softplus(dt_raw + dt_bias) (clamped with dt_limit) of every (b, t, h)
__global__ void ssd_dt_kernel(SsdDev l, float* dt_out, const float* dt_raw, const float* dt_bias) {
  STRATA_GRID_STRIDE(i, l.bsz * l.t_len * l.heads) dt_out[i] = l.dt_value(dt_raw[i], dt_bias[i % l.heads], nullptr);
}

// Forward phase 1 (one block per chunk): the state a chunk adds from a zero entering state,
// S[p,k] = sum_s exp(cum[last] - cum[s]) dt[s] x[s,p] B[s,k], written where the state leaving the
// chunk goes (chunk_states of the next chunk, or final_state after the last one), and the chunk's
// total decay exp(cum[last]). kMma: the product on bf16 tensor cores (fp32 accumulation).
template <bool kMma>
__global__ void __launch_bounds__(kThreads, 2)
    ssd_chunk_state_kernel(SsdDev l, float* chunk_states, float* final_state, float* decays, const float* x,
                           const float* dt, const float* a_log, const float* bm) {
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
  block_gemm<kMma>(l.p, l.n, terms, false, tiles, [&](int64_t p, int64_t k, float acc) { dest[p * n + k] = acc; });
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
__global__ void __launch_bounds__(kThreads, 2)
    ssd_chunk_output_kernel(SsdDev l, float* y, const float* chunk_states, const float* x, const float* dt,
                            const float* a_log, const float* bm, const float* cm, const float* d, float* coef_scratch) {
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
  block_gemm<false>(len, len, cb, true, tiles, [&](int64_t i, int64_t s, float acc) {
    coef[i * L + s] = s <= i ? acc * expf(cum[i] - cum[s]) * dts[s] : 0.0f;
  });
  __syncthreads();
  // y = D x + (exp(cum) C) h0^T + coef x
  const GemmTerm terms[2] = {{rows_of(c_chunk, bc_stride, ecum), rows_of(h0, l.n), l.n, Band::Full},
                             {rows_of(coef, L), columns_of(x_chunk, xy_stride), len, Band::Lower}};
  float* y_chunk = y + l.xi(v.b, v.t0, v.h);
  block_gemm<false>(
      len, l.p, terms, false, tiles,
      [&](int64_t i, int64_t p) { return make_float2(x_chunk[i * xy_stride + p], 0.0f); },
      [&](int64_t i, int64_t p, float acc, float2 xv) { y_chunk[i * xy_stride + p] = D * xv.x + acc; });
}

// Forward phase 3, grouped (the default; STRATA_CUDA_SSD=tiled selects the kernel above): one block
// per (batch, group, chunk) computes C B^T once (cbraw) and walks the group's heads in order; per head
// the decay and dt are applied one warp per row (coalesced), then the outputs as above.
template <bool kMma>
__global__ void __launch_bounds__(kThreads, 2)
    ssd_chunk_output_group_kernel(SsdDev l, float* y, const float* chunk_states, const float* x, const float* dt,
                                  const float* a_log, const float* bm, const float* cm, const float* d,
                                  float* cbraw_scratch, float* coef_scratch) {
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
  block_gemm<kMma>(len, len, cb, true, tiles, [&](int64_t i, int64_t s, float acc) { CBraw[i * L + s] = acc; });
  for (int64_t hh = 0; hh < hpg; ++hh) {
    const int64_t h = g * hpg + hh;
    const SsdChunk v{b, h, g, c, t0, len};
    const float D = d ? d[h] : 0.0f;
    __syncthreads();  // the previous head's shared values are no longer read
    ssd_load_chunk_decay(l, v, dt, -expf(a_log[h]), dts, cum);
    for (int64_t i = threadIdx.x; i < len; i += blockDim.x) ecum[i] = expf(cum[i]);
    // coef[i,s] = (C B^T)[i,s] exp(cum[i] - cum[s]) dt[s] for s <= i, 0 above the diagonal
    for (int64_t i = warp; i < len; i += warps) {
      for (int64_t s0 = 0; s0 < len; s0 += 128) {  // 4 columns per lane: the loads first, then the stores
        float cbv[4];
#pragma unroll
        for (int u = 0; u < 4; ++u) {
          const int64_t s = s0 + lane + 32 * u;
          cbv[u] = s <= i ? CBraw[i * L + s] : 0.0f;
        }
#pragma unroll
        for (int u = 0; u < 4; ++u) {
          const int64_t s = s0 + lane + 32 * u;
          if (s < len) coef[i * L + s] = s <= i ? cbv[u] * expf(cum[i] - cum[s]) * dts[s] : 0.0f;
        }
      }
    }
    __syncthreads();
    // y = D x + (exp(cum) C) h0^T + coef x
    const float* h0 = chunk_states + l.si(b, c, h);
    const float* x_chunk = x + l.xi(b, t0, h);
    const GemmTerm terms[2] = {{rows_of(c_chunk, bc_stride, ecum), rows_of(h0, l.n), l.n, Band::Full},
                               {rows_of(coef, L), columns_of(x_chunk, xy_stride), len, Band::Lower}};
    float* y_chunk = y + l.xi(b, t0, h);
    block_gemm<kMma>(
        len, l.p, terms, false, tiles,
        [&](int64_t i, int64_t p) { return make_float2(x_chunk[i * xy_stride + p], 0.0f); },
        [&](int64_t i, int64_t p, float acc, float2 xv) { y_chunk[i * xy_stride + p] = D * xv.x + acc; });
  }
}


// Backward phase 1 (one block per chunk): the chunk's own contribution to the gradient of the state
// entering it, Q[p,k] = sum_i exp(cum[i]) dy[i,p] C[i,k], and the chunk's total decay. kMma: the
// product on bf16 tensor cores (fp32 accumulation).
template <bool kMma>
__global__ void __launch_bounds__(kThreads, 2)
    ssd_chunk_state_grad_kernel(SsdDev l, float* state_grads, float* decays, const float* dy, const float* dt,
                                const float* a_log, const float* cm) {
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
  block_gemm<kMma>(l.p, l.n, terms, false, tiles, [&](int64_t p, int64_t k, float acc) { q[p * n + k] = acc; });
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
  block_gemm<false>(len, len, cb, true, tiles, [&](int64_t i, int64_t s, float acc) { CB[i * L + s] = acc; });
  const GemmTerm ds[1] = {{rows_of(dy_chunk, xy_stride), rows_of(x_chunk, xy_stride), l.p, Band::Full}};
  block_gemm<false>(len, len, ds, true, tiles, [&](int64_t i, int64_t s, float acc) { DS[i * L + s] = acc; });
  const GemmTerm u[1] = {{rows_of(b_chunk, bc_stride), rows_of(dh, l.n), l.n, Band::Full}};
  block_gemm<false>(len, l.p, u, false, tiles, [&](int64_t s, int64_t p, float acc) { U[s * p_dim + p] = acc; });
  const GemmTerm vt[1] = {{rows_of(c_chunk, bc_stride), rows_of(h0, l.n), l.n, Band::Full}};
  block_gemm<false>(len, l.p, vt, false, tiles,
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
  block_gemm<false>(
      len, l.p, dx_terms, false, tiles,
      [&](int64_t s, int64_t p) { return make_float2(dy_chunk[s * xy_stride + p], U[s * p_dim + p]); },
      [&](int64_t s, int64_t p, float acc, float2 du) {
        dx_chunk[s * xy_stride + p] = D * du.x + dts[s] * acc + wdt[s] * du.y;
      });
  // dC and dB (shared by the group's heads)
  const GemmTerm dc_terms[2] = {{rows_of(dy_chunk, xy_stride, ecum), columns_of(h0, l.n), l.p, Band::Full},
                                {rows_of(FS, L), columns_of(b_chunk, bc_stride), len, Band::Lower}};
  float* dc_chunk = gr.dc + l.bci(b, t0, g);
  block_gemm<false>(len, l.n, dc_terms, false, tiles,
                           [&](int64_t i, int64_t k, float acc) { atomicAdd(dc_chunk + i * bc_stride + k, acc); });
  const GemmTerm db_terms[2] = {{rows_of(x_chunk, xy_stride, wdt), columns_of(dh, l.n), l.p, Band::Full},
                                {columns_of(FS, L), columns_of(c_chunk, bc_stride), len, Band::Upper}};
  float* db_chunk = gr.db + l.bci(b, t0, g);
  block_gemm<false>(len, l.n, db_terms, false, tiles,
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
  const SsdChunkScalarGrads scalars =
      ssd_chunk_dt_grads(l, v, A, e_last, hh, wdt, vv, dts, dcum, ddt, dt_raw, dt_bias, gr.ddt_raw, reduce);
  if (threadIdx.x == 0) {
    atomicAdd(gr.da_log + h, static_cast<float>(scalars.da_log));
    atomicAdd(gr.ddt_bias + h, static_cast<float>(scalars.dt_bias));
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
// kSumFs (the default for groups of several heads): B and C are the same for every head of the
// group, so the FS terms of dC and dB are summed over the heads first (FS holds sum_h FS_h, the row
// pass adding each head's in place: one thread owns each element) and multiplied by B and C once,
// by ssd_chunk_fs_grads_kernel after this kernel; per head only the exp(cum) dy h0 and x dh terms go
// into dC and dB here. Without it (one head per group, or STRATA_CUDA_SSD=grouped_v1) every head
// runs both terms with its own FS.
// Shared: 9 L floats + 8 L column partials (kThreads / 32 warps): ssd_group_shared_bytes.
template <bool kMma, bool kSumFs>
__global__ void __launch_bounds__(kThreads, 2)
    ssd_chunk_backward_group_kernel(SsdDev l, SsdGrads gr, const float* dy, const float* x, const float* dt_raw,
                                    const float* dt_bias, const float* a_log, const float* bm, const float* cm,
                                    const float* d, const float* dt, const float* chunk_states,
                                    const float* state_grads, float* cbraw_scratch, float* cb_scratch,
                                    float* ds_scratch, float* fs_scratch, float* uv_scratch, double* partials) {
  extern __shared__ float shared[];
  __shared__ double reduce[32];
  __shared__ __align__(16) float tiles[kGemmFloats];
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
  block_gemm<kMma>(len, len, cb, true, tiles, [&](int64_t i, int64_t s, float acc) { CBraw[i * L + s] = acc; });
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
    block_gemm<kMma>(len, len, ds, true, tiles, [&](int64_t i, int64_t s, float acc) { DS[i * L + s] = acc; });
    const GemmTerm u[1] = {{rows_of(b_chunk, bc_stride), rows_of(dh, l.n), l.n, Band::Full}};
    block_gemm<kMma>(len, l.p, u, false, tiles, [&](int64_t s, int64_t p, float acc) { U[s * p_dim + p] = acc; });
    const GemmTerm vt[1] = {{rows_of(c_chunk, bc_stride), rows_of(h0, l.n), l.n, Band::Full}};
    block_gemm<kMma>(len, l.p, vt, false, tiles,
                           [&](int64_t i, int64_t p, float acc) { V[i * p_dim + p] = acc; });
    __syncthreads();
    // One warp per row i: E and FS (zero above the diagonal), the row and column sums of M, and the
    // row dot products vv, inter and dy . x.
    float* my_cols = colpart + warp * L;
    for (int64_t s = lane; s < len; s += 32) my_cols[s] = 0.0f;
    double dD_local = 0.0;
    // Two rows per pass (i and i + warps): all their loads (x, dy, U, V by 64 columns, then C B^T and
    // D S by 128 columns) are issued before their stores, so they overlap.
    for (int64_t i_pass = warp; i_pass < len; i_pass += 2 * warps) {
      float xu[2] = {0.0f, 0.0f}, dyv[2] = {0.0f, 0.0f}, dyx[2] = {0.0f, 0.0f}, row[2] = {0.0f, 0.0f};
      for (int64_t p0 = 0; p0 < l.p; p0 += 64) {
        float xp[2][2], dyp[2][2], up[2][2], vp[2][2];
#pragma unroll
        for (int w = 0; w < 2; ++w) {
          const int64_t i = i_pass + w * warps;
#pragma unroll
          for (int u = 0; u < 2; ++u) {
            const int64_t p = p0 + lane + 32 * u;
            const bool in = i < len && p < l.p;
            xp[w][u] = in ? x_chunk[i * xy_stride + p] : 0.0f;
            dyp[w][u] = in ? dy_chunk[i * xy_stride + p] : 0.0f;
            up[w][u] = in ? U[i * p_dim + p] : 0.0f;
            vp[w][u] = in ? V[i * p_dim + p] : 0.0f;
          }
        }
#pragma unroll
        for (int w = 0; w < 2; ++w) {
#pragma unroll
          for (int u = 0; u < 2; ++u) {
            xu[w] += xp[w][u] * up[w][u];
            dyv[w] += dyp[w][u] * vp[w][u];
            dyx[w] += dyp[w][u] * xp[w][u];
          }
        }
      }
      for (int64_t s0 = 0; s0 < len; s0 += 128) {
        float cbv[2][4], dsv[2][4];
#pragma unroll
        for (int w = 0; w < 2; ++w) {
          const int64_t i = i_pass + w * warps;
#pragma unroll
          for (int u = 0; u < 4; ++u) {
            const int64_t s = s0 + lane + 32 * u;
            cbv[w][u] = s <= i && i < len ? CBraw[i * L + s] : 0.0f;
            dsv[w][u] = s <= i && i < len ? DS[i * L + s] : 0.0f;
          }
        }
#pragma unroll
        for (int w = 0; w < 2; ++w) {
          const int64_t i = i_pass + w * warps;
          if (i >= len) continue;
#pragma unroll
          for (int u = 0; u < 4; ++u) {
            const int64_t s = s0 + lane + 32 * u;
            if (s >= len) continue;
            if (s <= i) {
              const float decay = expf(cum[i] - cum[s]);
              const float e = cbv[w][u] * decay;
              const float m = dsv[w][u] * e;
              CB[i * L + s] = e;
              const float fs = dsv[w][u] * decay * dts[s];
              FS[i * L + s] = kSumFs && !first ? FS[i * L + s] + fs : fs;  // kSumFs: the sum over heads
              row[w] += m * dts[s];
              my_cols[s] += m;
            } else {
              CB[i * L + s] = 0.0f;
              FS[i * L + s] = 0.0f;
            }
          }
        }
      }
#pragma unroll
      for (int w = 0; w < 2; ++w) {
        const int64_t i = i_pass + w * warps;
        const float rs = warp_sum(row[w]), v1 = warp_sum(xu[w]), v2 = warp_sum(dyv[w]), v3 = warp_sum(dyx[w]);
        if (lane == 0 && i < len) {
          rsum[i] = rs;
          vv[i] = v1;
          inter[i] = v2;
          dD_local += v3;
        }
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
    block_gemm<kMma>(
        len, l.p, dx_terms, false, tiles,
        [&](int64_t s, int64_t p) { return make_float2(dy_chunk[s * xy_stride + p], U[s * p_dim + p]); },
        [&](int64_t s, int64_t p, float acc, float2 du) {
          dx_chunk[s * xy_stride + p] = D * du.x + dts[s] * acc + wdt[s] * du.y;
        });
    // dC and dB: owned by this block, summed over the group's heads in order (kSumFs: without the FS
    // terms, ssd_chunk_fs_grads_kernel adds them)
    const GemmTerm dc_terms[2] = {{rows_of(dy_chunk, xy_stride, ecum), columns_of(h0, l.n), l.p, Band::Full},
                                  {rows_of(FS, L), columns_of(b_chunk, bc_stride), len, Band::Lower}};
    const GemmTerm db_terms[2] = {{rows_of(x_chunk, xy_stride, wdt), columns_of(dh, l.n), l.p, Band::Full},
                                  {columns_of(FS, L), columns_of(c_chunk, bc_stride), len, Band::Upper}};
    auto dc_pre = [&](int64_t i, int64_t k) { return make_float2(first ? 0.0f : dc_chunk[i * bc_stride + k], 0.0f); };
    auto db_pre = [&](int64_t s, int64_t k) { return make_float2(first ? 0.0f : db_chunk[s * bc_stride + k], 0.0f); };
    auto dc_add = [&](int64_t i, int64_t k, float acc, float2 old) { dc_chunk[i * bc_stride + k] = old.x + acc; };
    auto db_add = [&](int64_t s, int64_t k, float acc, float2 old) { db_chunk[s * bc_stride + k] = old.x + acc; };
    if constexpr (kSumFs) {
      const GemmTerm dc_head[1] = {dc_terms[0]}, db_head[1] = {db_terms[0]};
      block_gemm<kMma>(len, l.n, dc_head, false, tiles, dc_pre, dc_add);
      block_gemm<kMma>(len, l.n, db_head, false, tiles, db_pre, db_add);
    } else {
      block_gemm<kMma>(len, l.n, dc_terms, false, tiles, dc_pre, dc_add);
      block_gemm<kMma>(len, l.n, db_terms, false, tiles, db_pre, db_add);
    }
    double hh_dot = 0.0;
#pragma unroll 8
    for (int64_t idx = threadIdx.x; idx < pn; idx += blockDim.x) hh_dot += static_cast<double>(dh[idx]) * h0[idx];
    hh_dot = block_sum(hh_dot, reduce);  // synchronizes: dcum / ddt are complete after this
    const double dD_total = block_sum(dD_local, reduce);
    const SsdChunkScalarGrads scalars =
        ssd_chunk_dt_grads(l, SsdChunk{b, h, g, c, t0, len}, A, e_last, hh_dot, wdt, vv, dts, dcum, ddt, dt_raw,
                           dt_bias, gr.ddt_raw, reduce);
    if (threadIdx.x == 0) {
      partials[bhc * 3 + 0] = scalars.da_log;
      partials[bhc * 3 + 1] = scalars.dt_bias;
      partials[bhc * 3 + 2] = dD_total;
    }
  }
}

// The FS terms of the grouped backward with kSumFs, one block per (batch, group, chunk) after
// ssd_chunk_backward_group_kernel (which stored the other terms into dC and dB and left FS = sum over
// the group's heads of FS_h, zero above the diagonal, in fs_scratch): dC += FS B, dB += FS^T C.
// db, dc, bm, cm: (B, T, G, N); fs_scratch: (B * G * chunks, L, L), blocks numbered ((b * G + g) * chunks + c).
template <bool kMma>
__global__ void __launch_bounds__(kThreads, 2)
    ssd_chunk_fs_grads_kernel(SsdDev l, float* db, float* dc, const float* bm, const float* cm,
                              const float* fs_scratch) {
  __shared__ __align__(16) float tiles[kGemmFloats];
  const int64_t L = l.chunk, bg = blockIdx.x / l.chunks, c = blockIdx.x % l.chunks;
  const int64_t b = bg / l.groups, g = bg % l.groups, t0 = c * L, len = min(L, l.t_len - t0);
  const int64_t bc_stride = l.groups * l.n;
  const float* FS = fs_scratch + static_cast<int64_t>(blockIdx.x) * L * L;
  float* dc_chunk = dc + l.bci(b, t0, g);
  float* db_chunk = db + l.bci(b, t0, g);
  const GemmTerm dc_fs[1] = {{rows_of(FS, L), columns_of(bm + l.bci(b, t0, g), bc_stride), len, Band::Lower}};
  block_gemm<kMma>(
      len, l.n, dc_fs, false, tiles,
      [&](int64_t i, int64_t k) { return make_float2(dc_chunk[i * bc_stride + k], 0.0f); },
      [&](int64_t i, int64_t k, float acc, float2 old) { dc_chunk[i * bc_stride + k] = old.x + acc; });
  const GemmTerm db_fs[1] = {{columns_of(FS, L), columns_of(cm + l.bci(b, t0, g), bc_stride), len, Band::Upper}};
  block_gemm<kMma>(
      len, l.n, db_fs, false, tiles,
      [&](int64_t s, int64_t k) { return make_float2(db_chunk[s * bc_stride + k], 0.0f); },
      [&](int64_t s, int64_t k, float acc, float2 old) { db_chunk[s * bc_stride + k] = old.x + acc; });
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

// STRATA_CUDA_SSD, read once (debugging and A/B): "blocks" runs the chunk outputs and the backward's
// chunk gradients on the grouped block kernels (the default before the batched paths of
// ssd_batched_cuda.cu),
// "tiled" the per-head kernels with fp32 products (the fallback for shapes the grouped kernels do not
// fill the GPU with), "fp32" the grouped kernels / batched products with fp32 products in every GEMM
// mode, "grouped_v1" the grouped kernels as they were before the head-summed FS terms (every head runs
// its own, see ssd_chunk_backward_group_kernel) and with fp32 chunk-state products, "fp32_states" the
// default with fp32 chunk-state products; unset: the batched paths where they fit (TF32 products
// unless the GEMM mode is fp32), else grouped with head-summed FS terms, bf16 tensor-core chunk
// products (chunk states and their gradients included) unless the GEMM mode is fp32.
enum class SsdEnv { Default, Blocks, Tiled, Fp32, GroupedV1, Fp32States };
SsdEnv ssd_env() {
  static const SsdEnv mode = [] {
    const char* env = std::getenv("STRATA_CUDA_SSD");
    const std::string v = env ? env : "";
    return v == "blocks"       ? SsdEnv::Blocks
           : v == "tiled"      ? SsdEnv::Tiled
           : v == "fp32"       ? SsdEnv::Fp32
           : v == "grouped_v1" ? SsdEnv::GroupedV1
           : v == "fp32_states" ? SsdEnv::Fp32States
                                : SsdEnv::Default;
  }();
  return mode;
}
bool ssd_mma(CudaGemmMode mode, bool chunk_states) {
  if (mode == CudaGemmMode::Fp32) return false;
  return chunk_states ? ssd_env() == SsdEnv::Default : ssd_env() != SsdEnv::Fp32;
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
// (above 48 KB with the static tiles the kernel opts in to more: up to the device's per-block limit)
bool ssd_use_grouped_backward(const SsdDev& l) {
  const std::size_t static_bytes = kGemmFloats * sizeof(float) + 64 * sizeof(double);
  int device = 0, optin = 48 * 1024;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device) != cudaSuccess) {
    return false;
  }
  return ssd_grouped(l) && ssd_group_shared_bytes(l.chunk) + static_bytes <= static_cast<std::size_t>(optin);
}

const float* opt(const Tensor& t) { return t.defined() ? t.data : nullptr; }
float* opt_mut(const Tensor& t) { return t.defined() ? t.data : nullptr; }

}  // namespace

void CudaBackend::ssd_forward(const SsdFwd& a) {
  const char* op = "cuda ssd_forward";
  const SsdDev l = ssd_dims(a.x, a.b, a.params);
  if (l.t_len == 0 || l.bsz * l.heads == 0) return;
  const int64_t heads_total = l.bsz * l.heads, blocks = heads_total * l.chunks;
  const int64_t group_blocks = l.bsz * l.groups * l.chunks, ll = l.chunk * l.chunk;
  // grouped: coef of every (b, g, c) block, then C B^T of every block
  const SsdEnv env = ssd_env();
  const bool batched = (env == SsdEnv::Default || env == SsdEnv::Fp32 || env == SsdEnv::Fp32States) && ssd_batched_fits(l);
  const bool grouped = ssd_grouped(l);
  float* coef = batched ? nullptr : state_->scratch_as<float>(2, grouped ? 2 * group_blocks * ll : blocks * ll, op);
  float* decays = state_->scratch_as<float>(4, blocks, op);
  const std::size_t shared2 = static_cast<std::size_t>(2 * l.chunk) * sizeof(float);
  const std::size_t shared3 = static_cast<std::size_t>(3 * l.chunk) * sizeof(float);
  const dim3 pass_grid(static_cast<unsigned>(heads_total),
                       static_cast<unsigned>((l.p * l.n + kThreads - 1) / kThreads));
  cudaStream_t stream = state_->stream;
  ssd_dt_kernel<<<grid_for(l.bsz * l.t_len * l.heads), kThreads, 0, stream>>>(l, a.dt.data, a.dt_raw.data,
                                                                              a.dt_bias.data);
  const bool mma_states = ssd_mma(effective_gemm_mode(), true), mma = ssd_mma(effective_gemm_mode(), false);
  const bool exact = effective_gemm_mode() == CudaGemmMode::Fp32 || env == SsdEnv::Fp32;
  if (batched) {
    ssd_forward_batched_states(*state_, l, a, decays, exact || env == SsdEnv::Fp32States, op);
  } else {
    auto* const state_kernel = mma_states ? ssd_chunk_state_kernel<true> : ssd_chunk_state_kernel<false>;
    state_kernel<<<static_cast<unsigned>(blocks), kThreads, shared2, stream>>>(
        l, a.chunk_states.data, opt_mut(a.final_state), decays, a.x.data, a.dt.data, a.a_log.data, a.b.data);
  }
  op_phase(*state_, op, "chunk states");
  ssd_state_pass_kernel<<<pass_grid, kThreads, 0, stream>>>(
      l, a.chunk_states.data, opt_mut(a.final_state), decays, opt(a.initial_state));
  op_phase(*state_, op, "state pass");
  if (batched) {
    ssd_forward_batched(*state_, l, a, exact, op);
  } else if (grouped) {
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
  const SsdEnv env = ssd_env();
  const bool batched =
      (env == SsdEnv::Default || env == SsdEnv::Fp32 || env == SsdEnv::Fp32States) && ssd_batched_fits(l);
  const bool grouped = !batched && ssd_use_grouped_backward(l);
  const int64_t chunk_blocks = grouped ? group_blocks : blocks;  // blocks of the chunk grads kernel
  float* state_grads = state_->scratch_as<float>(4, blocks * l.p * l.n, op);
  // slot 5: the chunk decays, then (batched) the (b, h, c) parameter partials, 3 doubles each
  const int64_t decay_floats = (blocks + 1) / 2 * 2;
  float* decays = state_->scratch_as<float>(5, decay_floats + (batched ? 6 * blocks : 0), op);
  float *cb = nullptr, *ds = nullptr, *fs = nullptr, *uv_base = nullptr, *uv = nullptr;
  if (!batched) {  // (the batched path takes its own scratch)
    cb = state_->scratch_as<float>(2, (grouped ? 2 : 1) * chunk_blocks * ll, op);
    ds = state_->scratch_as<float>(3, chunk_blocks * ll, op);
    fs = state_->scratch_as<float>(0, chunk_blocks * ll, op);
    // grouped: the (b, h, c) parameter partials (3 doubles = 6 floats each) first, then U and V
    const int64_t partial_floats = grouped ? 6 * blocks : 0;
    uv_base = state_->scratch_as<float>(1, partial_floats + chunk_blocks * 2 * l.chunk * l.p, op);
    uv = uv_base + partial_floats;
  }
  cudaStream_t stream = state_->stream;
  SsdGrads gr{a.dx.data, a.ddt_raw.data, a.ddt_bias.data, a.da_log.data, a.db.data, a.dc.data, opt_mut(a.dd),
              opt_mut(a.dinitial_state)};
  const std::size_t shared2 = static_cast<std::size_t>(2 * l.chunk) * sizeof(float);
  const dim3 pass_grid(static_cast<unsigned>(heads_total),
                       static_cast<unsigned>((l.p * l.n + kThreads - 1) / kThreads));
  const bool mma_states = ssd_mma(effective_gemm_mode(), true), mma = ssd_mma(effective_gemm_mode(), false);
  const bool exact = effective_gemm_mode() == CudaGemmMode::Fp32 || env == SsdEnv::Fp32;
  if (batched) {
    ssd_backward_batched_states(*state_, l, a, state_grads, decays, exact || env == SsdEnv::Fp32States, op);
  } else {
    auto* const state_grad_kernel =
        mma_states ? ssd_chunk_state_grad_kernel<true> : ssd_chunk_state_grad_kernel<false>;
    state_grad_kernel<<<static_cast<unsigned>(blocks), kThreads, shared2, stream>>>(
        l, state_grads, decays, a.dy.data, a.dt.data, a.a_log.data, a.c.data);
  }
  op_phase(*state_, op, "chunk state grads");
  ssd_state_grad_pass_kernel<<<pass_grid, kThreads, 0, stream>>>(
      l, state_grads, decays, opt(a.dfinal_state), opt_mut(a.dinitial_state));
  op_phase(*state_, op, "state grad pass");
  if (batched) {
    double* partials = reinterpret_cast<double*>(decays + decay_floats);
    ssd_backward_batched(*state_, l, a, gr, state_grads, partials, exact, op);
    ssd_param_grads_kernel<<<static_cast<unsigned>((l.heads + kThreads - 1) / kThreads), kThreads, 0, stream>>>(
        l, gr, partials, a.d.defined());
    finish_op(op, "param grads");
    return;
  }
  if (grouped) {
    double* partials = reinterpret_cast<double*>(uv_base);
    const bool sum_fs = ssd_env() != SsdEnv::GroupedV1 && l.heads > l.groups;  // one head: nothing to sum
    auto* const grads_kernel = mma ? (sum_fs ? ssd_chunk_backward_group_kernel<true, true>
                                             : ssd_chunk_backward_group_kernel<true, false>)
                                   : (sum_fs ? ssd_chunk_backward_group_kernel<false, true>
                                             : ssd_chunk_backward_group_kernel<false, false>);
    const std::size_t shared = ssd_group_shared_bytes(l.chunk);
    STRATA_CUDA_CHECK(cudaFuncSetAttribute(grads_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                           static_cast<int>(shared)),
                      op);
    grads_kernel<<<static_cast<unsigned>(group_blocks), kThreads, shared, stream>>>(
        l, gr, a.dy.data, a.x.data, a.dt_raw.data, a.dt_bias.data, a.a_log.data, a.b.data, a.c.data, opt(a.d),
        a.dt.data, a.chunk_states.data, state_grads, cb + group_blocks * ll, cb, ds, fs, uv, partials);
    op_phase(*state_, op, "chunk grads");
    if (sum_fs) {
      auto* const fs_kernel = mma ? ssd_chunk_fs_grads_kernel<true> : ssd_chunk_fs_grads_kernel<false>;
      fs_kernel<<<static_cast<unsigned>(group_blocks), kThreads, 0, stream>>>(l, a.db.data, a.dc.data, a.b.data,
                                                                              a.c.data, fs);
      op_phase(*state_, op, "chunk fs grads");
    }
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
