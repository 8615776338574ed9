// Host-side tensor helpers for the model layers (see tensor_util.h). Plain loops, no kernels.
#include "tensor_util.h"

#include <cstring>

#include "core/error.h"

namespace strata::model {

namespace {
std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); i++) s += (i ? "," : "") + std::to_string(shape[i]);
  return s + ")";
}
}  // namespace

Tensor alloc(Arena& arena, const std::string& name, const std::vector<int64_t>& s) {
  switch (s.size()) {
    case 1: return arena.tensor(name, {s[0]});
    case 2: return arena.tensor(name, {s[0], s[1]});
    case 3: return arena.tensor(name, {s[0], s[1], s[2]});
    case 4: return arena.tensor(name, {s[0], s[1], s[2], s[3]});
    default: throw Error("tensor " + name + ": unsupported rank " + std::to_string(s.size()));
  }
}

TensorI32 alloc_i32(Arena& arena, const std::string& name, const std::vector<int64_t>& s) {
  switch (s.size()) {
    case 1: return arena.tensor_i32(name, {s[0]});
    case 2: return arena.tensor_i32(name, {s[0], s[1]});
    case 3: return arena.tensor_i32(name, {s[0], s[1], s[2]});
    default: throw Error("tensor " + name + ": unsupported rank " + std::to_string(s.size()));
  }
}

Tensor view(const Tensor& t, const std::vector<int64_t>& s) {
  Tensor out;
  switch (s.size()) {
    case 1: out = Tensor(t.data, {s[0]}, t.name); break;
    case 2: out = Tensor(t.data, {s[0], s[1]}, t.name); break;
    case 3: out = Tensor(t.data, {s[0], s[1], s[2]}, t.name); break;
    case 4: out = Tensor(t.data, {s[0], s[1], s[2], s[3]}, t.name); break;
    default: throw Error("tensor " + t.name + ": unsupported rank " + std::to_string(s.size()));
  }
  STRATA_CHECK(out.numel() == t.numel(), "tensor ", t.name, ": cannot view ", t.shape_string(), " as ", shape_text(s));
  return out;
}

void copy_columns(const Tensor& dst, const Tensor& src, int64_t col0) {
  const int64_t rows = dst.rows(), w = dst.cols(), W = src.cols();
  STRATA_CHECK(src.rows() == rows && col0 + w <= W, "copy_columns: ", src.name, " ", src.shape_string(),
               " cannot supply columns [", col0, ",", col0 + w, ") for ", dst.name, " ", dst.shape_string());
  for (int64_t r = 0; r < rows; r++) std::memcpy(dst.data + r * w, src.data + r * W + col0, sizeof(float) * w);
}

void scatter_columns(const Tensor& dst, const Tensor& src, int64_t col0, bool accumulate) {
  const int64_t rows = src.rows(), w = src.cols(), W = dst.cols();
  STRATA_CHECK(dst.rows() == rows && col0 + w <= W, "scatter_columns: ", dst.name, " ", dst.shape_string(),
               " cannot take columns [", col0, ",", col0 + w, ") from ", src.name, " ", src.shape_string());
  for (int64_t r = 0; r < rows; r++) {
    float* d = dst.data + r * W + col0;
    const float* s = src.data + r * w;
    if (accumulate) {
      for (int64_t c = 0; c < w; c++) d[c] += s[c];
    } else {
      std::memcpy(d, s, sizeof(float) * w);
    }
  }
}

void copy_tensor(const Tensor& dst, const Tensor& src) {
  STRATA_CHECK(dst.numel() == src.numel(), "copy: ", src.name, " ", src.shape_string(), " into ", dst.name, " ",
               dst.shape_string());
  if (dst.data != src.data) std::memcpy(dst.data, src.data, sizeof(float) * static_cast<size_t>(src.numel()));
}

void add_into(const Tensor& dst, const Tensor& src) {
  STRATA_CHECK(dst.numel() == src.numel(), "add_into: ", src.name, " ", src.shape_string(), " into ", dst.name, " ",
               dst.shape_string());
  const int64_t n = src.numel();
  for (int64_t i = 0; i < n; i++) dst.data[i] += src.data[i];
}

void require_host(const Backend& backend, const char* what) {
  STRATA_CHECK(backend.host_accessible(), what, ": backend ", backend.name(),
               " keeps tensors off the host; this path needs a host-accessible backend (cpu)");
}

}  // namespace strata::model
