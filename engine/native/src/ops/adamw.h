// AdamW with decoupled weight decay (Loshchilov & Hutter), one fused step over a flat parameter
// array (or a list of them: a whole model's step, which a backend may run in a few launches), plus
// the sum of squares used for global gradient-norm clipping.
//   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
//   p -= lr * ( (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps) + weight_decay * p )
// This file is not the schedule, the clipping policy or the parameter grouping (train code).
//
// Shape legend: n parameters (any shape, treated flat).
#pragma once

#include <cstdint>
#include <vector>

#include "../core/backend.h"
#include "../core/tensor.h"

namespace strata {

struct AdamWStep {
  Tensor param;  // (n) updated
  Tensor grad;   // (n) read; multiplied by grad_scale first (e.g. the clipping factor)
  Tensor m;      // (n) first moment, updated
  Tensor v;      // (n) second moment, updated
  float lr = 1e-3f;
  float beta1 = 0.9f;
  float beta2 = 0.95f;
  float eps = 1e-8f;
  float weight_decay = 0.0f;
  float grad_scale = 1.0f;
  int64_t step = 1;  // t >= 1, for bias correction
};
// The sum of squares over every element of several tensors (the global gradient norm): one wait
// for the backend for the whole list, not one per tensor.
struct SumSquaresArgs {
  std::vector<Tensor> xs;    // each (n_i), contiguous
  double* result = nullptr;  // host pointer: receives sum over all xs of x^2 (accumulated in double)
};

void adamw_step(Backend& backend, const AdamWStep& args);
// Every step of the list, each exactly as adamw_step would do it (the same arithmetic per element,
// so the results are bit-identical); the tensors must not overlap.
void adamw_steps(Backend& backend, const std::vector<AdamWStep>& steps);
void sum_squares(Backend& backend, const SumSquaresArgs& args);

}  // namespace strata
