// Small tensor helpers the model layers need between ops: allocation from a runtime shape,
// column slicing of packed projections (Mamba-2's in_proj output [z | xBC | dt]), copies and
// fills. They run on host memory and require a host-accessible backend (the CPU backend); a
// device backend would need a strided-copy op in ops/elementwise.h (listed as a gap).
// This is not an op family (no dispatch, no kernels beyond plain loops).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/arena.h"
#include "core/tensor.h"

namespace strata::model {

/** Arena allocation with a runtime shape (1-4 dims). */
Tensor alloc(Arena& arena, const std::string& name, const std::vector<int64_t>& shape);
TensorI32 alloc_i32(Arena& arena, const std::string& name, const std::vector<int64_t>& shape);

/** A view with a new runtime shape (same element count). */
Tensor view(const Tensor& t, const std::vector<int64_t>& shape);

/** dst (M,w) = src (M,W)[:, col0:col0+w]. */
void copy_columns(const Tensor& dst, const Tensor& src, int64_t col0);
/** dst (M,W)[:, col0:col0+w] = src (M,w), or += when accumulate. */
void scatter_columns(const Tensor& dst, const Tensor& src, int64_t col0, bool accumulate = false);
/** dst = src (same numel). */
void copy_tensor(const Tensor& dst, const Tensor& src);
/** dst += src (same numel). */
void add_into(const Tensor& dst, const Tensor& src);

/** Throws unless the tensor's backend memory can be read by host code. */
void require_host(const Backend& backend, const char* what);

}  // namespace strata::model
