// Checked entry points of the MoE router, routing plan and permutation ops, and the per-expert
// linear layers (a loop of gemm() calls over each expert's row range), plus the expert-bias update.
#include "moe.h"

#include <cmath>

#include "elementwise.h"
#include "gemm.h"

namespace strata {

namespace {
void check_routing(const char* op, const TensorI32& slot_row, const Tensor& topk_weight, int64_t* m, int64_t* k) {
  STRATA_CHECK(slot_row.ndim == 2, op, ": slot_row must be (M,K), got ", slot_row.shape_string());
  *m = slot_row.size(0);
  *k = slot_row.size(1);
  if (topk_weight.defined()) check_shape(op, "topk_weight", topk_weight, {*m, *k});
}
}  // namespace

void moe_router_forward(Backend& backend, const MoeRouterFwd& a) {
  require_support(backend, OpKind::MoeRouter, "moe_router_forward");
  const char* op = "moe_router_forward";
  STRATA_CHECK(a.logits.ndim == 2, op, ": logits '", a.logits.name, "' must be (M,E), got ", a.logits.shape_string());
  const int64_t m = a.logits.size(0), e = a.logits.size(1), k = a.params.top_k;
  STRATA_CHECK(k >= 1 && k <= e, op, ": top_k ", k, " must be in [1, experts=", e, "]");
  STRATA_CHECK(a.params.routed_scaling > 0.0f, op, ": routed_scaling must be positive");
  check_shape(op, "scores", a.scores, {m, e});
  check_shape(op, "topk_index", a.topk_index, {m, k});
  check_shape(op, "topk_weight", a.topk_weight, {m, k});
  check_shape(op, "expert_load", a.expert_load, {e});
  check_shape(op, "aux_loss", a.aux_loss, {1});
  if (a.expert_bias.defined()) check_shape(op, "expert_bias", a.expert_bias, {e});
  backend.moe_router_forward(a);
}

void moe_router_backward(Backend& backend, const MoeRouterBwd& a) {
  require_support(backend, OpKind::MoeRouter, "moe_router_backward");
  const char* op = "moe_router_backward";
  STRATA_CHECK(a.scores.ndim == 2, op, ": scores must be (M,E), got ", a.scores.shape_string());
  const int64_t m = a.scores.size(0), e = a.scores.size(1), k = a.params.top_k;
  STRATA_CHECK(k >= 1 && k <= e, op, ": top_k ", k, " must be in [1, experts=", e, "]");
  check_shape(op, "dlogits", a.dlogits, {m, e});
  check_shape(op, "dtopk_weight", a.dtopk_weight, {m, k});
  check_shape(op, "topk_index", a.topk_index, {m, k});
  check_shape(op, "expert_load", a.expert_load, {e});
  backend.moe_router_backward(a);
}

void moe_routing_plan(Backend& backend, const MoeRoutingPlan& a) {
  require_support(backend, OpKind::MoePermute, "moe_routing_plan");
  const char* op = "moe_routing_plan";
  STRATA_CHECK(a.topk_index.ndim == 2, op, ": topk_index must be (M,K), got ", a.topk_index.shape_string());
  const int64_t m = a.topk_index.size(0), k = a.topk_index.size(1);
  STRATA_CHECK(a.experts >= 1, op, ": experts must be >= 1");
  check_shape(op, "expert_offsets", a.expert_offsets, {a.experts + 1});
  check_shape(op, "row_token", a.row_token, {m * k});
  check_shape(op, "slot_row", a.slot_row, {m, k});
  backend.moe_routing_plan(a);
}

void moe_permute_forward(Backend& backend, const MoePermuteFwd& a) {
  require_support(backend, OpKind::MoePermute, "moe_permute_forward");
  const char* op = "moe_permute_forward";
  STRATA_CHECK(a.x.ndim == 2 && a.routed.ndim == 2, op, ": x and routed must be 2-D (M,D) / (R,D)");
  check_shape(op, "routed", a.routed, {a.row_token.numel(), a.x.size(1)});
  backend.moe_permute_forward(a);
}

void moe_permute_backward(Backend& backend, const MoePermuteBwd& a) {
  require_support(backend, OpKind::MoePermute, "moe_permute_backward");
  const char* op = "moe_permute_backward";
  int64_t m = 0, k = 0;
  check_routing(op, a.slot_row, Tensor(), &m, &k);
  STRATA_CHECK(a.drouted.ndim == 2, op, ": drouted must be (R,D), got ", a.drouted.shape_string());
  check_shape(op, "drouted", a.drouted, {m * k, a.drouted.size(1)});
  check_shape(op, "dx", a.dx, {m, a.drouted.size(1)});
  backend.moe_permute_backward(a);
}

void moe_unpermute_forward(Backend& backend, const MoeUnpermuteFwd& a) {
  require_support(backend, OpKind::MoePermute, "moe_unpermute_forward");
  const char* op = "moe_unpermute_forward";
  int64_t m = 0, k = 0;
  check_routing(op, a.slot_row, a.topk_weight, &m, &k);
  STRATA_CHECK(a.routed.ndim == 2, op, ": routed must be (R,D), got ", a.routed.shape_string());
  check_shape(op, "routed", a.routed, {m * k, a.routed.size(1)});
  check_shape(op, "y", a.y, {m, a.routed.size(1)});
  backend.moe_unpermute_forward(a);
}

void moe_unpermute_backward(Backend& backend, const MoeUnpermuteBwd& a) {
  require_support(backend, OpKind::MoePermute, "moe_unpermute_backward");
  const char* op = "moe_unpermute_backward";
  int64_t m = 0, k = 0;
  check_routing(op, a.slot_row, a.topk_weight, &m, &k);
  STRATA_CHECK(a.routed.ndim == 2, op, ": routed must be (R,D), got ", a.routed.shape_string());
  const int64_t d = a.routed.size(1);
  check_shape(op, "routed", a.routed, {m * k, d});
  check_shape(op, "drouted", a.drouted, {m * k, d});
  check_shape(op, "dy", a.dy, {m, d});
  check_shape(op, "dtopk_weight", a.dtopk_weight, {m, k});
  backend.moe_unpermute_backward(a);
}

std::vector<int32_t> moe_offsets_on_host(Backend& backend, const TensorI32& expert_offsets) {
  std::vector<int32_t> host(static_cast<size_t>(expert_offsets.numel()));
  backend.download(host.data(), expert_offsets.data, host.size() * sizeof(int32_t));
  return host;
}

namespace {
void check_expert_linear(const char* op, const char* role, const Tensor& w, const Tensor& rows_in,
                         const Tensor& rows_out, const std::vector<int32_t>& offsets) {
  STRATA_CHECK(w.ndim == 3, op, "[", role, "]: expert weights '", w.name, "' must be (E,O,I), got ", w.shape_string());
  const int64_t e = w.size(0), o = w.size(1), in = w.size(2);
  STRATA_CHECK(static_cast<int64_t>(offsets.size()) == e + 1, op, "[", role, "]: ", offsets.size(),
               " expert offsets for ", e, " experts (need E+1)");
  const int64_t r = rows_in.rows();
  STRATA_CHECK(offsets.front() == 0 && offsets.back() == r, op, "[", role, "]: offsets cover [", offsets.front(),
               ", ", offsets.back(), ") but there are ", r, " routed rows");
  for (int64_t i = 0; i < e; ++i) {
    STRATA_CHECK(offsets[i] <= offsets[i + 1], op, "[", role, "]: expert offsets decrease at expert ", i);
  }
  STRATA_CHECK(rows_in.cols() == in, op, "[", role, "]: input '", rows_in.name, "' ", rows_in.shape_string(),
               " must have ", in, " columns");
  STRATA_CHECK(rows_out.rows() == r && rows_out.cols() == o, op, "[", role, "]: output '", rows_out.name, "' ",
               rows_out.shape_string(), " must be (", r, ",", o, ")");
}
}  // namespace

void moe_expert_linear_forward(Backend& backend, const Tensor& y, const Tensor& x, const Tensor& w,
                               const Tensor& bias, const std::vector<int32_t>& expert_offsets, const char* role,
                               int layer) {
  const char* op = "moe_expert_linear_forward";
  check_expert_linear(op, role, w, x, y, expert_offsets);
  const int64_t e = w.size(0), o = w.size(1), in = w.size(2);
  if (bias.defined()) {
    check_shape(op, "bias", bias, {e, o});
  }
  for (int64_t ex = 0; ex < e; ++ex) {
    const int64_t r0 = expert_offsets[ex], rows = expert_offsets[ex + 1] - r0;
    if (rows == 0) continue;
    gemm(backend, gemm_call(rows, o, in, x.data + r0 * in, false, w.data + ex * o * in, true, y.data + r0 * o, 0.0f,
                            GemmTag{GemmPass::Fprop, role, layer, 0}));
    if (bias.defined()) {
      bias_add(backend, BiasAddArgs{Tensor(y.data + r0 * o, {rows, o}, y.name),
                                    Tensor(bias.data + ex * o, {o}, bias.name)});
    }
  }
}

void moe_expert_linear_backward(Backend& backend, const Tensor& dx, const Tensor& dw, const Tensor& dbias,
                                const Tensor& dy, const Tensor& x, const Tensor& w,
                                const std::vector<int32_t>& expert_offsets, const char* role, int layer) {
  const char* op = "moe_expert_linear_backward";
  check_expert_linear(op, role, w, x, dy, expert_offsets);
  const int64_t e = w.size(0), o = w.size(1), in = w.size(2);
  if (dx.defined()) check_shape(op, "dx", dx, {x.rows(), in});
  if (dw.defined()) check_shape(op, "dw", dw, {e, o, in});
  if (dbias.defined()) {
    check_shape(op, "dbias", dbias, {e, o});
  }
  for (int64_t ex = 0; ex < e; ++ex) {
    const int64_t r0 = expert_offsets[ex], rows = expert_offsets[ex + 1] - r0;
    if (rows == 0) continue;
    if (dx.defined()) {
      gemm(backend, gemm_call(rows, in, o, dy.data + r0 * o, false, w.data + ex * o * in, false, dx.data + r0 * in,
                              0.0f, GemmTag{GemmPass::Dgrad, role, layer, 0}));
    }
    if (dw.defined()) {
      gemm(backend, gemm_call(o, in, rows, dy.data + r0 * o, true, x.data + r0 * in, false, dw.data + ex * o * in,
                              1.0f, GemmTag{GemmPass::Wgrad, role, layer, 0}));
    }
    if (dbias.defined()) {
      bias_grad(backend, BiasGradArgs{Tensor(dbias.data + ex * o, {o}, dbias.name),
                                      Tensor(dy.data + r0 * o, {rows, o}, dy.name)});
    }
  }
}

void moe_update_expert_bias(const Tensor& expert_bias, const Tensor& expert_load, float rate) {
  const char* op = "moe_update_expert_bias";
  STRATA_CHECK(expert_bias.ndim == 1, op, ": expert_bias must be (E), got ", expert_bias.shape_string());
  const int64_t e = expert_bias.size(0);
  check_shape(op, "expert_load", expert_load, {e});
  double mean = 0.0;
  for (int64_t i = 0; i < e; ++i) mean += expert_load.data[i];
  mean /= static_cast<double>(e);
  for (int64_t i = 0; i < e; ++i) {
    const double gap = mean - expert_load.data[i];
    expert_bias.data[i] += rate * static_cast<float>((gap > 0) - (gap < 0));
  }
}

}  // namespace strata
