// Checked entry points of the AdamW step and the sum of squares.
#include "adamw.h"

namespace strata {

namespace {
void check_step(const AdamWStep& a, const char* op) {
  STRATA_CHECK(a.param.defined() && a.grad.defined() && a.m.defined() && a.v.defined(), op,
               ": param, grad, m and v are required");
  const int64_t n = a.param.numel();
  for (const Tensor* t : {&a.grad, &a.m, &a.v}) {
    STRATA_CHECK(t->numel() == n, op, ": '", t->name, "' has ", t->numel(), " elements, param '", a.param.name,
                 "' has ", n);
  }
  STRATA_CHECK(a.step >= 1, op, ": step must be >= 1, got ", a.step);
  STRATA_CHECK(a.beta1 >= 0.0f && a.beta1 < 1.0f && a.beta2 >= 0.0f && a.beta2 < 1.0f, op,
               ": betas must be in [0,1), got ", a.beta1, ", ", a.beta2);
  STRATA_CHECK(a.eps > 0.0f, op, ": eps must be positive");
}
}  // namespace

void adamw_step(Backend& backend, const AdamWStep& a) {
  require_support(backend, OpKind::AdamW, "adamw_step");
  check_step(a, "adamw_step");
  backend.adamw_step(a);
}

void adamw_steps(Backend& backend, const std::vector<AdamWStep>& steps) {
  require_support(backend, OpKind::AdamW, "adamw_steps");
  for (const AdamWStep& a : steps) check_step(a, "adamw_steps");
  backend.adamw_steps(steps);
}

void sum_squares(Backend& backend, const SumSquaresArgs& a) {
  require_support(backend, OpKind::AdamW, "sum_squares");
  STRATA_CHECK(a.result != nullptr, "sum_squares: result is required");
  for (std::size_t i = 0; i < a.xs.size(); ++i) {
    STRATA_CHECK(a.xs[i].defined(), "sum_squares: xs[", i, "] is not defined");
  }
  backend.sum_squares(a);
}

}  // namespace strata
