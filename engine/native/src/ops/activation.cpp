// Activation names and the checked entry points of the pointwise activations.
#include "activation.h"

#include <cstring>

namespace strata {

const char* activation_name(ActivationKind kind) {
  switch (kind) {
    case ActivationKind::Relu2: return "relu2";
    case ActivationKind::Gelu: return "gelu";
    case ActivationKind::Silu: return "silu";
    case ActivationKind::Softplus: return "softplus";
    case ActivationKind::Swiglu: return "swiglu";
  }
  return "unknown";
}

ActivationKind parse_activation(const char* name) {
  for (ActivationKind kind : {ActivationKind::Relu2, ActivationKind::Gelu, ActivationKind::Silu,
                              ActivationKind::Softplus, ActivationKind::Swiglu}) {
    if (name && std::strcmp(name, activation_name(kind)) == 0) return kind;
  }
  throw Error(detail::concat("unknown activation '", name ? name : "", "' (expected relu2, gelu, silu, softplus or swiglu)"));
}

namespace {
void check_pair(const char* op, ActivationKind kind, const Tensor& out_like, const Tensor& in_like) {
  STRATA_CHECK(out_like.defined() && in_like.defined(), op, ": tensors are required");
  const int64_t m = out_like.rows(), f = out_like.cols();
  const int64_t in_cols = kind == ActivationKind::Swiglu ? 2 * f : f;
  STRATA_CHECK(in_like.rows() == m && in_like.cols() == in_cols, op, "(", activation_name(kind), "): input '",
               in_like.name, "' ", in_like.shape_string(), " must be (", m, ",", in_cols, ") for output ",
               out_like.shape_string());
}
}  // namespace

void activation_forward(Backend& backend, const ActivationFwd& a) {
  require_support(backend, OpKind::Activation, "activation_forward");
  check_pair("activation_forward", a.kind, a.y, a.x);
  backend.activation_forward(a);
}

void activation_backward(Backend& backend, const ActivationBwd& a) {
  require_support(backend, OpKind::Activation, "activation_backward");
  check_pair("activation_backward", a.kind, a.dy, a.x);
  STRATA_CHECK(a.dx.defined() && a.dx.numel() == a.x.numel(), "activation_backward: dx must match x ",
               a.x.shape_string());
  backend.activation_backward(a);
}

}  // namespace strata
