// Depthwise causal 1-D convolution over time (Mamba-2's conv over [x, B, C]), optional bias and
// fused SiLU, forward / backward, plus a single-token step against a rolling conv state for decode.
//   pre[b,t,c] = bias[c] + sum_{j<K} w[c,j] * x[b, t-K+1+j, c]     (x at negative t is 0)
//   y = silu(pre) if silu else pre
// The sequence input x and its gradient dx may be C columns of a wider row-major matrix (x_ld /
// dx_ld: elements between consecutive (b, t) rows), so Mamba-2 reads xBC straight out of the
// in_proj output and writes dxBC straight into its gradient. The output y (and in backward its
// gradient dy) may instead be split by columns into up to 3 contiguous tensors (y_parts / dy_parts:
// part i (B,T,C_i) holds the next C_i channels, C_0 + C_1 + C_2 = C), so Mamba-2's conv writes the
// SSD's x, B and C directly and reads their gradients from where the SSD left them.
// This file is not a general (dense or strided) convolution.
//
// Shape legend: B batch, T time, C channels, K kernel width.
#pragma once

#include <array>

#include "../core/backend.h"
#include "../core/tensor.h"

namespace strata {

struct Conv1dFwd {
  Tensor y;     // (B,T,C), or undefined when y_parts is given
  Tensor x;     // (B,T,C) rows x_ld apart
  Tensor w;     // (C,K)
  Tensor bias;  // (C) optional
  bool silu = true;
  int64_t x_ld = 0;  // row pitch of x in elements, >= C; 0: C (contiguous). The entry point resolves 0.
  std::array<Tensor, 3> y_parts{};  // (B,T,C_i) optional column split of y; backends always see y as y_parts
};
struct Conv1dBwd {
  Tensor dx;     // (B,T,C) written (only its C columns), rows dx_ld apart
  Tensor dw;     // (C,K)   accumulated
  Tensor dbias;  // (C)     accumulated, optional
  Tensor dy;     // (B,T,C), or undefined when dy_parts is given
  Tensor x;      // (B,T,C) rows x_ld apart
  Tensor w;      // (C,K)
  Tensor bias;   // (C) optional (needed to recompute the SiLU input)
  bool silu = true;
  int64_t x_ld = 0, dx_ld = 0;  // row pitches in elements, >= C; 0: C. The entry point resolves 0.
  std::array<Tensor, 3> dy_parts{};  // (B,T,C_i) optional column split of dy; backends always see dy_parts
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
