// Mamba-2's gated grouped RMSNorm before out_proj. Rows of width Di are split into G groups of
// Di/G; each group is normalized on its own, with one weight vector of width Di.
//   gate-then-norm (Nemotron, norm_before_gate = false): g = y * silu(z); out = g * rstd(g) * w
//   norm-then-gate (norm_before_gate = true):           out = y * rstd(y) * w * silu(z)
// rstd per (row, group) = 1 / sqrt(mean over the group of the normalized input^2 + eps).
// This file is not the plain RMSNorm (rmsnorm.h).
//
// Shape legend: M rows (B*T), Di inner width (H*P), G groups.
#pragma once

#include "../core/backend.h"
#include "../core/tensor.h"

namespace strata {

struct GatedRmsNormFwd {
  Tensor out;   // (M,Di)
  Tensor rstd;  // (M,G)  saved
  Tensor y;     // (M,Di) scan output
  Tensor z;     // (M,Di) gate
  Tensor w;     // (Di)
  int64_t groups = 1;
  bool norm_before_gate = false;
  float eps = 1e-5f;
};
struct GatedRmsNormBwd {
  Tensor dy;    // (M,Di) written
  Tensor dz;    // (M,Di) written
  Tensor dw;    // (Di)   accumulated
  Tensor dout;  // (M,Di)
  Tensor y;     // (M,Di)
  Tensor z;     // (M,Di)
  Tensor w;     // (Di)
  Tensor rstd;  // (M,G)
  int64_t groups = 1;
  bool norm_before_gate = false;
};

void gated_rmsnorm_forward(Backend& backend, const GatedRmsNormFwd& args);
void gated_rmsnorm_backward(Backend& backend, const GatedRmsNormBwd& args);

}  // namespace strata
