// Tensor helpers for the model layers (see tensor_util.h): shapes, and copies/adds as backend ops.
#include "tensor_util.h"

#include "core/error.h"
#include "ops/elementwise.h"

namespace strata::model {

namespace {
std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); i++) s += (i ? "," : "") + std::to_string(shape[i]);
  return s + ")";
}

Tensor alloc_filled(Arena& arena, const std::string& name, const std::vector<int64_t>& s, Arena::Fill fill) {
  switch (s.size()) {
    case 1: return arena.tensor(name, {s[0]}, fill);
    case 2: return arena.tensor(name, {s[0], s[1]}, fill);
    case 3: return arena.tensor(name, {s[0], s[1], s[2]}, fill);
    case 4: return arena.tensor(name, {s[0], s[1], s[2], s[3]}, fill);
    default: throw Error("tensor " + name + ": unsupported rank " + std::to_string(s.size()));
  }
}
}  // namespace

Tensor alloc(Arena& arena, const std::string& name, const std::vector<int64_t>& s) {
  return alloc_filled(arena, name, s, Arena::Fill::Zero);
}

Tensor alloc_out(Arena& arena, const std::string& name, const std::vector<int64_t>& s) {
  return alloc_filled(arena, name, s, Arena::Fill::Overwritten);
}

TensorI32 alloc_i32(Arena& arena, const std::string& name, const std::vector<int64_t>& s, Arena::Fill fill) {
  switch (s.size()) {
    case 1: return arena.tensor_i32(name, {s[0]}, fill);
    case 2: return arena.tensor_i32(name, {s[0], s[1]}, fill);
    case 3: return arena.tensor_i32(name, {s[0], s[1], s[2]}, fill);
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

void copy_columns(Backend& backend, const Tensor& dst, const Tensor& src, int64_t col0) {
  const int64_t rows = dst.rows(), w = dst.cols(), W = src.cols();
  STRATA_CHECK(src.rows() == rows && col0 >= 0 && col0 + w <= W, "copy_columns: ", src.name, " ", src.shape_string(),
               " cannot supply columns [", col0, ",", col0 + w, ") for ", dst.name, " ", dst.shape_string());
  StridedCopyArgs a;
  a.dst = dst;
  a.src = src;
  a.rows = rows;
  a.cols = w;
  a.dst_row_stride = w;
  a.src_offset = col0;
  a.src_row_stride = W;
  copy_strided(backend, a);
}

void scatter_columns(Backend& backend, const Tensor& dst, const Tensor& src, int64_t col0, bool accumulate) {
  const int64_t rows = src.rows(), w = src.cols(), W = dst.cols();
  STRATA_CHECK(dst.rows() == rows && col0 >= 0 && col0 + w <= W, "scatter_columns: ", dst.name, " ",
               dst.shape_string(), " cannot take columns [", col0, ",", col0 + w, ") from ", src.name, " ",
               src.shape_string());
  StridedCopyArgs a;
  a.dst = dst;
  a.src = src;
  a.rows = rows;
  a.cols = w;
  a.dst_offset = col0;
  a.dst_row_stride = W;
  a.src_row_stride = w;
  a.accumulate = accumulate;
  copy_strided(backend, a);
}

Tensor token_rows(Backend& backend, Arena& arena, const Tensor& src, int64_t batch, int64_t n, int64_t t) {
  const int64_t W = src.cols();
  STRATA_CHECK(src.rows() == batch * n && t >= 0 && t < n, "token_rows: ", src.name, " ", src.shape_string(),
               " has no token ", t, " of ", n, " for ", batch, " sequences");
  if (n == 1) return view(src, {batch, W});
  if (batch == 1) return Tensor(src.data + t * W, {1, W}, src.name);
  Tensor out = alloc_out(arena, src.name + ".token", {batch, W});
  StridedCopyArgs a;
  a.dst = out;
  a.src = src;
  a.batches = batch;
  a.rows = 1;
  a.cols = W;
  a.dst_batch_stride = W;
  a.src_offset = t * W;
  a.src_batch_stride = n * W;
  copy_strided(backend, a);
  return out;
}

void store_token_rows(Backend& backend, const Tensor& dst, const Tensor& rows, int64_t batch, int64_t n, int64_t t) {
  const int64_t W = dst.cols();
  STRATA_CHECK(dst.rows() == batch * n && rows.numel() == batch * W, "store_token_rows: ", rows.name, " ",
               rows.shape_string(), " does not fit token ", t, " of ", dst.name, " ", dst.shape_string());
  if (n == 1 || batch == 1) {
    copy_tensor(backend, Tensor(dst.data + t * W, {batch, W}, dst.name), rows);  // no-op when rows is that view
    return;
  }
  StridedCopyArgs a;
  a.dst = dst;
  a.src = rows;
  a.batches = batch;
  a.rows = 1;
  a.cols = W;
  a.dst_offset = t * W;
  a.dst_batch_stride = n * W;
  a.src_batch_stride = W;
  copy_strided(backend, a);
}

Tensor slot(const Tensor& stack, int64_t i, const Tensor& like) {
  const int64_t size = like.numel();
  STRATA_CHECK(i >= 0 && (i + 1) * size <= stack.numel(), "slot ", i, " of ", stack.name, " ", stack.shape_string(),
               " does not hold ", like.shape_string());
  Tensor out = like;
  out.data = stack.data + i * size;
  out.name = stack.name;
  return out;
}

void copy_tensor(Backend& backend, const Tensor& dst, const Tensor& src) {
  STRATA_CHECK(dst.numel() == src.numel(), "copy: ", src.name, " ", src.shape_string(), " into ", dst.name, " ",
               dst.shape_string());
  if (dst.data == src.data || src.numel() == 0) return;
  StridedCopyArgs a;
  a.dst = dst;
  a.src = src;
  a.rows = 1;
  a.cols = src.numel();
  copy_strided(backend, a);
}

void add_into(Backend& backend, const Tensor& dst, const Tensor& src) {
  STRATA_CHECK(dst.numel() == src.numel(), "add_into: ", src.name, " ", src.shape_string(), " into ", dst.name, " ",
               dst.shape_string());
  axpy(backend, AxpyArgs{dst, src, 1.0f});
}

void upload_values(Backend& backend, const Tensor& dst, const std::vector<float>& values) {
  STRATA_CHECK(static_cast<int64_t>(values.size()) == dst.numel(), "upload: ", values.size(), " values for ", dst.name,
               " ", dst.shape_string());
  backend.upload(dst.data, values.data(), values.size() * sizeof(float));
}

void upload_values(Backend& backend, const TensorI32& dst, const std::vector<int32_t>& values) {
  STRATA_CHECK(static_cast<int64_t>(values.size()) == dst.numel(), "upload: ", values.size(), " values for ", dst.name,
               " ", dst.shape_string());
  backend.upload(dst.data, values.data(), values.size() * sizeof(int32_t));
}

std::vector<float> download_values(Backend& backend, const Tensor& src) {
  std::vector<float> values(static_cast<size_t>(src.numel()));
  backend.download(values.data(), src.data, values.size() * sizeof(float));
  return values;
}

}  // namespace strata::model
