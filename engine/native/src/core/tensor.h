// Tensor views of the native core: a data pointer, a shape of up to 4 dimensions and a name.
// A view never owns memory; ownership lives in an Arena (arena.h) or in the caller's buffers.
// The name labels intermediate tensors so profiles and error messages map onto graph nodes
// (e.g. "layer3.mamba.ssd_out"). Element types: float32 (Tensor) and int32 (TensorI32, for token
// ids, targets and expert indices). Layout is always contiguous row-major (last dimension fastest).
// This is not an autograd tensor and has no strides, broadcasting or device-side metadata beyond
// the pointer: the Backend that allocated the memory decides where it lives.
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <string>

#include "error.h"

namespace strata {

constexpr int kMaxTensorDims = 4;

template <typename Element>
struct TensorOf {
  Element* data = nullptr;
  std::array<int64_t, kMaxTensorDims> shape{0, 0, 0, 0};
  int ndim = 0;
  std::string name;

  TensorOf() = default;
  TensorOf(Element* data_, std::initializer_list<int64_t> dims, std::string name_ = {})
      : data(data_), name(std::move(name_)) {
    STRATA_CHECK(dims.size() <= kMaxTensorDims, "tensor ", name, ": at most ", kMaxTensorDims,
                 " dimensions, got ", dims.size());
    for (int64_t d : dims) {
      STRATA_CHECK(d >= 0, "tensor ", name, ": negative dimension ", d);
      shape[ndim++] = d;
    }
  }

  bool defined() const { return data != nullptr; }
  int64_t numel() const {
    int64_t n = 1;
    for (int i = 0; i < ndim; ++i) n *= shape[i];
    return ndim == 0 ? 0 : n;
  }
  // size(-1) is the last dimension.
  int64_t size(int dim) const {
    int d = dim < 0 ? ndim + dim : dim;
    STRATA_CHECK(d >= 0 && d < ndim, "tensor ", name, ": no dimension ", dim, " (ndim ", ndim, ")");
    return shape[d];
  }
  // Rows when viewed as a matrix (all leading dims collapsed) and the last dimension as columns.
  int64_t rows() const { return ndim == 0 ? 0 : numel() / shape[ndim - 1]; }
  int64_t cols() const { return ndim == 0 ? 0 : shape[ndim - 1]; }

  // Same memory, new shape with the same element count.
  TensorOf reshaped(std::initializer_list<int64_t> dims) const {
    TensorOf out(data, dims, name);
    STRATA_CHECK(out.numel() == numel(), "tensor ", name, ": cannot reshape ", shape_string(),
                 " to ", out.shape_string());
    return out;
  }

  std::string shape_string() const {
    std::string s = "(";
    for (int i = 0; i < ndim; ++i) {
      if (i) s += ',';
      s += std::to_string(shape[i]);
    }
    s += ')';
    return s;
  }
};

using Tensor = TensorOf<float>;
using TensorI32 = TensorOf<int32_t>;

// Shape checks used by every op's argument validation: "op: field shape (a,b) expected (c,d)".
template <typename Element>
void check_shape(const char* op, const char* field, const TensorOf<Element>& t,
                 std::initializer_list<int64_t> expected) {
  STRATA_CHECK(t.defined(), op, ": ", field, " is missing");
  bool ok = static_cast<int>(expected.size()) == t.ndim;
  int i = 0;
  for (int64_t d : expected) ok = ok && (i < t.ndim && t.shape[i++] == d);
  if (!ok) {
    std::string want = "(";
    i = 0;
    for (int64_t d : expected) {
      if (i++) want += ',';
      want += std::to_string(d);
    }
    throw Error(detail::concat(op, ": ", field, " '", t.name, "' has shape ", t.shape_string(),
                               ", expected ", want, ")"));
  }
}

// The row pitch (elements between consecutive rows) of an argument whose rows hold `width` elements,
// e.g. columns of a wider matrix: 0 means `width` (contiguous); a given pitch must be at least `width`.
template <typename Element>
int64_t resolve_row_pitch(const char* op, const char* field, const TensorOf<Element>& t, int64_t ld, int64_t width,
                          const char* width_name) {
  STRATA_CHECK(ld == 0 || ld >= width, op, ": ", field, " row pitch ", ld, " of '", t.name, "' is below its ",
               width_name, "=", width, " columns");
  return ld == 0 ? width : ld;
}

}  // namespace strata
