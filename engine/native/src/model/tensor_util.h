// Small tensor helpers the model layers need between ops: allocation from a runtime shape,
// column slicing of packed projections (Mamba-2's in_proj output [z | xBC | dt]), copies, adds,
// and moving values between host vectors and tensors. Slicing, copies and adds run as backend ops
// (ops/elementwise.h), so the same layer code works on host and device memory; host values move
// only through Backend::upload / download.
// This is not an op family (no kernels of its own).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/arena.h"
#include "core/backend.h"
#include "core/tensor.h"

namespace strata::model {

/** Arena allocation with a runtime shape (1-4 dims), zero-filled. */
Tensor alloc(Arena& arena, const std::string& name, const std::vector<int64_t>& shape);
/**
 * The same for a tensor whose first writer sets every element (GEMM with beta 0, activation, norm,
 * attention, copy outputs...): no fill (see Arena::Fill::Overwritten; NaN under STRATA_ARENA_POISON=1).
 */
Tensor alloc_out(Arena& arena, const std::string& name, const std::vector<int64_t>& shape);
/** An int32 tensor, zero-filled unless `fill` is Overwritten (its first writer sets every element). */
TensorI32 alloc_i32(Arena& arena, const std::string& name, const std::vector<int64_t>& shape,
                    Arena::Fill fill = Arena::Fill::Zero);

/** A view with a new runtime shape (same element count). */
Tensor view(const Tensor& t, const std::vector<int64_t>& shape);

/** dst (M,w) = src (M,W)[:, col0:col0+w]. */
void copy_columns(Backend& backend, const Tensor& dst, const Tensor& src, int64_t col0);
/** dst (M,W)[:, col0:col0+w] = src (M,w), or += when accumulate. */
void scatter_columns(Backend& backend, const Tensor& dst, const Tensor& src, int64_t col0, bool accumulate = false);
/** dst = src (same numel). */
void copy_tensor(Backend& backend, const Tensor& dst, const Tensor& src);
/** dst += src (same numel). */
void add_into(Backend& backend, const Tensor& dst, const Tensor& src);

/**
 * Multi-token decode steps hold B sequences of n tokens as rows b*n + t. token_rows() gives the
 * (B, W) rows of token t of such a (B*n, W) tensor: a view when B or n is 1, else a copy in
 * `arena`; store_token_rows() writes (B, W) rows back into token t (nothing to do for a view).
 */
Tensor token_rows(Backend& backend, Arena& arena, const Tensor& src, int64_t batch, int64_t n, int64_t t);
void store_token_rows(Backend& backend, const Tensor& dst, const Tensor& rows, int64_t batch, int64_t n, int64_t t);
/** Slot `i` of a stack of equally shaped tensors stored as one (S, ...) tensor, shaped like `like`. */
Tensor slot(const Tensor& stack, int64_t i, const Tensor& like);

/** Host values into a tensor (sizes must match). */
void upload_values(Backend& backend, const Tensor& dst, const std::vector<float>& values);
void upload_values(Backend& backend, const TensorI32& dst, const std::vector<int32_t>& values);
/** A tensor's values on the host (waits for the backend). */
std::vector<float> download_values(Backend& backend, const Tensor& src);

}  // namespace strata::model
