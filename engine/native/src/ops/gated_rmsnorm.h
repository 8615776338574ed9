// Mamba-2's gated grouped RMSNorm before out_proj. Rows of width Di are split into G groups of
// Di/G; each group is normalized on its own, with one weight vector of width Di.
//   gate-then-norm (Nemotron, norm_before_gate = false): g = y * silu(z); out = g * rstd(g) * w
//   norm-then-gate (norm_before_gate = true):           out = y * rstd(y) * w * silu(z)
// rstd per (row, group) = 1 / sqrt(mean over the group of the normalized input^2 + eps).
// The gate z and its gradient dz may be Di columns of a wider row-major matrix (z_ld / dz_ld:
// elements between consecutive rows), so Mamba-2 reads z straight out of the in_proj output and
// writes dz straight into its gradient; the other tensors are contiguous.
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
  Tensor z;     // (M,Di) gate, rows z_ld apart
  Tensor w;     // (Di)
  int64_t groups = 1;
  bool norm_before_gate = false;
  float eps = 1e-5f;
  int64_t z_ld = 0;  // row pitch of z in elements, >= Di; 0: Di (contiguous). The entry point resolves 0.
};
struct GatedRmsNormBwd {
  Tensor dy;    // (M,Di) written
  Tensor dz;    // (M,Di) written (only its Di columns), rows dz_ld apart
  Tensor dw;    // (Di)   accumulated
  Tensor dout;  // (M,Di)
  Tensor y;     // (M,Di)
  Tensor z;     // (M,Di) rows z_ld apart
  Tensor w;     // (Di)
  Tensor rstd;  // (M,G)
  int64_t groups = 1;
  bool norm_before_gate = false;
  int64_t z_ld = 0, dz_ld = 0;  // row pitches in elements, >= Di; 0: Di. The entry point resolves 0.
};

void gated_rmsnorm_forward(Backend& backend, const GatedRmsNormFwd& args);
void gated_rmsnorm_backward(Backend& backend, const GatedRmsNormBwd& args);

}  // namespace strata
