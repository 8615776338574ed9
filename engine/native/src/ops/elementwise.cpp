// Checked entry points of the elementwise helpers (sizes must match), dispatched to the backend.
#include "elementwise.h"

namespace strata {

void add(Backend& backend, const AddArgs& args) {
  require_support(backend, OpKind::Elementwise, "add");
  STRATA_CHECK(args.out.defined() && args.a.defined() && args.b.defined(), "add: out, a and b are required");
  STRATA_CHECK(args.a.numel() == args.out.numel() && args.b.numel() == args.out.numel(), "add: sizes differ: out '",
               args.out.name, "' ", args.out.shape_string(), ", a ", args.a.shape_string(), ", b ",
               args.b.shape_string());
  backend.add(args);
}

void axpy(Backend& backend, const AxpyArgs& args) {
  require_support(backend, OpKind::Elementwise, "axpy");
  STRATA_CHECK(args.y.defined() && args.x.defined(), "axpy: y and x are required");
  STRATA_CHECK(args.y.numel() == args.x.numel(), "axpy: y '", args.y.name, "' ", args.y.shape_string(),
               " and x '", args.x.name, "' ", args.x.shape_string(), " differ in size");
  backend.axpy(args);
}

void scale(Backend& backend, const ScaleArgs& args) {
  require_support(backend, OpKind::Elementwise, "scale");
  STRATA_CHECK(args.x.defined(), "scale: x is required");
  backend.scale(args);
}

namespace {
// Largest flat index the strided copy touches in one tensor (offset + last batch, row and column).
int64_t last_index(int64_t offset, int64_t batches, int64_t batch_stride, int64_t rows, int64_t row_stride,
                   int64_t cols) {
  return offset + (batches - 1) * batch_stride + (rows - 1) * row_stride + (cols - 1);
}
}  // namespace

void copy_strided(Backend& backend, const StridedCopyArgs& a) {
  require_support(backend, OpKind::Elementwise, "copy_strided");
  const char* op = "copy_strided";
  STRATA_CHECK(a.dst.defined() && a.src.defined(), op, ": dst and src are required");
  STRATA_CHECK(a.batches >= 0 && a.rows >= 0 && a.cols >= 0, op, ": negative extent (batches ", a.batches,
               ", rows ", a.rows, ", cols ", a.cols, ")");
  if (a.batches == 0 || a.rows == 0 || a.cols == 0) return;
  STRATA_CHECK(a.dst_offset >= 0 && a.src_offset >= 0 && a.dst_batch_stride >= 0 && a.dst_row_stride >= 0 &&
                   a.src_batch_stride >= 0 && a.src_row_stride >= 0,
               op, ": offsets and strides must be non-negative");
  const int64_t dst_last = last_index(a.dst_offset, a.batches, a.dst_batch_stride, a.rows, a.dst_row_stride, a.cols);
  const int64_t src_last = last_index(a.src_offset, a.batches, a.src_batch_stride, a.rows, a.src_row_stride, a.cols);
  STRATA_CHECK(dst_last < a.dst.numel(), op, ": dst '", a.dst.name, "' ", a.dst.shape_string(), " has ",
               a.dst.numel(), " elements, the copy writes index ", dst_last);
  STRATA_CHECK(src_last < a.src.numel(), op, ": src '", a.src.name, "' ", a.src.shape_string(), " has ",
               a.src.numel(), " elements, the copy reads index ", src_last);
  const float* dst_begin = a.dst.data + a.dst_offset;
  const float* src_begin = a.src.data + a.src_offset;
  STRATA_CHECK(a.dst.data + dst_last < src_begin || a.src.data + src_last < dst_begin, op, ": dst '", a.dst.name,
               "' and src '", a.src.name, "' overlap");
  backend.copy_strided(a);
}

void bias_add(Backend& backend, const BiasAddArgs& a) {
  require_support(backend, OpKind::Elementwise, "bias_add");
  STRATA_CHECK(a.y.defined() && a.bias.defined(), "bias_add: y and bias are required");
  check_shape("bias_add", "bias", a.bias, {a.y.cols()});
  backend.bias_add(a);
}

void bias_grad(Backend& backend, const BiasGradArgs& a) {
  require_support(backend, OpKind::Elementwise, "bias_grad");
  STRATA_CHECK(a.dbias.defined() && a.dy.defined(), "bias_grad: dbias and dy are required");
  check_shape("bias_grad", "dbias", a.dbias, {a.dy.cols()});
  backend.bias_grad(a);
}

}  // namespace strata
