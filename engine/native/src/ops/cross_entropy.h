// Cross-entropy of logits against integer targets with a fused log-softmax: the forward writes
// per-row losses and the log-sum-exp; the backward writes (softmax - onehot) * grad_scale.
// Rows whose target equals ignore_index get loss 0 and zero gradient. The caller turns the
// per-row losses into a mean (count_valid_targets gives the denominator; grad_scale is usually
// 1 / valid). Also the greedy pick of decoding: the index of each row's largest logit, computed
// where the logits live, so a decode step only moves the chosen ids to the host.
// This file is not the LM head GEMM, not sampling with temperature and not MTP bookkeeping.
//
// Shape legend: M rows (B*T), V vocab.
#pragma once

#include "../core/backend.h"
#include "../core/tensor.h"

namespace strata {

struct CrossEntropyFwd {
  Tensor losses;      // (M)   -log softmax(logits)[target], 0 for ignored rows
  Tensor lse;         // (M)   saved log-sum-exp
  Tensor logits;      // (M,V)
  TensorI32 targets;  // (M)   in [0,V) or ignore_index
  int32_t ignore_index = -100;
};
struct CrossEntropyBwd {
  Tensor dlogits;     // (M,V) written (may alias logits)
  Tensor logits;      // (M,V)
  Tensor lse;         // (M)
  TensorI32 targets;  // (M)
  float grad_scale = 1.0f;  // dLoss/dlosses[m], the same for every row
  int32_t ignore_index = -100;
};

// ids[m] = argmax_v logits[m, v]; ties go to the lowest v (as std::max_element); a row holding a
// NaN picks the first NaN.
struct ArgmaxRows {
  TensorI32 ids;   // (M) written
  Tensor logits;   // (M,V)
};

void cross_entropy_forward(Backend& backend, const CrossEntropyFwd& args);
void cross_entropy_backward(Backend& backend, const CrossEntropyBwd& args);
void argmax_rows(Backend& backend, const ArgmaxRows& args);
// Number of targets != ignore_index (host-side count; downloads when needed).
int64_t count_valid_targets(Backend& backend, const TensorI32& targets, int32_t ignore_index = -100);

}  // namespace strata
