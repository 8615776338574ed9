// CUDA GEMM through cuBLASLt, in three modes (CudaGemmMode):
//   fp32 : the row-major call maps onto column-major cuBLASLt as C^T = op(B)^T op(A)^T with no copies,
//          CUBLAS_COMPUTE_32F (no TF32), exact up to float32 summation order.
//   bf16 : both operands are converted on the GPU into bf16 copies in the layout they are stored in
//          (a row-by-row conversion at memory bandwidth; K zero-padded to Kp = K rounded up to 16,
//          the other side's rows to a multiple of 8), the transposes passed to cuBLASLt as operation
//          flags; one cuBLASLt matmul with fp32 accumulation and fp32 C/D.
//   fp8  : both operands are scaled by 448 / amax (per-tensor, computed on the GPU; delayed for the
//          mode's own tagged GEMMs: the amax the same operand site's pack recorded at its previous
//          call, so each operand is read once; current for a policy's fp8_e4m3 cells, a site's first
//          call and STRATA_CUDA_FP8_SCALING=current), rounded to e4m3
//          with saturation and packed K-contiguous (A as (M,Kp), B as (N,Kp), transposes folded into
//          the copy: fp8 tensor-core kernels take only the "TN" layout); cuBLASLt's A/B scale pointers
//          multiply the product by amax_a/448 * amax_b/448. Needs sm_89+; older GPUs run bf16 (one
//          log line). M and N are zero-padded to multiples of 16. Where cuBLASLt offers no fp8
//          kernel with an fp32 output (cuBLASLt 13.x on the H200), or M/N needed padding, D is
//          written in bf16 to scratch and added to C in fp32 (one log line).
// beta = 0 never reads C: cuBLASLt does not read C when beta is 0 and the fp8 staging add skips it,
// so NaN garbage cannot leak (STRATA_CUDA_GEMM_CLEAR_C=1 clears C first as before, for an A/B);
// k = 0 scales C by beta.
// Algorithms come from the cuBLASLt heuristic once per problem shape and operand alignment: on the
// first call of a shape up to 6 of its candidates are timed (CUDA events, a warm-up and 2 launches
// each, on the real operands; a beta != 0 call times into a scratch D so C is not touched) and the
// fastest is cached. STRATA_CUDA_GEMM_TUNE=0 caches the first candidate cuBLASLt accepts instead
// (also what happens while a CUDA graph is being recorded); STRATA_CUDA_GEMM_TUNE=log prints one line
// per tuned shape. A problem no candidate accepts is remembered as unsupported.
// bf16 packs of operands that lie in parameter memory (weights in decode, eval, generate, and
// between gradient-accumulation micro-steps) are kept per source and layout and reused while the
// ParameterMemory generation is unchanged (optimizer steps, uploads and elementwise writes into
// parameters change it); STRATA_CUDA_WEIGHT_PACKS=0 packs every call into scratch instead. A
// recording reuses only packs that are current, and a replay refreshes stale ones first.
// bf16 packs of other operands go to scratch slots, and the next GEMM takes an operand from there
// instead of packing it again when it is the same memory in the same layout (source, rows, cols,
// ld, padded shape), no other op ran in between (CudaBackendState::op_serial: every op, upload,
// wait, recording and replay bumps it) and the GEMM that packed it did not write over its source:
// linear_backward's dgrad and wgrad both read dY stored (M, O). The operand packed afresh then goes
// to a slot the reused pack is not in. Device memory mode only (host code writes managed memory
// between ops); STRATA_CUDA_PACK_REUSE=0 packs every operand every call.
// GemmCall::arithmetic (set by the precision hook for a per-layer policy) picks the mode of one call;
// Default uses the backend's mode. This file is not the precision policy (ops/quant_gemm.*), which
// runs before any backend GEMM.
#include <cuda_bf16.h>
#include <cuda_fp8.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <type_traits>

#include "../ops/gemm.h"
#include "cuda_common.cuh"

namespace strata {
namespace {

constexpr int64_t kKAlignment = 16;
constexpr float kE4m3Max = 448.0f;

int64_t round_up(int64_t v, int64_t unit) { return (v + unit - 1) / unit * unit; }

template <typename Out>
__device__ __forceinline__ Out convert_element(float v) {
  if constexpr (std::is_same_v<Out, __nv_bfloat16>) {
    return __float2bfloat16_rn(v);
  } else {
    return __nv_cvt_float_to_fp8(v, __NV_SATFINITE, __NV_E4M3);  // Out = __nv_fp8_storage_t
  }
}

// *amax = max(*amax, v) for a non-negative v, as float bits. Reads first and skips the atomic when
// the slot already holds as much: the slot only grows, so a stale read costs at most one extra
// atomic, and most of a pack's blocks add nothing after the first few (no contention on one address).
__device__ __forceinline__ void raise_amax(unsigned int* amax, float v) {
  const unsigned int bits = __float_as_uint(v);
  if (bits > *reinterpret_cast<volatile unsigned int*>(amax)) atomicMax(amax, bits);
}

// Eight packed elements, stored with one 16-byte (bf16) or 8-byte (fp8) write.
template <typename Out>
struct alignas(8 * sizeof(Out)) Packed8 {
  Out v[8];
};

// dst (padded_rows, kp) row-major, element (r, p) = src[r * ld + p] for r < rows and p < k, else 0
// (times *scale when given). Thread = 8 consecutive p of one row (kp is a multiple of 8): two float4
// loads when `vec` (src 16-byte aligned, ld a multiple of 4) and the 8 lie inside k, else scalar
// loads; grid (kp / 8 / blockDim.x, rows in a grid-stride loop over blockIdx.y), so no element index
// is divided. With `amax_out`, the largest |value| read (before scaling) goes there too (one
// atomicMax per block, as float bits): what delayed fp8 scaling uses for the next call.
template <typename Out>
__global__ void pack_k_major(Out* dst, const float* src, int64_t rows, int64_t padded_rows, int64_t k, int64_t kp,
                             int64_t ld, bool vec, const float* scale, unsigned int* amax_out) {
  const int64_t p = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) * 8;
  const float factor = scale ? *scale : 1.0f;
  float seen = 0.0f;
  for (int64_t r = blockIdx.y; p < kp && r < padded_rows; r += gridDim.y) {
    float v[8];
    const float* row = src + r * ld;
    if (r < rows && vec && p + 8 <= k) {
      const float4 lo = *reinterpret_cast<const float4*>(row + p), hi = *reinterpret_cast<const float4*>(row + p + 4);
      v[0] = lo.x, v[1] = lo.y, v[2] = lo.z, v[3] = lo.w, v[4] = hi.x, v[5] = hi.y, v[6] = hi.z, v[7] = hi.w;
    } else {
      for (int e = 0; e < 8; ++e) v[e] = r < rows && p + e < k ? row[p + e] : 0.0f;
    }
    Packed8<Out> out;
    for (int e = 0; e < 8; ++e) {
      seen = fmaxf(seen, fabsf(v[e]));
      out.v[e] = convert_element<Out>(v[e] * factor);
    }
    *reinterpret_cast<Packed8<Out>*>(dst + r * kp + p) = out;
  }
  if (amax_out) {  // uniform over the grid: every thread of the block takes part
    __shared__ float shared[32];
    const float block = block_max(seen, shared);
    if (threadIdx.x == 0) raise_amax(amax_out, block);
  }
}

// pack_k_major of a transposed source, element (r, p) = src[p * ld + r], through a 32 x 32
// shared-memory tile, so both the reads (along r) and the writes (along p) are coalesced;
// block (32, 8), grid (padded_rows/32, kp/32). Only the fp8 mode packs this way (bf16 operands keep
// their stored layout).
template <typename Out>
__global__ void pack_k_major_transposed(Out* dst, const float* src, int64_t rows, int64_t padded_rows, int64_t k,
                                        int64_t kp, int64_t ld, const float* scale, unsigned int* amax_out) {
  __shared__ float tile[32][33];
  const float factor = scale ? *scale : 1.0f;
  const int64_t r0 = static_cast<int64_t>(blockIdx.x) * 32, p0 = static_cast<int64_t>(blockIdx.y) * 32;
  float seen = 0.0f;
  for (int j = threadIdx.y; j < 32; j += 8) {
    const int64_t r = r0 + threadIdx.x, p = p0 + j;
    const float v = r < rows && p < k ? src[p * ld + r] : 0.0f;
    seen = fmaxf(seen, fabsf(v));
    tile[j][threadIdx.x] = v * factor;
  }
  __syncthreads();
  for (int j = threadIdx.y; j < 32; j += 8) {
    const int64_t r = r0 + j, p = p0 + threadIdx.x;
    if (r < padded_rows && p < kp) dst[r * kp + p] = convert_element<Out>(tile[threadIdx.x][j]);
  }
  if (amax_out) {  // see pack_k_major; block (32, 8): a warp per threadIdx.y, then one value per block
    __shared__ float warps[8];
    seen = warp_max(seen);
    if (threadIdx.x == 0) warps[threadIdx.y] = seen;
    __syncthreads();
    if (threadIdx.x == 0 && threadIdx.y == 0) {
      float block = 0.0f;
      for (int w = 0; w < 8; ++w) block = fmaxf(block, warps[w]);
      raise_amax(amax_out, block);
    }
  }
}

// Packs op(src) (src, or its transpose) into dst (padded_rows, kp) row-major, zero-padded; dst is
// 16-byte aligned (scratch or a weight pack) and kp a multiple of 8.
template <typename Out>
void launch_pack(Out* dst, const float* src, int64_t rows, int64_t padded_rows, int64_t k, int64_t kp, int64_t ld,
                 bool transposed, const float* scale, cudaStream_t stream, unsigned int* amax_out = nullptr) {
  if (transposed) {
    const dim3 grid(static_cast<unsigned>((padded_rows + 31) / 32), static_cast<unsigned>((kp + 31) / 32));
    pack_k_major_transposed<Out>
        <<<grid, dim3(32, 8), 0, stream>>>(dst, src, rows, padded_rows, k, kp, ld, scale, amax_out);
  } else {
    const bool vec = reinterpret_cast<uintptr_t>(src) % 16 == 0 && ld % 4 == 0;
    const int64_t threads = std::min<int64_t>(kThreads, round_up(kp / 8, 32));  // whole warps (block_max)
    const dim3 grid(static_cast<unsigned>((kp / 8 + threads - 1) / threads),
                    static_cast<unsigned>(std::min<int64_t>(padded_rows, 65535)));
    pack_k_major<Out><<<grid, static_cast<unsigned>(threads), 0, stream>>>(dst, src, rows, padded_rows, k, kp, ld, vec,
                                                                          scale, amax_out);
  }
}

// Largest |value| of a row-major matrix (rows x cols, leading dimension ld) into *out as float bits
// (non-negative floats order like their bits). Thread = 4 consecutive columns of a row (one float4
// load when `vec`: src 16-byte aligned, ld and cols multiples of 4), rows in a grid-stride loop over
// blockIdx.y; no element index is divided. One atomicMax per block.
__global__ void matrix_amax(const float* src, int64_t rows, int64_t cols, int64_t ld, bool vec, unsigned int* out) {
  __shared__ float shared[32];
  float local = 0.0f;
  const int64_t c = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) * 4;
  if (c < cols) {
    for (int64_t r = blockIdx.y; r < rows; r += gridDim.y) {
      const float* at = src + r * ld + c;
      if (vec) {
        const float4 v = *reinterpret_cast<const float4*>(at);
        local = fmaxf(local, fmaxf(fmaxf(fabsf(v.x), fabsf(v.y)), fmaxf(fabsf(v.z), fabsf(v.w))));
      } else {
        for (int e = 0; e < 4 && c + e < cols; ++e) local = fmaxf(local, fabsf(at[e]));
      }
    }
  }
  const float block = block_max(local, shared);  // every thread takes part (no early return above)
  if (threadIdx.x == 0) raise_amax(out, block);
}

// A 2D launch over a row-major matrix for kernels whose thread covers `per_thread` consecutive
// columns and whose blocks stride over rows: about 2048 blocks in all.
struct RowsLaunch {
  dim3 grid;
  unsigned threads;
};
RowsLaunch rows_launch(int64_t rows, int64_t cols, int64_t per_thread) {
  const int64_t lanes = (cols + per_thread - 1) / per_thread;
  const int64_t threads = std::min<int64_t>(kThreads, std::max<int64_t>(32, (lanes + 31) / 32 * 32));
  const int64_t blocks_x = (lanes + threads - 1) / threads;
  const int64_t blocks_y = std::max<int64_t>(1, std::min<int64_t>({rows, 65535, std::max<int64_t>(1, 2048 / blocks_x)}));
  return {dim3(static_cast<unsigned>(blocks_x), static_cast<unsigned>(blocks_y)), static_cast<unsigned>(threads)};
}

void launch_amax(const float* src, int64_t rows, int64_t cols, int64_t ld, unsigned int* out, cudaStream_t stream) {
  const bool vec = reinterpret_cast<uintptr_t>(src) % 16 == 0 && ld % 4 == 0 && cols % 4 == 0;
  const RowsLaunch l = rows_launch(rows, cols, 4);
  matrix_amax<<<l.grid, l.threads, 0, stream>>>(src, rows, cols, ld, vec, out);
}

// Scale slots, each 16-byte aligned (cuBLASLt reads the dequantization scales through pointers):
// amax_a [0], amax_b [1], scale_a [4], scale_b [8], inv_a [12], inv_b [16].
constexpr int kScaleSlot = 4, kInvSlot = 12;
// Per operand i (A, B): the amax is this call's pass (slot i), or with delayed scaling the amax the
// operand's site recorded at its last call (site_amax[site_i], when use_site_i); then the site's
// slot is cleared for this call's pack to record into. An all-zero or non-finite amax keeps scale 1.
__global__ void fp8_scales_kernel(float* scales, unsigned int* site_amax, int site_a, int site_b, bool use_site_a,
                                  bool use_site_b) {
  const int site[2] = {site_a, site_b};
  const bool use_site[2] = {use_site_a, use_site_b};
  for (int i = 0; i < 2; ++i) {
    const float amax = use_site[i] ? __uint_as_float(site_amax[site[i]]) : scales[i];
    const float scale = (amax > 0.0f && isfinite(amax)) ? kE4m3Max / amax : 1.0f;
    scales[kScaleSlot + 4 * i] = scale;
    scales[kInvSlot + 4 * i] = 1.0f / scale;
    if (site[i] >= 0) site_amax[site[i]] = 0u;
  }
}

bool fp8_delayed_scaling() {
  static const bool delayed = [] {
    const char* env = std::getenv("STRATA_CUDA_FP8_SCALING");
    return !(env && std::strcmp(env, "current") == 0);
  }();
  return delayed;
}

// c (rows x cols, ld) = beta * c, or 0 when beta == 0 (k = 0 products). Thread = one column, rows
// strided over blockIdx.y (rows_launch with 1 column per thread).
__global__ void scale_matrix(float* c, int64_t rows, int64_t cols, int64_t ld, float beta) {
  const int64_t col = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (col >= cols) return;
  for (int64_t r = blockIdx.y; r < rows; r += gridDim.y) {
    float& v = c[r * ld + col];
    v = beta == 0.0f ? 0.0f : v * beta;
  }
}

// c (rows x cols, ld) = staged (rows x cols of a bf16 matrix with leading dimension staged_ld)
// + beta * c; c is not read when beta == 0. Launched like scale_matrix.
__global__ void add_staged_bf16(float* c, const __nv_bfloat16* staged, int64_t rows, int64_t cols, int64_t ld,
                                int64_t staged_ld, float beta) {
  const int64_t col = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (col >= cols) return;
  for (int64_t r = blockIdx.y; r < rows; r += gridDim.y) {
    float& v = c[r * ld + col];
    v = __bfloat162float(staged[r * staged_ld + col]) + (beta == 0.0f ? 0.0f : beta * v);
  }
}

struct LtMatrix {
  cublasLtMatrixLayout_t layout = nullptr;
  ~LtMatrix() {
    if (layout) cublasLtMatrixLayoutDestroy(layout);
  }
};
struct LtDesc {
  cublasLtMatmulDesc_t desc = nullptr;
  ~LtDesc() {
    if (desc) cublasLtMatmulDescDestroy(desc);
  }
};
struct LtPreference {
  cublasLtMatmulPreference_t pref = nullptr;
  ~LtPreference() {
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
  }
};

// Column-major problem for cuBLASLt: D (m x n, ldd) = alpha op(A) op(B) + beta C.
struct LtProblem {
  cudaDataType_t ab_type;
  const void* a;
  int64_t a_rows, a_cols, lda;
  cublasOperation_t op_a;
  const void* b;
  int64_t b_rows, b_cols, ldb;
  cublasOperation_t op_b;
  void* d;
  cudaDataType_t d_type;  // C has the same type and layout (C and D are the same buffer)
  int64_t m, n, k, ldd;
  float alpha, beta;
  const float* a_scale;  // device pointers (fp8 only)
  const float* b_scale;
};

// Largest power of two (<= 256) dividing the address: cuBLASLt's heuristic assumes 256-byte aligned
// operands unless told otherwise, and engine tensors may be row offsets into larger buffers.
uint32_t alignment_of(const void* pointer) {
  const auto address = reinterpret_cast<uintptr_t>(pointer);
  const uintptr_t lowest = address & (~address + 1);
  return static_cast<uint32_t>(lowest == 0 || lowest > 256 ? 256 : lowest);
}

bool weight_packs_enabled() {
  static const bool enabled = [] {
    const char* env = std::getenv("STRATA_CUDA_WEIGHT_PACKS");
    return !(env && std::strcmp(env, "0") == 0);
  }();
  return enabled;
}

bool pack_reuse_enabled() {
  static const bool enabled = [] {
    const char* env = std::getenv("STRATA_CUDA_PACK_REUSE");
    return !(env && std::strcmp(env, "0") == 0);
  }();
  return enabled;
}

// The previous GEMM's scratch packs when no op ran since it ended (else none). The record is
// cleared, so a GEMM that packs into scratch and then fails leaves no entry that names a slot it
// overwrote; a bf16 GEMM that completes records its own packs (remember_scratch_packs).
void take_scratch_packs(CudaBackendState& s, ScratchPack (&out)[2]) {
  std::lock_guard<std::mutex> lock(s.scratch_packs_mutex);
  const bool current = s.scratch_packs_serial == s.op_serial.load(std::memory_order_relaxed);
  for (int i = 0; i < 2; ++i) {
    out[i] = current ? s.scratch_packs[i] : ScratchPack{};
    s.scratch_packs[i] = ScratchPack{};
  }
}

// [begin, end) byte addresses of a row-major (rows x cols, ld) float matrix.
std::pair<uintptr_t, uintptr_t> matrix_span(const float* p, int64_t rows, int64_t cols, int64_t ld) {
  return {reinterpret_cast<uintptr_t>(p), reinterpret_cast<uintptr_t>(p + (rows - 1) * ld + cols)};
}

enum class GemmTune { Off, On, Log };
GemmTune gemm_tune_setting() {
  static const GemmTune setting = [] {
    const char* env = std::getenv("STRATA_CUDA_GEMM_TUNE");
    if (env && std::strcmp(env, "0") == 0) return GemmTune::Off;
    if (env && std::strcmp(env, "log") == 0) return GemmTune::Log;
    return GemmTune::On;
  }();
  return setting;
}

// Times up to kTuned accepted candidates of a problem (a warm-up launch, then kTimedLaunches between
// two events, synchronizing); `launch(algo, d)` runs the problem into d. A beta == 0 problem times
// into its own D (the chosen algorithm overwrites it afterwards); otherwise into a temporary D of
// the same layout, so C keeps its values. Returns the index of the fastest, or -1 when timing is
// not possible (no memory for the scratch D, no candidate ran).
template <typename Launch>
int fastest_candidate(const LtProblem& p, const cublasLtMatmulHeuristicResult_t* results, int found, Launch&& launch,
                      cudaStream_t stream) {
  constexpr int kTuned = 6, kTimedLaunches = 2;
  void* d = p.d;
  void* scratch = nullptr;
  if (p.beta != 0.0f) {
    const std::size_t element = p.d_type == CUDA_R_32F ? 4 : 2;
    const std::size_t bytes = element * static_cast<std::size_t>(p.ldd * (p.n - 1) + p.m);
    if (cudaMalloc(&scratch, bytes) != cudaSuccess) {
      cudaGetLastError();  // clear the allocation error; the caller falls back to the first candidate
      return -1;
    }
    d = scratch;
  }
  cudaEvent_t start = nullptr, stop = nullptr;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  int best = -1, tried = 0;
  float best_ms = 0.0f, first_ms = -1.0f;
  for (int i = 0; i < found && tried < kTuned; ++i) {
    if (results[i].state != CUBLAS_STATUS_SUCCESS) continue;
    if (launch(results[i].algo, d) != CUBLAS_STATUS_SUCCESS) continue;  // warm-up; rejected candidates skip
    ++tried;
    cudaEventRecord(start, stream);
    bool ok = true;
    for (int r = 0; r < kTimedLaunches && ok; ++r) ok = launch(results[i].algo, d) == CUBLAS_STATUS_SUCCESS;
    cudaEventRecord(stop, stream);
    float ms = 0.0f;
    if (!ok || cudaEventSynchronize(stop) != cudaSuccess || cudaEventElapsedTime(&ms, start, stop) != cudaSuccess) {
      continue;
    }
    if (first_ms < 0.0f) first_ms = ms;
    if (best < 0 || ms < best_ms) best = i, best_ms = ms;
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  if (scratch) {
    cudaStreamSynchronize(stream);
    cudaFree(scratch);
  }
  if (best >= 0 && gemm_tune_setting() == GemmTune::Log) {
    std::fprintf(stderr, "strata: gemm tune m=%lld n=%lld k=%lld type %d: %d candidates timed, first %.1f us, "
                 "chosen #%d %.1f us\n", static_cast<long long>(p.m), static_cast<long long>(p.n),
                 static_cast<long long>(p.k), static_cast<int>(p.ab_type), tried, 1000.0f * first_ms / kTimedLaunches,
                 best, 1000.0f * best_ms / kTimedLaunches);
  }
  return best;
}

// Runs the problem with a cached algorithm, or picks one among the heuristic's candidates (up to 8):
// the fastest when tuning (see the header), else the first cuBLASLt accepts, and caches it. Returns
// false when no candidate is supported.
bool run_lt(CudaBackendState& s, const LtProblem& p, GemmPlanKey key, const char* op) {
  const uint32_t align_a = alignment_of(p.a), align_b = alignment_of(p.b), align_d = alignment_of(p.d);
  std::get<10>(key) = static_cast<int>(align_a | (align_b << 9) | (align_d << 18));
  LtDesc desc;
  STRATA_CUBLAS_CHECK(cublasLtMatmulDescCreate(&desc.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F), op);
  STRATA_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc.desc, CUBLASLT_MATMUL_DESC_TRANSA, &p.op_a, sizeof(p.op_a)), op);
  STRATA_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc.desc, CUBLASLT_MATMUL_DESC_TRANSB, &p.op_b, sizeof(p.op_b)), op);
  if (p.a_scale) {
    STRATA_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc.desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &p.a_scale,
                                                       sizeof(p.a_scale)), op);
    STRATA_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc.desc, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &p.b_scale,
                                                       sizeof(p.b_scale)), op);
  }
  LtMatrix la, lb, ld;
  STRATA_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&la.layout, p.ab_type, p.a_rows, p.a_cols, p.lda), op);
  STRATA_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&lb.layout, p.ab_type, p.b_rows, p.b_cols, p.ldb), op);
  STRATA_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&ld.layout, p.d_type, p.m, p.n, p.ldd), op);
  auto launch_into = [&](const cublasLtMatmulAlgo_t& algo, void* d) {
    return cublasLtMatmul(s.lt, desc.desc, &p.alpha, p.a, la.layout, p.b, lb.layout, &p.beta, d, ld.layout, d,
                          ld.layout, &algo, s.lt_workspace, s.lt_workspace_bytes, s.stream);
  };
  auto launch = [&](const cublasLtMatmulAlgo_t& algo) { return launch_into(algo, p.d); };
  {
    std::lock_guard<std::mutex> lock(s.gemm_plan_mutex);
    if (s.gemm_unsupported.count(key)) return false;
    auto it = s.gemm_plans.find(key);
    if (it != s.gemm_plans.end()) {
      STRATA_CUBLAS_CHECK(launch(it->second), op);
      return true;
    }
  }
  LtPreference pref;
  STRATA_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref.pref), op);
  STRATA_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref.pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                           &s.lt_workspace_bytes, sizeof(s.lt_workspace_bytes)), op);
  const std::pair<cublasLtMatmulPreferenceAttributes_t, uint32_t> alignments[] = {
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, align_a},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, align_b},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, align_d},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, align_d}};
  for (const auto& [attribute, bytes] : alignments) {
    STRATA_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref.pref, attribute, &bytes, sizeof(bytes)), op);
  }
  constexpr int kCandidates = 8;
  cublasLtMatmulHeuristicResult_t results[kCandidates] = {};
  int found = 0;
  const cublasStatus_t heuristic = cublasLtMatmulAlgoGetHeuristic(s.lt, desc.desc, la.layout, lb.layout, ld.layout,
                                                                  ld.layout, pref.pref, kCandidates, results, &found);
  if (heuristic != CUBLAS_STATUS_NOT_SUPPORTED) STRATA_CUBLAS_CHECK(heuristic, op);
  int first = 0;  // candidates before the timed fastest are skipped below
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  STRATA_CUDA_CHECK(cudaStreamIsCapturing(s.stream, &capture), op);
  if (heuristic == CUBLAS_STATUS_SUCCESS && found > 1 && gemm_tune_setting() != GemmTune::Off &&
      capture == cudaStreamCaptureStatusNone) {
    first = std::max(0, fastest_candidate(p, results, found, launch_into, s.stream));
  }
  int rejected = 0;
  for (int i = first; heuristic == CUBLAS_STATUS_SUCCESS && i < found; ++i) {
    if (results[i].state != CUBLAS_STATUS_SUCCESS) continue;
    const cublasStatus_t status = launch(results[i].algo);
    if (status == CUBLAS_STATUS_NOT_SUPPORTED) {
      ++rejected;
      continue;
    }
    STRATA_CUBLAS_CHECK(status, op);
    std::lock_guard<std::mutex> lock(s.gemm_plan_mutex);
    s.gemm_plans[key] = results[i].algo;
    return true;
  }
  std::lock_guard<std::mutex> lock(s.gemm_plan_mutex);
  s.gemm_unsupported.insert(key);
  s.last_gemm_refusal = detail::concat("heuristic status ", static_cast<int>(heuristic), ", ", found,
                                       " candidates, ", rejected, " rejected by cublasLtMatmul (A/B type ",
                                       static_cast<int>(p.ab_type), ", D type ", static_cast<int>(p.d_type), ")");
  return false;
}

}  // namespace

int CudaBackendState::fp8_site(const GemmTag& tag, int operand, bool* seen) {
  std::string key = tag.role ? tag.role : "";
  key += '|' + std::to_string(tag.layer) + '|' + std::to_string(tag.mtp_depth) + '|' +
         std::to_string(static_cast<int>(tag.pass)) + '|' + std::to_string(operand);
  std::lock_guard<std::mutex> lock(gemm_plan_mutex);
  auto it = fp8_sites.find(key);
  if (it != fp8_sites.end()) {
    *seen = true;
    return it->second;
  }
  *seen = false;
  if (static_cast<int>(fp8_sites.size()) >= kFp8Sites) return -1;  // out of slots: current scaling
  const int site = static_cast<int>(fp8_sites.size());
  fp8_sites.emplace(std::move(key), site);
  return site;
}

void* CudaBackendState::weight_pack(const WeightPackKey& key, bool may_create, const char* op) {
  const auto& [source, rows, padded_rows, k, kp, ld, transposed] = key;
  const uint64_t generation = parameters.generation();
  std::lock_guard<std::mutex> lock(gemm_plan_mutex);
  auto it = weight_packs.find(key);
  bool stale = it != weight_packs.end() && it->second.generation != generation;
  if (it == weight_packs.end()) {
    if (!may_create || recording) return nullptr;
    void* data = nullptr;
    if (cudaMalloc(&data, static_cast<std::size_t>(padded_rows * kp) * sizeof(__nv_bfloat16)) != cudaSuccess) {
      cudaGetLastError();  // no room: this call packs into scratch
      return nullptr;
    }
    it = weight_packs.emplace(key, WeightPack{data, generation}).first;
    stale = true;
  }
  if (stale) {
    if (recording) return nullptr;  // a captured pack would only run at replay: pack into scratch instead
    launch_pack(static_cast<__nv_bfloat16*>(it->second.data), source, rows, padded_rows, k, kp, ld, transposed != 0,
                nullptr, stream);
    STRATA_CUDA_CHECK(cudaGetLastError(), op);
    it->second.generation = generation;
  }
  if (recording) recorded_packs.push_back(key);
  return it->second.data;
}

void CudaBackendState::drop_weight_packs(const void* pointer, std::size_t bytes) {
  const auto begin = reinterpret_cast<uintptr_t>(pointer), end = begin + bytes;
  std::lock_guard<std::mutex> lock(gemm_plan_mutex);
  for (auto it = weight_packs.begin(); it != weight_packs.end();) {
    const auto source = reinterpret_cast<uintptr_t>(std::get<0>(it->first));
    if (source >= begin && source < end) {
      cudaFree(it->second.data);  // waits for the device, so no queued GEMM still reads it
      it = weight_packs.erase(it);
    } else {
      ++it;
    }
  }
}

void CudaBackend::gemm(const GemmCall& call) {
  const char* op = "cuda gemm";
  CudaBackendState& s = *state_;
  if (call.m == 0 || call.n == 0) return;
  ScratchPack previous_packs[2], next_packs[2];
  take_scratch_packs(s, previous_packs);
  const auto [c_begin, c_end] = matrix_span(call.c, call.m, call.n, call.ldc);
  // The op timing's row: "gemm <role> <pass>" (built only while op timing is on).
  const std::string timing_label =
      s.op_times ? detail::concat(call.tag.role ? call.tag.role : "", " ", gemm_pass_name(call.tag.pass)) : "";
  if (call.k == 0 || call.alpha == 0.0f) {
    const RowsLaunch l = rows_launch(call.m, call.n, 1);
    scale_matrix<<<l.grid, l.threads, 0, s.stream>>>(call.c, call.m, call.n, call.ldc, call.beta);
    finish_op(op, timing_label.c_str());
    return;
  }
  static const bool clear_c = [] {
    const char* env = std::getenv("STRATA_CUDA_GEMM_CLEAR_C");
    return env && std::strcmp(env, "1") == 0;
  }();
  if (call.beta == 0.0f && clear_c) {
    STRATA_CUDA_CHECK(cudaMemset2DAsync(call.c, call.ldc * sizeof(float), 0, call.n * sizeof(float), call.m, s.stream), op);
  }
  // The precision hook's per-call arithmetic (a per-layer policy) overrides the backend's mode.
  CudaGemmMode requested = gemm_mode_;
  switch (call.arithmetic) {
    case GemmArithmetic::Default: break;
    case GemmArithmetic::Fp32: requested = CudaGemmMode::Fp32; break;
    case GemmArithmetic::Bf16: requested = CudaGemmMode::Bf16; break;
    case GemmArithmetic::Fp8E4M3: requested = CudaGemmMode::Fp8E4m3; break;
  }
  const CudaGemmMode mode = supported_gemm_mode(requested);
  if (mode != requested && !s.fp8_fallback_logged) {
    std::fprintf(stderr, "strata: %s (sm_%d) has no FP8 tensor cores; FP8 GEMMs run in BF16\n", name(),
                 compute_capability());
    s.fp8_fallback_logged = true;
  }
  const GemmPlanKey key{static_cast<int>(mode), call.m, call.n, call.k, call.lda, call.ldb, call.ldc,
                        int(call.trans_a), int(call.trans_b), int(call.beta != 0.0f), 0};
  if (mode == CudaGemmMode::Fp32) {
    LtProblem p{};
    p.ab_type = CUDA_R_32F;
    p.a = call.b;  // column-major view: D^T (N x M) = op(B)^T op(A)^T
    p.a_rows = call.trans_b ? call.k : call.n;
    p.a_cols = call.trans_b ? call.n : call.k;
    p.lda = call.ldb;
    p.op_a = call.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
    p.b = call.a;
    p.b_rows = call.trans_a ? call.m : call.k;
    p.b_cols = call.trans_a ? call.k : call.m;
    p.ldb = call.lda;
    p.op_b = call.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
    p.d = call.c, p.d_type = CUDA_R_32F;
    p.m = call.n, p.n = call.m, p.k = call.k, p.ldd = call.ldc;
    p.alpha = call.alpha, p.beta = call.beta;
    STRATA_CHECK(run_lt(s, p, key, op), op, ": cuBLASLt has no fp32 algorithm for m=", call.m, " n=", call.n,
                 " k=", call.k, " (", s.last_gemm_refusal, ")");
    finish_op(op, timing_label.c_str());
    return;
  }
  const int64_t kp = round_up(call.k, kKAlignment);
  const bool fp8 = mode == CudaGemmMode::Fp8E4m3;
  // fp8 kernels want every dimension a multiple of 16: pad M and N with zero rows (the padded part
  // of the product is never copied out).
  const int64_t mp = fp8 ? round_up(call.m, kKAlignment) : call.m;
  const int64_t np = fp8 ? round_up(call.n, kKAlignment) : call.n;
  const float *inv_a = nullptr, *inv_b = nullptr;
  // cuBLASLt's column-major problem is D^T (N x M) = op(lt A) (N x Kp) op(lt B) (Kp x M): lt A holds
  // op(B), lt B holds op(A).
  LtProblem p{};
  p.ab_type = fp8 ? CUDA_R_8F_E4M3 : CUDA_R_16BF;
  if (fp8) {
    void* packed_a = s.scratch_bytes(0, static_cast<std::size_t>(mp * kp), op);
    void* packed_b = s.scratch_bytes(1, static_cast<std::size_t>(np * kp), op);
    const int64_t a_rows = call.trans_a ? call.k : call.m, a_cols = call.trans_a ? call.m : call.k;
    const int64_t b_rows = call.trans_b ? call.n : call.k, b_cols = call.trans_b ? call.k : call.n;
    // Delayed scaling (the default for the fp8 mode's own GEMMs; not for a policy's fp8_e4m3 cells,
    // whose recipe scales by the current amax): each tagged operand site scales by the amax its
    // previous call's pack recorded, so the operand is read once; a site's first call measures first.
    int sites[2] = {-1, -1};
    bool use_site[2] = {false, false};
    if (fp8_delayed_scaling() && call.arithmetic == GemmArithmetic::Default && call.tag.pass != GemmPass::Other) {
      for (int i = 0; i < 2; ++i) sites[i] = s.fp8_site(call.tag, i, &use_site[i]);
    }
    auto* amax = reinterpret_cast<unsigned int*>(s.fp8_scales);
    if (!use_site[0] || !use_site[1]) {
      STRATA_CUDA_CHECK(cudaMemsetAsync(s.fp8_scales, 0, 2 * sizeof(float), s.stream), op);
    }
    if (!use_site[0]) launch_amax(call.a, a_rows, a_cols, call.lda, amax, s.stream);
    if (!use_site[1]) launch_amax(call.b, b_rows, b_cols, call.ldb, amax + 1, s.stream);
    fp8_scales_kernel<<<1, 1, 0, s.stream>>>(s.fp8_scales, s.fp8_site_amax, sites[0], sites[1], use_site[0],
                                             use_site[1]);
    const float *scale_a = s.fp8_scales + kScaleSlot, *scale_b = s.fp8_scales + kScaleSlot + 4;
    inv_a = s.fp8_scales + kInvSlot, inv_b = s.fp8_scales + kInvSlot + 4;
    launch_pack(static_cast<__nv_fp8_storage_t*>(packed_a), call.a, call.m, mp, call.k, kp, call.lda, call.trans_a,
                scale_a, s.stream, sites[0] >= 0 ? s.fp8_site_amax + sites[0] : nullptr);
    launch_pack(static_cast<__nv_fp8_storage_t*>(packed_b), call.b, call.n, np, call.k, kp, call.ldb, !call.trans_b,
                scale_b, s.stream, sites[1] >= 0 ? s.fp8_site_amax + sites[1] : nullptr);
    // packed B is (Np, Kp) row-major = column-major Kp x Np, op T; packed A (Mp, Kp) = column-major Kp x Mp, op N.
    p.a = packed_b, p.a_rows = kp, p.a_cols = np, p.lda = kp, p.op_a = CUBLAS_OP_T;
    p.b = packed_a, p.b_rows = kp, p.b_cols = mp, p.ldb = kp, p.op_b = CUBLAS_OP_N;
  } else {
    // bf16: each operand is converted row by row in the layout it is stored in (rows x cols, the K
    // side zero-padded to Kp, the other side's row length rounded up to 8), and its transpose goes to
    // cuBLASLt as an operation flag. An operand inside one parameter allocation is packed once per
    // parameter generation; one the previous GEMM left in scratch is taken from there (header).
    struct Operand {
      WeightPackKey key;  // source, rows, padded rows, cols, padded cols, ld, 0
      const void* packed = nullptr;
      int slot = -1;  // the scratch slot holding the pack; -1 for a weight pack
    };
    const int64_t m8 = round_up(call.m, 8), n8 = round_up(call.n, 8);
    Operand ops[2] = {  // A: stored (K, M) -> packed (Kp, M8), or (M, K) -> (M, Kp); B: (N, K) -> (N, Kp), or (K, N) -> (Kp, N8)
        {call.trans_a ? WeightPackKey{call.a, call.k, kp, call.m, m8, call.lda, 0}
                      : WeightPackKey{call.a, call.m, call.m, call.k, kp, call.lda, 0}},
        {call.trans_b ? WeightPackKey{call.b, call.n, call.n, call.k, kp, call.ldb, 0}
                      : WeightPackKey{call.b, call.k, kp, call.n, n8, call.ldb, 0}}};
    const bool device_memory = memory_ != CudaMemoryMode::Managed;
    bool taken[3] = {false, false, false};
    for (Operand& o : ops) {
      const auto& [source, rows, padded_rows, cols, padded_cols, ld, unused] = o.key;
      const std::size_t extent = sizeof(float) * static_cast<std::size_t>((rows - 1) * ld + cols);
      if (weight_packs_enabled() && device_memory && s.parameters.covers(source, extent)) {
        if ((o.packed = s.weight_pack(o.key, true, op))) continue;
      }
      for (const ScratchPack& previous : previous_packs) {
        if (!device_memory || !pack_reuse_enabled() || previous.slot < 0 || previous.key != o.key ||
            s.scratch[previous.slot].data != previous.data) {
          continue;
        }
        o.packed = previous.data, o.slot = previous.slot;
        taken[o.slot] = true;
        std::lock_guard<std::mutex> lock(s.scratch_packs_mutex);
        ++s.scratch_pack_reuses;
        break;
      }
    }
    for (int i = 0; i < 2; ++i) {  // fresh packs: A to slot 0, B to slot 1, else the first slot not taken
      Operand& o = ops[i];
      if (o.packed) continue;
      o.slot = taken[i] ? (taken[0] ? (taken[1] ? 2 : 1) : 0) : i;
      taken[o.slot] = true;
      const auto& [source, rows, padded_rows, cols, padded_cols, ld, unused] = o.key;
      void* scratch = s.scratch_bytes(o.slot, static_cast<std::size_t>(padded_rows * padded_cols) * 2, op);
      launch_pack(static_cast<__nv_bfloat16*>(scratch), source, rows, padded_rows, cols, padded_cols, ld, false,
                  nullptr, s.stream);
      o.packed = scratch;
    }
    if (call.trans_a) {  // packed (Kp, M8) = column-major M8 x Kp, op T
      p.b = ops[0].packed, p.b_rows = call.m, p.b_cols = kp, p.ldb = m8, p.op_b = CUBLAS_OP_T;
    } else {  // packed (M, Kp) = column-major Kp x M, op N
      p.b = ops[0].packed, p.b_rows = kp, p.b_cols = call.m, p.ldb = kp, p.op_b = CUBLAS_OP_N;
    }
    if (call.trans_b) {  // packed (N, Kp) = column-major Kp x N, op T
      p.a = ops[1].packed, p.a_rows = kp, p.a_cols = call.n, p.lda = kp, p.op_a = CUBLAS_OP_T;
    } else {  // packed (Kp, N8) = column-major N8 x Kp, op N
      p.a = ops[1].packed, p.a_rows = call.n, p.a_cols = kp, p.lda = n8, p.op_a = CUBLAS_OP_N;
    }
    for (int i = 0; i < 2; ++i) {  // what the next GEMM may take: scratch packs this GEMM does not overwrite
      const auto& [source, rows, padded_rows, cols, padded_cols, ld, unused] = ops[i].key;
      const auto [begin, end] = matrix_span(source, rows, cols, ld);
      if (ops[i].slot >= 0 && (end <= c_begin || c_end <= begin)) {
        next_packs[i] = ScratchPack{ops[i].key, ops[i].slot, ops[i].packed};
      }
    }
  }
  check_launch(op);
  op_phase(s, "cuda gemm pack", timing_label.c_str());
  p.d = call.c, p.d_type = CUDA_R_32F, p.m = np, p.n = mp, p.k = kp, p.ldd = call.ldc;
  p.alpha = call.alpha, p.beta = call.beta;
  p.a_scale = inv_b, p.b_scale = inv_a;
  // Writing C directly needs the unpadded shape.
  if (mp == call.m && np == call.n && run_lt(s, p, key, op)) {
    finish_op(op, timing_label.c_str());
    if (!fp8) {
      std::lock_guard<std::mutex> lock(s.scratch_packs_mutex);
      for (int i = 0; i < 2; ++i) s.scratch_packs[i] = next_packs[i];
      s.scratch_packs_serial = s.op_serial.load(std::memory_order_relaxed);
    }
    return;
  }
  STRATA_CHECK(fp8, op, ": cuBLASLt has no bf16 algorithm for m=", call.m, " n=", call.n, " k=", call.k, " (",
               s.last_gemm_refusal, ")");
  // cuBLASLt 13.x has no fp8 kernel with an fp32 C/D on sm_90 (measured), and a padded product cannot
  // be written into C: write D in bf16 (far finer than the e4m3 inputs), then C = D + beta C in fp32.
  if (!s.fp8_bf16_output_logged) {
    std::fprintf(stderr, "strata: fp8 GEMMs on %s that cuBLASLt cannot write in fp32 (first: m=%lld n=%lld k=%lld "
                 "beta %g, %s) write a bf16 product and accumulate it into C in fp32\n", name(),
                 static_cast<long long>(call.m), static_cast<long long>(call.n), static_cast<long long>(call.k),
                 call.beta, mp == call.m && np == call.n ? s.last_gemm_refusal.c_str() : "M or N padded to 16");
    s.fp8_bf16_output_logged = true;
  }
  auto* staged = static_cast<__nv_bfloat16*>(s.scratch_bytes(5, static_cast<std::size_t>(mp * np) * 2, op));
  LtProblem staged_problem = p;
  staged_problem.d = staged, staged_problem.d_type = CUDA_R_16BF, staged_problem.ldd = np;
  staged_problem.beta = 0.0f;
  GemmPlanKey staged_key = key;
  std::get<0>(staged_key) += 16;
  STRATA_CHECK(run_lt(s, staged_problem, staged_key, op), op, ": cuBLASLt has no fp8 algorithm for m=", call.m,
               " n=", call.n, " k=", call.k, " (", s.last_gemm_refusal, ")");
  const RowsLaunch l = rows_launch(call.m, call.n, 1);
  add_staged_bf16<<<l.grid, l.threads, 0, s.stream>>>(call.c, staged, call.m, call.n, call.ldc, np, call.beta);
  finish_op(op, timing_label.c_str());
}

uint64_t CudaBackend::gemm_pack_reuses() const {
  std::lock_guard<std::mutex> lock(state_->scratch_packs_mutex);
  return state_->scratch_pack_reuses;
}

}  // namespace strata
