// CUDA kernels of the MoE building blocks: the router (softmax / sigmoid scores, biased top-k
// selection, combine weights, Switch aux loss and the exact gradient of all of it; the forward one
// warp per token, at decode sizes in one block and one launch; the backward one thread per token), the routing plan
// (stable counting sort of the (token, k) assignments by expert, in one block), and the permutation / weighted unpermutation of token rows and their gradients. The
// per-expert GEMMs go through gemm() (ops/moe.cpp). Formulas follow cpu/moe_cpu.cpp.
#include "../ops/moe.h"
#include "cuda_common.cuh"

namespace strata {
namespace {

constexpr float kNormEpsilon = 1e-20f;
constexpr int kMaxTopK = 64;
enum MoeError { kBadExpert = 1, kBadToken = 2 };

// Routes token i on one warp, lane l owning experts l, l + 32, ...: scores from the logits, the
// (biased) top-k choice and its combine weights. Adds the token's probability of expert j to prob[j]
// and its choices to load[j] by the lane owning j: plain adds into the warp's own rows, or atomics
// into sums shared by many warps (kAtomic). Ties in the top-k go to the lower expert index.
template <bool kAtomic>
__device__ void route_token_warp(int64_t i, int lane, float* scores_out, int32_t* topk_index, float* topk_weight,
                                 double* prob, float* load, const float* logits, const float* expert_bias, int64_t e,
                                 const RouterParams& params) {
  const float* lg = logits + i * e;
  float* scores = scores_out + i * e;
  const bool softmax = params.type == RouterType::Softmax;
  float mx = -INFINITY;
  if (softmax) {
    for (int64_t j = lane; j < e; j += 32) mx = fmaxf(mx, lg[j]);
    mx = warp_max(mx);
  }
  double sum = 0.0;  // softmax: of exp(logit - max); sigmoid: of the scores
  for (int64_t j = lane; j < e; j += 32) {
    const float v = softmax ? expf(lg[j] - mx) : dev_sigmoid(lg[j]);
    scores[j] = v;
    sum += v;
  }
  sum = warp_sum(sum);
  for (int64_t j = lane; j < e; j += 32) {
    const float v = softmax ? static_cast<float>(scores[j] / sum) : scores[j];
    scores[j] = v;
    const double p = softmax ? static_cast<double>(v) : v / sum;
    if constexpr (kAtomic) atomicAdd(prob + j, p);
    else prob[j] += p;
  }
  __syncwarp();  // every lane reads the chosen experts' scores below
  int32_t chosen[kMaxTopK];
  float weight_sum = 0.0f;
  for (int64_t slot = 0; slot < params.top_k; ++slot) {
    int32_t best = -1;
    float best_value = -INFINITY;
    for (int64_t j = lane; j < e; j += 32) {
      bool taken = false;
      for (int64_t q = 0; q < slot; ++q) taken = taken || chosen[q] == j;
      if (taken) continue;
      const float biased = scores[j] + (expert_bias ? expert_bias[j] : 0.0f);
      if (best < 0 || biased > best_value) best = static_cast<int32_t>(j), best_value = biased;
    }
    for (int offset = 16; offset > 0; offset >>= 1) {
      const int32_t other = __shfl_xor_sync(0xffffffffu, best, offset);
      const float other_value = __shfl_xor_sync(0xffffffffu, best_value, offset);
      if (other >= 0 && (best < 0 || other_value > best_value || (other_value == best_value && other < best))) {
        best = other, best_value = other_value;
      }
    }
    chosen[slot] = best;
    const float w = scores[best];
    weight_sum += w;
    if (lane == 0) {
      topk_index[i * params.top_k + slot] = best;
      topk_weight[i * params.top_k + slot] = w;
    }
    if (lane == best % 32) {
      if constexpr (kAtomic) atomicAdd(load + best, 1.0f);
      else load[best] += 1.0f;
    }
  }
  if (lane == 0) {
    for (int64_t slot = 0; slot < params.top_k; ++slot) {
      float& w = topk_weight[i * params.top_k + slot];
      if (params.norm_topk) w /= weight_sum + kNormEpsilon;
      w *= params.routed_scaling;
    }
  }
}

// Switch aux loss: coeff * E * sum_j (load_j / (M K)) (mean_prob_j / M).
__device__ float router_aux(const float* expert_load, const double* mean_prob, int64_t m, int64_t e,
                            const RouterParams& params) {
  double aux = 0.0;
  if (params.aux_loss_coeff > 0.0f && m > 0) {
    for (int64_t j = 0; j < e; ++j) {
      aux += (expert_load[j] / static_cast<double>(m * params.top_k)) * (mean_prob[j] / static_cast<double>(m));
    }
    aux *= params.aux_loss_coeff * static_cast<double>(e);
  }
  return static_cast<float>(aux);
}

// Many tokens: one warp per token, the sums atomically in global memory (zeroed before), the aux
// loss after (router_aux_kernel).
__global__ void router_forward_kernel(float* scores_out, int32_t* topk_index, float* topk_weight, float* expert_load,
                                      double* mean_prob, const float* logits, const float* expert_bias, int64_t m,
                                      int64_t e, RouterParams params) {
  const int lane = threadIdx.x & 31;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * (blockDim.x >> 5);
  for (int64_t i = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5; i < m; i += warps) {
    route_token_warp<true>(i, lane, scores_out, topk_index, topk_weight, mean_prob, expert_load, logits, expert_bias, e,
                           params);
  }
}

__global__ void router_aux_kernel(float* aux_loss, const float* expert_load, const double* mean_prob, int64_t m,
                                  int64_t e, RouterParams params) {
  aux_loss[0] = router_aux(expert_load, mean_prob, m, e, params);
}

// Few tokens and experts (decode): the whole router in one block of kRouterWarps warps and one launch.
// Each warp sums its tokens into its own shared rows (prob[kRouterWarps][e] doubles, then
// load[kRouterWarps][e] floats); the rows are added in warp order (deterministic) and written out
// with the aux loss.
constexpr int kRouterWarps = 16;
constexpr int64_t kRouterBlockTokens = 16 * kRouterWarps;
constexpr int64_t kRouterBlockExperts = 128;
__global__ void __launch_bounds__(kRouterWarps * 32) router_forward_block_kernel(
    float* scores_out, int32_t* topk_index, float* topk_weight, float* expert_load, float* aux_loss,
    const float* logits, const float* expert_bias, int64_t m, int64_t e, RouterParams params) {
  extern __shared__ double rows[];
  double* prob = rows;                                          // [kRouterWarps][e]
  float* load = reinterpret_cast<float*>(rows + kRouterWarps * e);  // [kRouterWarps][e]
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  for (int64_t j = threadIdx.x; j < kRouterWarps * e; j += blockDim.x) prob[j] = 0.0, load[j] = 0.0f;
  __syncthreads();
  for (int64_t i = warp; i < m; i += kRouterWarps) {
    route_token_warp<false>(i, lane, scores_out, topk_index, topk_weight, prob + warp * e, load + warp * e, logits,
                            expert_bias, e, params);
  }
  __syncthreads();
  for (int64_t j = threadIdx.x; j < e; j += blockDim.x) {
    for (int w = 1; w < kRouterWarps; ++w) prob[j] += prob[w * e + j], load[j] += load[w * e + j];
    expert_load[j] = load[j];
  }
  __syncthreads();
  if (threadIdx.x == 0) aux_loss[0] = router_aux(load, prob, m, e, params);
}

struct RouterBwdDev {
  const float* scores;
  const int32_t* topk_index;
  const float* dtopk_weight;
  const float* expert_load;
  int64_t m, e;
  float daux;
  RouterParams params;
};

// dL/dscore[i, j] from the combine weights and the aux loss.
__device__ float router_dscore(const RouterBwdDev& a, int64_t i, int64_t j, float topk_sum, float weighted,
                               double total, double dp_dot_p) {
  const int64_t k = a.params.top_k;
  const int32_t* idx = a.topk_index + i * k;
  const float* dw = a.dtopk_weight + i * k;
  const float r = a.params.routed_scaling;
  float g = 0.0f;
  for (int64_t s = 0; s < k; ++s) {
    if (idx[s] != j) continue;
    g += a.params.norm_topk ? r * (dw[s] / topk_sum - weighted / (topk_sum * topk_sum)) : r * dw[s];
  }
  if (a.params.aux_loss_coeff > 0.0f && a.m > 0) {
    const float base = a.daux * a.params.aux_loss_coeff * static_cast<float>(a.e) / static_cast<float>(a.m);
    if (a.params.type == RouterType::Softmax) {
      g += base * a.expert_load[j] / static_cast<float>(a.m * k);
    } else {
      const double dp = base * a.expert_load[j] / (a.m * k);
      g += static_cast<float>((dp - dp_dot_p) / total);
    }
  }
  return g;
}

__global__ void router_backward_kernel(RouterBwdDev a, float* dlogits) {
  STRATA_GRID_STRIDE(i, a.m) {
    const int64_t k = a.params.top_k;
    const float* scores = a.scores + i * a.e;
    const int32_t* idx = a.topk_index + i * k;
    const float* dw = a.dtopk_weight + i * k;
    float topk_sum = kNormEpsilon, weighted = 0.0f;
    for (int64_t s = 0; s < k; ++s) topk_sum += scores[idx[s]];
    for (int64_t s = 0; s < k; ++s) weighted += dw[s] * scores[idx[s]];
    double total = 0.0, dp_dot_p = 0.0;
    if (a.params.type == RouterType::Sigmoid && a.params.aux_loss_coeff > 0.0f && a.m > 0) {
      const float base = a.daux * a.params.aux_loss_coeff * static_cast<float>(a.e) / static_cast<float>(a.m);
      for (int64_t j = 0; j < a.e; ++j) total += scores[j];
      for (int64_t j = 0; j < a.e; ++j) dp_dot_p += base * a.expert_load[j] / (a.m * k) * scores[j] / total;
    }
    float* out = dlogits + i * a.e;
    if (a.params.type == RouterType::Softmax) {
      double dot = 0.0;
      for (int64_t j = 0; j < a.e; ++j) {
        dot += static_cast<double>(router_dscore(a, i, j, topk_sum, weighted, total, dp_dot_p)) * scores[j];
      }
      for (int64_t j = 0; j < a.e; ++j) {
        out[j] = scores[j] * (router_dscore(a, i, j, topk_sum, weighted, total, dp_dot_p) - static_cast<float>(dot));
      }
    } else {
      for (int64_t j = 0; j < a.e; ++j) {
        out[j] = router_dscore(a, i, j, topk_sum, weighted, total, dp_dot_p) * scores[j] * (1.0f - scores[j]);
      }
    }
  }
}

// Stable counting sort in one block: count per expert (shared counts[e]), prefix (the counts become
// each expert's next row), then each expert's thread fills its rows in assignment order (token order
// within an expert), reading the assignments through a shared tile of kPlanTile.
constexpr int64_t kPlanMaxExperts = 8192;
constexpr int kPlanTile = 4096;
__global__ void routing_plan_kernel(int32_t* offsets, int32_t* row_token, int32_t* slot_row, const int32_t* topk,
                                    int64_t m, int64_t k, int64_t e, DeviceErrorFlag* flag) {
  extern __shared__ int32_t counts[];
  __shared__ int32_t tile[kPlanTile];
  const int64_t n = m * k;
  for (int64_t ex = threadIdx.x; ex < e; ex += blockDim.x) counts[ex] = 0;
  __syncthreads();
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    const int32_t ex = topk[i];
    if (ex < 0 || ex >= e) {
      report_error(flag, kBadExpert, i, ex);
      continue;
    }
    atomicAdd(counts + ex, 1);
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    int32_t next = 0;
    for (int64_t ex = 0; ex < e; ++ex) {
      offsets[ex] = next;
      const int32_t count = counts[ex];
      counts[ex] = next;
      next += count;
    }
    offsets[e] = next;
  }
  for (int64_t base = 0; base < n; base += kPlanTile) {
    __syncthreads();  // the prefix is done, or every thread is done with the previous tile
    const int64_t len = min(static_cast<int64_t>(kPlanTile), n - base);
    for (int64_t t = threadIdx.x; t < len; t += blockDim.x) tile[t] = topk[base + t];
    __syncthreads();
    for (int64_t ex = threadIdx.x; ex < e; ex += blockDim.x) {
      int32_t cursor = counts[ex];
      for (int64_t t = 0; t < len; ++t) {
        if (tile[t] != ex) continue;
        row_token[cursor] = static_cast<int32_t>((base + t) / k);
        slot_row[base + t] = cursor;
        ++cursor;
      }
      counts[ex] = cursor;
    }
  }
}

__global__ void permute_forward_kernel(float* routed, const float* x, const int32_t* row_token, int64_t r, int64_t m,
                                       int64_t d, DeviceErrorFlag* flag) {
  STRATA_GRID_STRIDE(i, r * d) {
    const int64_t row = i / d, col = i % d;
    const int32_t token = row_token[row];
    if (token < 0 || token >= m) {
      if (col == 0) report_error(flag, kBadToken, row, token);
      continue;
    }
    routed[i] = x[static_cast<int64_t>(token) * d + col];
  }
}

__global__ void permute_backward_kernel(float* dx, const float* drouted, const int32_t* slot_row, int64_t m, int64_t k,
                                        int64_t d) {
  STRATA_GRID_STRIDE(i, m * d) {
    const int64_t token = i / d, col = i % d;
    float acc = 0.0f;
    for (int64_t s = 0; s < k; ++s) acc += drouted[static_cast<int64_t>(slot_row[token * k + s]) * d + col];
    dx[i] = acc;
  }
}

__global__ void unpermute_forward_kernel(float* y, const float* routed, const float* topk_weight,
                                         const int32_t* slot_row, int64_t m, int64_t k, int64_t d) {
  STRATA_GRID_STRIDE(i, m * d) {
    const int64_t token = i / d, col = i % d;
    float acc = 0.0f;
    for (int64_t s = 0; s < k; ++s) {
      acc += topk_weight[token * k + s] * routed[static_cast<int64_t>(slot_row[token * k + s]) * d + col];
    }
    y[i] = acc;
  }
}

// One warp per (token, slot): drouted row = w * dy row; dtopk_weight = dy . routed row.
__global__ void unpermute_backward_kernel(float* drouted, float* dtopk_weight, const float* dy, const float* routed,
                                          const float* topk_weight, const int32_t* slot_row, int64_t m, int64_t k,
                                          int64_t d) {
  const int lane = threadIdx.x & 31;
  const int64_t pair = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  if (pair >= m * k) return;
  const int64_t token = pair / k;
  const int64_t row = slot_row[pair];
  const float w = topk_weight[pair];
  double dot = 0.0;
  for (int64_t j = lane; j < d; j += 32) {
    const float g = dy[token * d + j];
    drouted[row * d + j] = w * g;
    dot += static_cast<double>(g) * routed[row * d + j];
  }
  dot = warp_sum(dot);
  if (lane == 0) dtopk_weight[pair] = static_cast<float>(dot);
}

// The report of a validating MoE kernel, raised at the stream's next wait.
DeviceErrorReporter moe_report(const char* op, int64_t limit) {
  return [op, limit](const DeviceErrorFlag& flag) {
    if (flag.code == kBadExpert) {
      throw Error(detail::concat(op, ": expert index ", flag.value, " at assignment ", flag.index, " is outside [0, ",
                                 limit, ")"));
    }
    throw Error(detail::concat(op, ": row ", flag.index, " names token ", flag.value, " outside [0, ", limit, ")"));
  };
}

}  // namespace

void CudaBackend::moe_router_forward(const MoeRouterFwd& a) {
  const char* op = "cuda moe_router_forward";
  const int64_t m = a.logits.size(0), e = a.logits.size(1);
  STRATA_CHECK(a.params.top_k <= kMaxTopK, op, ": top_k ", a.params.top_k, " exceeds the CUDA limit of ", kMaxTopK);
  if (m <= kRouterBlockTokens && e <= kRouterBlockExperts) {
    const std::size_t shared = static_cast<std::size_t>(kRouterWarps * e) * (sizeof(double) + sizeof(float));
    router_forward_block_kernel<<<1, kRouterWarps * 32, shared, state_->stream>>>(
        a.scores.data, a.topk_index.data, a.topk_weight.data, a.expert_load.data, a.aux_loss.data, a.logits.data,
        a.expert_bias.defined() ? a.expert_bias.data : nullptr, m, e, a.params);
    finish_op(op);
    return;
  }
  double* mean_prob = state_->scratch_as<double>(2, e, op);
  STRATA_CUDA_CHECK(cudaMemsetAsync(mean_prob, 0, e * sizeof(double), state_->stream), op);
  STRATA_CUDA_CHECK(cudaMemsetAsync(a.expert_load.data, 0, e * sizeof(float), state_->stream), op);
  if (m > 0) {
    router_forward_kernel<<<grid_for(m * 32), kThreads, 0, state_->stream>>>(
        a.scores.data, a.topk_index.data, a.topk_weight.data, a.expert_load.data, mean_prob, a.logits.data,
        a.expert_bias.defined() ? a.expert_bias.data : nullptr, m, e, a.params);
  }
  router_aux_kernel<<<1, 1, 0, state_->stream>>>(a.aux_loss.data, a.expert_load.data, mean_prob, m, e, a.params);
  finish_op(op);
}

void CudaBackend::moe_router_backward(const MoeRouterBwd& a) {
  const int64_t m = a.scores.size(0), e = a.scores.size(1);
  if (m == 0) return;
  RouterBwdDev dev{a.scores.data, a.topk_index.data, a.dtopk_weight.data, a.expert_load.data, m, e, a.daux_loss,
                   a.params};
  router_backward_kernel<<<grid_for(m, 128), 128, 0, state_->stream>>>(dev, a.dlogits.data);
  finish_op("cuda moe_router_backward");
}

void CudaBackend::moe_routing_plan(const MoeRoutingPlan& a) {
  const char* op = "moe_routing_plan";
  const int64_t m = a.topk_index.size(0), k = a.topk_index.size(1), e = a.experts;
  STRATA_CHECK(e <= kPlanMaxExperts, op, ": ", e, " experts exceed the CUDA limit of ", kPlanMaxExperts);
  DeviceErrorFlag* record = state_->error_record(moe_report(op, e), op);
  routing_plan_kernel<<<1, 1024, e * sizeof(int32_t), state_->stream>>>(
      a.expert_offsets.data, a.row_token.data, a.slot_row.data, a.topk_index.data, m, k, e, record);
  finish_op(op);
}

void CudaBackend::moe_permute_forward(const MoePermuteFwd& a) {
  const char* op = "moe_permute_forward";
  const int64_t r = a.routed.size(0), d = a.routed.size(1), m = a.x.size(0);
  if (r * d == 0) return;
  DeviceErrorFlag* record = state_->error_record(moe_report(op, m), op);
  permute_forward_kernel<<<grid_for(r * d), kThreads, 0, state_->stream>>>(a.routed.data, a.x.data, a.row_token.data,
                                                                           r, m, d, record);
  finish_op(op);
}

void CudaBackend::moe_permute_backward(const MoePermuteBwd& a) {
  const int64_t m = a.slot_row.size(0), k = a.slot_row.size(1), d = a.drouted.size(1);
  if (m * d == 0) return;
  permute_backward_kernel<<<grid_for(m * d), kThreads, 0, state_->stream>>>(a.dx.data, a.drouted.data,
                                                                            a.slot_row.data, m, k, d);
  finish_op("cuda moe_permute_backward");
}

void CudaBackend::moe_unpermute_forward(const MoeUnpermuteFwd& a) {
  const int64_t m = a.slot_row.size(0), k = a.slot_row.size(1), d = a.routed.size(1);
  if (m * d == 0) return;
  unpermute_forward_kernel<<<grid_for(m * d), kThreads, 0, state_->stream>>>(a.y.data, a.routed.data,
                                                                             a.topk_weight.data, a.slot_row.data, m, k, d);
  finish_op("cuda moe_unpermute_forward");
}

void CudaBackend::moe_unpermute_backward(const MoeUnpermuteBwd& a) {
  const int64_t m = a.slot_row.size(0), k = a.slot_row.size(1), d = a.routed.size(1);
  if (m * k == 0) return;
  unpermute_backward_kernel<<<grid_for(m * k * 32), kThreads, 0, state_->stream>>>(
      a.drouted.data, a.dtopk_weight.data, a.dy.data, a.routed.data, a.topk_weight.data, a.slot_row.data, m, k, d);
  finish_op("cuda moe_unpermute_backward");
}

}  // namespace strata
