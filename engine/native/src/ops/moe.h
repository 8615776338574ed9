// Mixture-of-Experts building blocks: the router (softmax or sigmoid scores, expert bias used for
// selection only, top-k, optional renormalization of the top-k weights, routed scaling, and the
// Switch-style load-balancing auxiliary loss with its gradient), token permutation into expert
// order and back, and the per-expert linear layers (each a gemm() on that expert's rows).
// The router logits themselves come from a linear layer (role "moe.router"); LatentMoE's down/up
// projections and shared experts are ordinary linear layers too. This file is not the MoE layer.
//
// Shape legend: M tokens (B*T), E routed experts, K top-k, D width, R = M*K routed rows,
//               I / O in / out features of an expert linear.
//
// Router:
//   scores = softmax(logits) or sigmoid(logits)                          (M,E)
//   chosen = top-k of (scores + expert_bias) per token (bias only for choosing; ties -> lower e)
//   weight_k = scores[chosen_k]; if norm_topk: weight_k /= sum_j weight_j; weight_k *= routed_scaling
//   aux = coeff * E * sum_e f_e * P_e, f_e = share of the M*K assignments that went to e (no
//   gradient), P_e = mean over tokens of p[m,e], p = scores for softmax, scores / sum_e scores for
//   sigmoid.
#pragma once

#include <cstdint>
#include <vector>

#include "../core/backend.h"
#include "../core/tensor.h"
#include "gemm.h"

namespace strata {

enum class RouterType { Softmax, Sigmoid };

struct RouterParams {
  RouterType type = RouterType::Softmax;
  int64_t top_k = 1;
  bool norm_topk = true;
  float routed_scaling = 1.0f;
  float aux_loss_coeff = 0.0f;
};

struct MoeRouterFwd {
  Tensor scores;         // (M,E) saved
  TensorI32 topk_index;  // (M,K) chosen experts, in descending order of biased score
  Tensor topk_weight;    // (M,K) combine weights
  Tensor expert_load;    // (E)   tokens assigned to each expert in this batch (for bias updates)
  Tensor aux_loss;       // (1)   written (0 when coeff is 0)
  Tensor logits;         // (M,E)
  Tensor expert_bias;    // (E)   optional
  RouterParams params;
};
struct MoeRouterBwd {
  Tensor dlogits;        // (M,E) written
  Tensor dtopk_weight;   // (M,K)
  Tensor scores;         // (M,E)
  TensorI32 topk_index;  // (M,K)
  Tensor expert_load;    // (E)
  float daux_loss = 1.0f;  // upstream gradient of the aux loss value
  RouterParams params;
};

// Counting sort of the (token, k) assignments by expert (stable: token order within an expert).
struct MoeRoutingPlan {
  TensorI32 expert_offsets;  // (E+1) rows of expert e are [offsets[e], offsets[e+1])
  TensorI32 row_token;       // (R)   token of each routed row
  TensorI32 slot_row;        // (M,K) routed row of assignment (m,k)
  TensorI32 topk_index;      // (M,K)
  int64_t experts = 0;       // E
};
struct MoePermuteFwd {
  Tensor routed;             // (R,D)  routed[r] = x[row_token[r]]
  Tensor x;                  // (M,D)
  TensorI32 row_token;       // (R)
};
struct MoePermuteBwd {
  Tensor dx;                 // (M,D)  written: sum of the gradients of the token's K rows
  Tensor drouted;            // (R,D)
  TensorI32 slot_row;        // (M,K)
};
struct MoeUnpermuteFwd {
  Tensor y;                  // (M,D)  y[m] = sum_k topk_weight[m,k] * routed[slot_row[m,k]]
  Tensor routed;             // (R,D)
  Tensor topk_weight;        // (M,K)
  TensorI32 slot_row;        // (M,K)
};
struct MoeUnpermuteBwd {
  Tensor drouted;            // (R,D)  written
  Tensor dtopk_weight;       // (M,K)  written
  Tensor dy;                 // (M,D)
  Tensor routed;             // (R,D)
  Tensor topk_weight;        // (M,K)
  TensorI32 slot_row;        // (M,K)
};

void moe_router_forward(Backend& backend, const MoeRouterFwd& args);
void moe_router_backward(Backend& backend, const MoeRouterBwd& args);
void moe_routing_plan(Backend& backend, const MoeRoutingPlan& args);
void moe_permute_forward(Backend& backend, const MoePermuteFwd& args);
void moe_permute_backward(Backend& backend, const MoePermuteBwd& args);
void moe_unpermute_forward(Backend& backend, const MoeUnpermuteFwd& args);
void moe_unpermute_backward(Backend& backend, const MoeUnpermuteBwd& args);

// Grouped expert GEMM: every expert's rows in one op, the row ranges [offsets[e], offsets[e+1])
// read from expert_offsets where they live (the backend's memory), so no host round trip is needed.
//   Fprop: out (R,O)    = a (R,I) @ w[e]^T                   a = x,  b = w (E,O,I)
//   Dgrad: out (R,I)    = a (R,O) @ w[e]                     a = dy, b = w (E,O,I)
//   Wgrad: out (E,O,I) += a[rows of e]^T @ b[rows of e]      a = dy (R,O), b = x (R,I)
// Fprop / Dgrad overwrite every row of out (rows of no expert cannot exist: offsets[E] = R).
// Each output element is summed by one thread in a fixed order: deterministic. The CUDA kernel
// multiplies in bf16 with fp32 accumulation unless the GEMM mode is fp32 (then exact fp32).
struct MoeExpertGemm {
  GemmPass pass = GemmPass::Fprop;
  Tensor out;                // see above
  Tensor a;                  // (R,I) Fprop; (R,O) Dgrad / Wgrad
  Tensor b;                  // (E,O,I) Fprop / Dgrad; (R,I) Wgrad
  TensorI32 expert_offsets;  // (E+1) non-decreasing, offsets[0] = 0, offsets[E] = R
};
void moe_expert_gemm(Backend& backend, const MoeExpertGemm& args);

// Per-expert linear: rows [off[e], off[e+1]) of x go through expert e's weight w[e] (O,I).
//   y (R,O) = x (R,I) @ w[e]^T
// On host-accessible backends this is one gemm() per expert (the precision hook and the profiler
// see each), and on device backends too when the precision hook selects the tag (a policy format
// other than bf16 for that expert role: the offsets are downloaded, a wait); elsewhere one
// moe_expert_gemm (the profiler is told its FLOPs).
void moe_expert_linear_forward(Backend& backend, const Tensor& y /* (R,O) */, const Tensor& x /* (R,I) */,
                               const Tensor& w /* (E,O,I) */, const TensorI32& expert_offsets /* (E+1) */,
                               const char* role, int layer);
// dx (R,I) written; dw (E,O,I) accumulated; either may be undefined.
void moe_expert_linear_backward(Backend& backend, const Tensor& dx /* (R,I) */, const Tensor& dw /* (E,O,I) */,
                                const Tensor& dy /* (R,O) */, const Tensor& x /* (R,I) */,
                                const Tensor& w /* (E,O,I) */, const TensorI32& expert_offsets /* (E+1) */,
                                const char* role, int layer);

// Aux-loss-free balancing (DeepSeek-V3 / Nemotron 3): bias[e] += rate * sign(mean_load - load[e]).
// A host-side update on a small vector; bias and load are host-accessible tensors.
void moe_update_expert_bias(const Tensor& expert_bias /* (E) */, const Tensor& expert_load /* (E) */,
                            float rate);

}  // namespace strata
