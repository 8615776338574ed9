// Elementwise helpers the layers need between ops: residual adds, gradient accumulation, scaling,
// strided (column / batch) copies of packed projections and KV caches, and the linear layers' bias
// add and bias gradient. Forward and backward are trivial (the backward of add is two copies of the
// upstream gradient; of a strided copy, the strided copy back), so they are not repeated here.
// Tensors are treated as flat arrays of numel() elements; the strided copy addresses them with
// explicit offsets and strides. This file is not a general broadcasting library.
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

// dst[dst_offset + b*dst_batch_stride + r*dst_row_stride + c] (+)= src[src_offset + b*src_batch_stride
//   + r*src_row_stride + c]  for b < batches, r < rows, c < cols (every index inside its tensor).
// Column slices of a packed (M, W) matrix: rows = M, cols = w, src_row_stride = W, src_offset = col0.
// dst and src must not overlap.
struct StridedCopyArgs {
  Tensor dst;
  Tensor src;
  int64_t batches = 1, rows = 0, cols = 0;
  int64_t dst_offset = 0, dst_batch_stride = 0, dst_row_stride = 0;
  int64_t src_offset = 0, src_batch_stride = 0, src_row_stride = 0;
  bool accumulate = false;
};
struct BiasAddArgs {
  Tensor y;     // (M,O)  y[i,j] += bias[j]
  Tensor bias;  // (O)
};
struct BiasGradArgs {
  Tensor dbias;  // (O)    dbias[j] += sum_i dy[i,j]
  Tensor dy;     // (M,O)
};

void add(Backend& backend, const AddArgs& args);
void axpy(Backend& backend, const AxpyArgs& args);
void scale(Backend& backend, const ScaleArgs& args);
void copy_strided(Backend& backend, const StridedCopyArgs& args);
void bias_add(Backend& backend, const BiasAddArgs& args);
void bias_grad(Backend& backend, const BiasGradArgs& args);

}  // namespace strata
