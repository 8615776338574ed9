// Token embedding: gather rows of the table (forward) and scatter-add gradients into it (backward).
// This file is not the LM head (that is a linear through gemm with role "head").
//
// Shape legend: M tokens (B*T), V vocab, D width.
#pragma once

#include "../core/backend.h"
#include "../core/tensor.h"

namespace strata {

struct EmbeddingFwd {
  Tensor out;        // (M,D)  out[m] = table[ids[m]]
  TensorI32 ids;     // (M)    each in [0, V)
  Tensor table;      // (V,D)
};
struct EmbeddingBwd {
  Tensor dtable;     // (V,D)  dtable[ids[m]] += dout[m] (accumulated)
  TensorI32 ids;     // (M)
  Tensor dout;       // (M,D)
};

void embedding_forward(Backend& backend, const EmbeddingFwd& args);
void embedding_backward(Backend& backend, const EmbeddingBwd& args);

}  // namespace strata
