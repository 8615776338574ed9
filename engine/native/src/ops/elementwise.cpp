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

}  // namespace strata
