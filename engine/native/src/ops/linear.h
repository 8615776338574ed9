// Linear layer helpers over gemm(): y = x W^T (+ b) and its two backward GEMMs, with the pass tag
// set for the precision layer. Weights use the PyTorch layout W (out, in).
// This file adds no kernels of its own: multiplies go through gemm(), the bias add and bias
// gradient through the elementwise ops (ops/elementwise.h).
//
// Shape legend: M rows (B*T tokens), I in features, O out features.
#pragma once

#include "../core/backend.h"
#include "../core/tensor.h"
#include "gemm.h"

namespace strata {

// y (M,O) = x (M,I) @ w (O,I)^T + bias (O) [bias optional: pass an undefined Tensor].
void linear_forward(Backend& backend, const Tensor& y /* (M,O) */, const Tensor& x /* (M,I) */,
                    const Tensor& w /* (O,I) */, const Tensor& bias /* (O) or undefined */,
                    const char* role, int layer);

// dx (M,I) = dy (M,O) @ w (O,I)        (written, or accumulated when accumulate_dx)
// dw (O,I) += dy^T (O,M) @ x (M,I)      (always accumulated, so grads sum across uses)
// dbias (O) += sum over rows of dy       (when defined)
// Any of dx, dw, dbias may be undefined to skip it.
void linear_backward(Backend& backend, const Tensor& dx /* (M,I) */, const Tensor& dw /* (O,I) */,
                     const Tensor& dbias /* (O) */, const Tensor& dy /* (M,O) */,
                     const Tensor& x /* (M,I) */, const Tensor& w /* (O,I) */, const char* role,
                     int layer, bool accumulate_dx = false);

}  // namespace strata
