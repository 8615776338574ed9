// Shared device-side helpers of the CUDA backend: error checks that raise strata::Error naming the
// op, grid sizing, warp/block reductions, parallel column sums, numerically matching device versions of the CPU kernels'
// scalar functions, the per-backend state (stream, cuBLASLt handle, scratch, error flag) and the
// op-level GPU timer (STRATA_CUDA_OP_TIMES=1).
// This file is included by the cuda/*.cu files only; it is not a public header.
#pragma once

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "../core/error.h"
#include "../core/parameter_memory.h"
#include "cuda_allocator.h"
#include "cuda_backend.h"

namespace strata {

struct GemmTag;  // ops/gemm.h

#define STRATA_CUDA_CHECK(expr, op)                                                                     \
  do {                                                                                                  \
    cudaError_t strata_cuda_status = (expr);                                                            \
    if (strata_cuda_status != cudaSuccess)                                                              \
      throw ::strata::Error(::strata::detail::concat(op, ": CUDA error ", cudaGetErrorName(strata_cuda_status), \
                                                     " (", cudaGetErrorString(strata_cuda_status), ") in ", #expr)); \
  } while (0)

#define STRATA_CUBLAS_CHECK(expr, op)                                                                  \
  do {                                                                                                 \
    cublasStatus_t strata_cublas_status = (expr);                                                      \
    if (strata_cublas_status != CUBLAS_STATUS_SUCCESS)                                                 \
      throw ::strata::Error(::strata::detail::concat(op, ": cuBLASLt error ", static_cast<int>(strata_cublas_status), \
                                                     " (", cublasLtGetStatusString(strata_cublas_status), ") in ", #expr)); \
  } while (0)

// Growable device buffers reused across ops (ops run in order on one stream).
struct ScratchBuffer {
  void* data = nullptr;
  std::size_t bytes = 0;
};

// cuBLASLt algorithm cache key: (mode, m, n, k, lda, ldb, ldc, trans_a, trans_b, beta != 0,
// operand alignments packed into one int).
using GemmPlanKey = std::tuple<int, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int, int, int, int>;
// A bf16 pack of a parameter GEMM operand (gemm_cuda.cu): source, rows, padded rows, k, kp, ld, transposed.
using WeightPackKey = std::tuple<const float*, int64_t, int64_t, int64_t, int64_t, int64_t, int>;
struct WeightPack {
  void* data = nullptr;     // device, padded_rows * kp bf16
  uint64_t generation = 0;  // ParameterMemory generation the pack was made at
};
// A bf16 operand pack the last GEMM left in a scratch slot (gemm_cuda.cu): the key has the layout of
// WeightPackKey (the last field 0), data is scratch[slot].data when it was packed.
struct ScratchPack {
  WeightPackKey key{};
  int slot = -1;
  const void* data = nullptr;
};

// Per-op device error report: kernels that validate indices write the first bad position here.
struct DeviceErrorFlag {
  int code;      // 0: no error; otherwise an op-specific code
  int64_t index; // offending position
  int64_t value; // offending value
};

// Turns a non-zero error record into a strata::Error (throws); one per validating launch.
using DeviceErrorReporter = std::function<void(const DeviceErrorFlag&)>;
// Error records in mapped pinned host memory: validating kernels write them, the host reads them
// at the next point where it waits for the stream anyway (download, synchronize), so validation
// costs no synchronization of its own. A record is reused only after it has been read.
constexpr int kErrorRecords = 256;

// Op-level GPU timing, on when STRATA_CUDA_OP_TIMES=1 (off: one null check per op). Every op ends
// with mark(): an event on the stream. An op's GPU time is the time between the previous mark and
// its own (the kernels of one op run back to back on the one stream), so a GPU left idle by the host
// between two ops counts to the later one; the host time between the two marks is kept beside it to
// show that. Rows are named "<op> <detail>" with detail the output tensor's name without its
// "layer.<i>." prefix (all layers of a kind share a row) or a GEMM's role and pass. Elapsed times are
// read where the host waits for the stream anyway (collect()); the table goes to stderr at exit and
// covers the work after the last restart_counters() (a profile's measured step).
class OpTimes {
 public:
  explicit OpTimes(cudaStream_t stream);
  ~OpTimes();
  void mark(const char* op, const char* detail);
  // The stream is idle: adds the elapsed times of the marks so far and restarts from now.
  void collect();
  // The stream is idle: forgets every row (the table then covers only what runs after this).
  void restart();
  // The sorted table (total ms, calls, mean ms, share, host ms); collects first.
  std::string table();

 private:
  struct Pending {
    cudaEvent_t event;
    std::string name;
    double host_ms;
  };
  struct Row {
    double gpu_ms = 0, host_ms = 0;
    int64_t calls = 0;
  };
  cudaEvent_t take_event();
  void add_pending();  // every pending event has completed
  cudaStream_t stream_;
  cudaEvent_t start_ = nullptr;  // where the next op's time starts
  std::vector<Pending> pending_;
  std::vector<cudaEvent_t> spare_;
  std::map<std::string, Row> rows_;
  std::chrono::steady_clock::time_point host_start_;
};

struct CudaBackendState {
  int device = 0;
  cudaDeviceProp properties{};
  cudaStream_t stream = nullptr;
  cublasLtHandle_t lt = nullptr;
  cublasHandle_t blas = nullptr;  // cuBLAS (batched products of the SSD backward), made on first use
  void* lt_workspace = nullptr;
  std::size_t lt_workspace_bytes = 0;
  CachingAllocator allocator;
  ScratchBuffer scratch[6];
  DeviceErrorFlag* error_records = nullptr;  // mapped pinned host memory, kErrorRecords records
  std::vector<DeviceErrorReporter> pending_reports;  // record i belongs to pending_reports[i]
  float* fp8_scales = nullptr;            // device, 32 floats: amax, scale and 1/scale of A and B (gemm_cuda.cu)
  // Delayed fp8 scaling (gemm_cuda.cu): per GEMM operand site (tag and operand) the largest |value|
  // its last pack saw, as float bits; sites are numbered on first use (fp8_sites, guarded by
  // gemm_plan_mutex), kFp8Sites at most (later sites scale by their current amax).
  static constexpr int kFp8Sites = 8192;
  unsigned int* fp8_site_amax = nullptr;  // device, kFp8Sites
  std::map<std::string, int> fp8_sites;
  double* reduce_slot = nullptr;          // device: one double for sum_squares and similar reductions
  bool fp8_fallback_logged = false;
  std::mutex gemm_plan_mutex;
  std::map<GemmPlanKey, cublasLtMatmulAlgo_t> gemm_plans;
  std::set<GemmPlanKey> gemm_unsupported;  // problems no candidate algorithm ran
  bool fp8_bf16_output_logged = false;
  std::string last_gemm_refusal;  // why the last unsupported problem was refused (for error messages)
  std::unique_ptr<OpTimes> op_times;  // null unless STRATA_CUDA_OP_TIMES=1
  bool recording = false;            // a stream capture is open (begin_recording)
  int live_recordings = 0;           // instantiated graphs: they hold scratch pointers
  std::vector<void*> retired_scratch;  // grown-out scratch buffers kept for live recordings
  ParameterMemory parameters;          // parameter allocations and their write generation
  std::map<WeightPackKey, WeightPack> weight_packs;  // guarded by gemm_plan_mutex
  std::vector<WeightPackKey> recorded_packs;         // packs read by the open recording
  // Bumped by everything that may write device memory or make queued work stale (every op's
  // finish_op, uploads, waits, recordings and replays): equal values mean no op ran in between.
  std::atomic<uint64_t> op_serial{0};
  std::mutex scratch_packs_mutex;
  ScratchPack scratch_packs[2];  // the last bf16 GEMM's operand packs still in scratch (guarded)
  uint64_t scratch_packs_serial = 0;  // op_serial right after that GEMM; no other op ran while equal
  uint64_t scratch_pack_reuses = 0;   // operands a GEMM took from the previous GEMM's packs

  void note_op() { op_serial.fetch_add(1, std::memory_order_relaxed); }

  explicit CudaBackendState(CudaMemoryMode mode) : allocator(mode) {}

  // The bf16 pack of a parameter operand, made again when its generation is stale (gemm_cuda.cu);
  // nullptr when it does not exist and cannot be made now (no memory, or a recording is open).
  void* weight_pack(const WeightPackKey& key, bool may_create, const char* op);
  // The delayed-scaling slot of one GEMM operand (0: A, 1: B) of this tag; *seen when an earlier call
  // used it (its amax slot holds that call's amax). -1 when the slots are used up.
  int fp8_site(const GemmTag& tag, int operand, bool* seen);
  // Drops the packs whose source lies in [pointer, pointer + bytes) (that memory is being freed).
  void drop_weight_packs(const void* pointer, std::size_t bytes);

  // A device buffer of at least `bytes` in slot `slot` (contents undefined).
  void* scratch_bytes(int slot, std::size_t bytes, const char* op);
  template <typename T>
  T* scratch_as(int slot, int64_t count, const char* op) {
    return static_cast<T*>(scratch_bytes(slot, static_cast<std::size_t>(count) * sizeof(T), op));
  }
  // A cleared error record for the next validating kernel; `report` raises its message when the
  // kernel wrote the record. Waits for the stream (and reports) first when every record is in use.
  DeviceErrorFlag* error_record(DeviceErrorReporter report, const char* op);
  // Waits for the stream, then raises the first error a validating kernel recorded since the last
  // wait (and forgets the others).
  void synchronize_and_report(const char* op);
};

constexpr int kThreads = 256;

inline unsigned grid_for(int64_t n, int threads = kThreads) {
  int64_t blocks = (n + threads - 1) / threads;
  if (blocks < 1) blocks = 1;
  if (blocks > 1048576) blocks = 1048576;  // kernels use grid-stride loops beyond this
  return static_cast<unsigned>(blocks);
}

#define STRATA_GRID_STRIDE(i, n) \
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); i += static_cast<int64_t>(gridDim.x) * blockDim.x)

__device__ __forceinline__ float warp_sum(float v) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}
__device__ __forceinline__ double warp_sum(double v) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
  for (int offset = 16; offset > 0; offset >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}

// Sum over the whole block (blockDim.x a multiple of 32, at most 1024); every thread gets the result.
// `shared` must hold 32 values of T. Contains __syncthreads: call from all threads.
template <typename T>
__device__ T block_sum(T v, T* shared) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = (blockDim.x + 31) >> 5;
  v = warp_sum(v);
  __syncthreads();
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  T total = 0;
  for (int w = 0; w < warps; ++w) total += shared[w];
  return total;
}
__device__ inline float block_max(float v, float* shared) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = (blockDim.x + 31) >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  float total = -INFINITY;
  for (int w = 0; w < warps; ++w) total = fmaxf(total, shared[w]);
  return total;
}

// Scalar functions with the same formulas as the CPU kernels.
__device__ __forceinline__ float dev_sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }
__device__ __forceinline__ float dev_silu(float x) { return x * dev_sigmoid(x); }
__device__ __forceinline__ float dev_silu_grad(float x) {
  const float s = dev_sigmoid(x);
  return s * (1.0f + x * (1.0f - s));
}
__device__ __forceinline__ float dev_softplus(float x) { return x > 20.0f ? x : log1pf(expf(x)); }

// Error-flag helper: records the first failure (code, index, value).
__device__ __forceinline__ void report_error(DeviceErrorFlag* flag, int code, int64_t index, int64_t value) {
  if (atomicCAS(&flag->code, 0, code) == 0) {
    flag->index = index;
    flag->value = value;
  }
}

// Column sums over many rows (weight gradients of per-channel parameters), split so every SM has
// work: block (32, 8) owns 32 columns of one slice of rows and writes one double partial per
// column; add_column_partials adds the slices in order (deterministic) and hands each total to
// sink(j, total). term(i, j) is the summand of row i, column j.
constexpr int64_t kRowsPerSlice = 256;
template <typename Term>
__global__ void column_partials_kernel(double* partials, int64_t m, int64_t d, Term term) {
  __shared__ double shared[8][33];
  const int64_t j = static_cast<int64_t>(blockIdx.x) * 32 + threadIdx.x;
  const int64_t first = static_cast<int64_t>(blockIdx.y) * kRowsPerSlice;
  const int64_t last = min(m, first + kRowsPerSlice);
  double acc = 0.0;
  if (j < d) {
    for (int64_t i = first + threadIdx.y; i < last; i += 8) acc += term(i, j);
  }
  shared[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && j < d) {
    double total = 0.0;
    for (int r = 0; r < 8; ++r) total += shared[r][threadIdx.x];
    partials[static_cast<int64_t>(blockIdx.y) * d + j] = total;
  }
}
template <typename Sink>
__global__ void add_column_partials(const double* partials, int64_t slices, int64_t d, Sink sink) {
  STRATA_GRID_STRIDE(j, d) {
    double total = 0.0;
    for (int64_t s = 0; s < slices; ++s) total += partials[s * d + j];
    sink(j, total);
  }
}
// sink(j, sum_i term(i, j)) for an (m, d) problem, on the stream (scratch slot 3 holds the partials).
template <typename Term, typename Sink>
void accumulate_columns(CudaBackendState& s, int64_t m, int64_t d, Term term, Sink sink, const char* op) {
  const int64_t slices = (m + kRowsPerSlice - 1) / kRowsPerSlice;
  double* partials = s.scratch_as<double>(3, slices * d, op);
  const dim3 grid(static_cast<unsigned>((d + 31) / 32), static_cast<unsigned>(slices));
  column_partials_kernel<<<grid, dim3(32, 8), 0, s.stream>>>(partials, m, d, term);
  add_column_partials<<<grid_for(d), kThreads, 0, s.stream>>>(partials, slices, d, sink);
}
// The usual sink: dw[j] += total.
struct AddToVector {
  float* dw;
  __device__ void operator()(int64_t j, double total) const { dw[j] += static_cast<float>(total); }
};

// Marks the end of one phase of an op for the op timing (a no-op unless STRATA_CUDA_OP_TIMES=1).
inline void op_phase(CudaBackendState& s, const char* op, const char* phase) {
  if (s.op_times) s.op_times->mark(op, phase);
}

// Raises when the last launch failed (invalid configuration etc.); named after the op.
void check_launch(const char* op);

}  // namespace strata
