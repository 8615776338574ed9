// Elementwise helpers the layers need between ops: residual adds, gradient accumulation, scaling.
// Forward and backward are trivial (the backward of add is two copies of the upstream gradient),
// so they are not repeated here. Tensors are treated as flat arrays of numel() elements.
// This file is not a general broadcasting library.
#pragma once

#include "../core/backend.h"
#include "../core/tensor.h"

namespace strata {

struct AddArgs {
  Tensor out;  // (n)  out = a + b; out may alias a or b
  Tensor a;    // (n)
  Tensor b;    // (n)
};
struct AxpyArgs {
  Tensor y;  // (n)  y += alpha * x
  Tensor x;  // (n)
  float alpha = 1.0f;
};
struct ScaleArgs {
  Tensor x;  // (n)  x *= factor (in place)
  float factor = 1.0f;
};

void add(Backend& backend, const AddArgs& args);
void axpy(Backend& backend, const AxpyArgs& args);
void scale(Backend& backend, const ScaleArgs& args);

}  // namespace strata
