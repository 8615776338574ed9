// CUDA greedy pick of decoding (ops/cross_entropy.h, ArgmaxRows): one block per logits row, each
// thread scans a strided share of the vocabulary, then a shared-memory tree keeps the best (value,
// index) pair with the CPU's order (NaN first, then larger value, then lower index). Only the M
// chosen ids need to leave the GPU. This file is not sampling with temperature (generate.cpp, host).
#include "../ops/cross_entropy.h"
#include "cuda_common.cuh"

namespace strata {
namespace {

constexpr int kArgmaxThreads = 256;

// True when (value a, index ia) ranks before (b, ib).
__device__ __forceinline__ bool ranks_before(float a, int64_t ia, float b, int64_t ib) {
  const bool nan_a = isnan(a), nan_b = isnan(b);
  if (nan_a != nan_b) return nan_a;
  if (!nan_a && a != b) return a > b;
  return ia < ib;
}

__global__ void argmax_rows_kernel(int32_t* ids, const float* logits, int64_t v) {
  __shared__ float best_value[kArgmaxThreads];
  __shared__ int64_t best_index[kArgmaxThreads];
  const float* row = logits + static_cast<int64_t>(blockIdx.x) * v;
  float value = row[0];
  int64_t index = 0;
  for (int64_t j = threadIdx.x; j < v; j += kArgmaxThreads) {
    if (ranks_before(row[j], j, value, index)) value = row[j], index = j;
  }
  best_value[threadIdx.x] = value;
  best_index[threadIdx.x] = index;
  __syncthreads();
  for (int width = kArgmaxThreads / 2; width > 0; width /= 2) {
    if (threadIdx.x < width) {
      const int other = threadIdx.x + width;
      if (ranks_before(best_value[other], best_index[other], best_value[threadIdx.x], best_index[threadIdx.x])) {
        best_value[threadIdx.x] = best_value[other];
        best_index[threadIdx.x] = best_index[other];
      }
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) ids[blockIdx.x] = static_cast<int32_t>(best_index[0]);
}

}  // namespace

void CudaBackend::argmax_rows(const ArgmaxRows& a) {
  const int64_t m = a.logits.size(0), v = a.logits.size(1);
  if (m == 0) return;
  argmax_rows_kernel<<<static_cast<unsigned>(m), kArgmaxThreads, 0, state_->stream>>>(a.ids.data, a.logits.data, v);
  finish_op("cuda argmax_rows");
}

}  // namespace strata
