// Checked entry points of the fused log-softmax cross-entropy, the greedy argmax, and the valid-target count.
#include "cross_entropy.h"

#include <vector>

namespace strata {

void cross_entropy_forward(Backend& backend, const CrossEntropyFwd& a) {
  require_support(backend, OpKind::CrossEntropy, "cross_entropy_forward");
  const char* op = "cross_entropy_forward";
  STRATA_CHECK(a.logits.defined(), op, ": logits are required");
  const int64_t m = a.logits.rows();
  check_shape(op, "targets", a.targets, {m});
  check_shape(op, "losses", a.losses, {m});
  check_shape(op, "lse", a.lse, {m});
  backend.cross_entropy_forward(a);
}

void cross_entropy_backward(Backend& backend, const CrossEntropyBwd& a) {
  require_support(backend, OpKind::CrossEntropy, "cross_entropy_backward");
  const char* op = "cross_entropy_backward";
  STRATA_CHECK(a.logits.defined() && a.dlogits.defined(), op, ": logits and dlogits are required");
  const int64_t m = a.logits.rows();
  STRATA_CHECK(a.dlogits.numel() == a.logits.numel(), op, ": dlogits ", a.dlogits.shape_string(),
               " must match logits ", a.logits.shape_string());
  check_shape(op, "targets", a.targets, {m});
  check_shape(op, "lse", a.lse, {m});
  backend.cross_entropy_backward(a);
}

void argmax_rows(Backend& backend, const ArgmaxRows& a) {
  require_support(backend, OpKind::CrossEntropy, "argmax_rows");
  const char* op = "argmax_rows";
  STRATA_CHECK(a.logits.ndim == 2 && a.logits.size(1) >= 1, op, ": logits '", a.logits.name,
               "' must be (M,V) with V >= 1, got ", a.logits.shape_string());
  check_shape(op, "ids", a.ids, {a.logits.size(0)});
  backend.argmax_rows(a);
}

int64_t count_valid_targets(Backend& backend, const TensorI32& targets, int32_t ignore_index) {
  std::vector<int32_t> host(static_cast<size_t>(targets.numel()));
  backend.download(host.data(), targets.data, host.size() * sizeof(int32_t));
  int64_t valid = 0;
  for (int32_t t : host) valid += t != ignore_index;
  return valid;
}

}  // namespace strata
