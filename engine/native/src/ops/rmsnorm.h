// RMSNorm over the last dimension, with an optional fused residual add:
//   s = x + residual (when residual is given; s is written to residual_out), else s = x
//   y = s * rstd * w,  rstd = 1 / sqrt(mean(s^2) + eps)
// The same op is the per-head QK-norm of attention (view q as (B*T*H, P) with w (P)).
// This file is not the gated grouped RMSNorm of Mamba-2 (gated_rmsnorm.h).
//
// Shape legend: M rows (B*T, or B*T*H for QK-norm), D normalized width.
#pragma once

#include "../core/backend.h"
#include "../core/tensor.h"

namespace strata {

struct RmsNormFwd {
  Tensor y;             // (M,D)
  Tensor rstd;          // (M)    saved for backward
  Tensor x;             // (M,D)
  Tensor w;             // (D)
  Tensor residual;      // (M,D)  optional: fused add
  Tensor residual_out;  // (M,D)  required when residual is given: x + residual (may alias x)
  float eps = 1e-5f;
};
struct RmsNormBwd {
  Tensor dx;    // (M,D)  written (or accumulated when accumulate); with a fused residual this is
                //        also the gradient of the residual input
  Tensor dw;    // (D)    accumulated
  Tensor dy;    // (M,D)
  Tensor x;     // (M,D)  the normalized input s (residual_out when the residual was fused)
  Tensor w;     // (D)
  Tensor rstd;  // (M)
  bool accumulate = false;
};

void rmsnorm_forward(Backend& backend, const RmsNormFwd& args);
void rmsnorm_backward(Backend& backend, const RmsNormBwd& args);

}  // namespace strata
