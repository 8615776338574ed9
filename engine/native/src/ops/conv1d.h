// Depthwise causal 1-D convolution over time (Mamba-2's conv over [x, B, C]), optional bias and
// fused SiLU, forward / backward, plus a single-token step against a rolling conv state for decode.
//   pre[b,t,c] = bias[c] + sum_{j<K} w[c,j] * x[b, t-K+1+j, c]     (x at negative t is 0)
//   y = silu(pre) if silu else pre
// This file is not a general (dense or strided) convolution.
//
// Shape legend: B batch, T time, C channels, K kernel width.
#pragma once

#include "../core/backend.h"
#include "../core/tensor.h"

namespace strata {

struct Conv1dFwd {
  Tensor y;     // (B,T,C)
  Tensor x;     // (B,T,C)
  Tensor w;     // (C,K)
  Tensor bias;  // (C) optional
  bool silu = true;
};
struct Conv1dBwd {
  Tensor dx;     // (B,T,C) written
  Tensor dw;     // (C,K)   accumulated
  Tensor dbias;  // (C)     accumulated, optional
  Tensor dy;     // (B,T,C)
  Tensor x;      // (B,T,C)
  Tensor w;      // (C,K)
  Tensor bias;   // (C) optional (needed to recompute the SiLU input)
  bool silu = true;
};
// Decode: state holds the last K-1 inputs (oldest first); shifts in x, writes y.
struct Conv1dStep {
  Tensor y;      // (B,C)
  Tensor state;  // (B,K-1,C) updated in place
  Tensor x;      // (B,C)
  Tensor w;      // (C,K)
  Tensor bias;   // (C) optional
  bool silu = true;
};

void conv1d_forward(Backend& backend, const Conv1dFwd& args);
void conv1d_backward(Backend& backend, const Conv1dBwd& args);
void conv1d_step(Backend& backend, const Conv1dStep& args);

}  // namespace strata
