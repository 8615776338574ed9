// Checked entry points of the MoE router, routing plan, permutation and grouped expert GEMM ops,
// the per-expert linear layers (one grouped GEMM on device backends, one gemm() per expert on
// host-accessible ones and wherever the precision hook selects the tag, so it sees every expert),
// and the expert-bias update.
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

void moe_expert_gemm(Backend& backend, const MoeExpertGemm& a) {
  require_support(backend, OpKind::MoePermute, "moe_expert_gemm");
  const char* op = "moe_expert_gemm";
  STRATA_CHECK(a.pass == GemmPass::Fprop || a.pass == GemmPass::Dgrad || a.pass == GemmPass::Wgrad, op,
               ": pass must be fprop, dgrad or wgrad");
  STRATA_CHECK(a.expert_offsets.ndim == 1 && a.expert_offsets.size(0) >= 2, op, ": expert_offsets must be (E+1), got ",
               a.expert_offsets.shape_string());
  const int64_t e = a.expert_offsets.size(0) - 1;
  STRATA_CHECK(a.a.ndim == 2, op, ": a '", a.a.name, "' must be 2-D, got ", a.a.shape_string());
  const int64_t r = a.a.size(0);
  if (a.pass == GemmPass::Wgrad) {
    STRATA_CHECK(a.out.ndim == 3 && a.out.size(0) == e, op, ": out '", a.out.name, "' must be (E=", e, ",O,I), got ",
                 a.out.shape_string());
    check_shape(op, "a", a.a, {r, a.out.size(1)});
    check_shape(op, "b", a.b, {r, a.out.size(2)});
  } else {
    STRATA_CHECK(a.b.ndim == 3 && a.b.size(0) == e, op, ": weights '", a.b.name, "' must be (E=", e, ",O,I), got ",
                 a.b.shape_string());
    const int64_t o = a.b.size(1), in = a.b.size(2);
    const bool fprop = a.pass == GemmPass::Fprop;
    check_shape(op, "a", a.a, {r, fprop ? in : o});
    check_shape(op, "out", a.out, {r, fprop ? o : in});
  }
  backend.moe_expert_gemm(a);
}

namespace {
// The expert offsets on the host (downloaded from a device: a wait), checked: non-decreasing from 0 to R.
std::vector<int32_t> host_offsets(Backend& backend, const char* op, const char* role, const TensorI32& offsets,
                                  int64_t r) {
  const int64_t e = offsets.numel() - 1;
  std::vector<int32_t> host(static_cast<size_t>(e + 1));
  backend.download(host.data(), offsets.data, host.size() * sizeof(int32_t));
  STRATA_CHECK(host[0] == 0 && host[e] == r, op, "[", role, "]: offsets cover [", host[0], ", ", host[e],
               ") but there are ", r, " routed rows");
  for (int64_t i = 0; i < e; ++i) {
    STRATA_CHECK(host[i] <= host[i + 1], op, "[", role, "]: expert offsets decrease at expert ", i);
  }
  return host;
}
// The profiler's FLOP count of one grouped GEMM (one observer call for all experts).
void observe_grouped(int64_t m, int64_t n, int64_t k, GemmPass pass, const char* role, int layer) {
  GemmCall call;
  call.m = m, call.n = n, call.k = k;
  call.tag = GemmTag{pass, role, layer, 0};
  notify_gemm_observer(call);
}
}  // namespace

void moe_expert_linear_forward(Backend& backend, const Tensor& y, const Tensor& x, const Tensor& w,
                               const TensorI32& expert_offsets, const char* role, int layer) {
  const char* op = "moe_expert_linear_forward";
  STRATA_CHECK(w.ndim == 3, op, "[", role, "]: expert weights '", w.name, "' must be (E,O,I), got ", w.shape_string());
  const int64_t e = w.size(0), o = w.size(1), in = w.size(2), r = x.rows();
  check_shape(op, "expert_offsets", expert_offsets, {e + 1});
  STRATA_CHECK(x.cols() == in && y.rows() == r && y.cols() == o, op, "[", role, "]: x ", x.shape_string(), " and y ",
               y.shape_string(), " do not fit weights ", w.shape_string());
  if (!backend.host_accessible() && !gemm_input_transform_selects(GemmTag{GemmPass::Fprop, role, layer, 0})) {
    moe_expert_gemm(backend, {GemmPass::Fprop, y.reshaped({r, o}), x.reshaped({r, in}), w, expert_offsets});
    observe_grouped(r, o, in, GemmPass::Fprop, role, layer);
    return;
  }
  const std::vector<int32_t> offsets = host_offsets(backend, op, role, expert_offsets, r);
  for (int64_t ex = 0; ex < e; ++ex) {
    const int64_t r0 = offsets[ex], rows = offsets[ex + 1] - r0;
    if (rows == 0) continue;
    gemm(backend, gemm_call(rows, o, in, x.data + r0 * in, false, w.data + ex * o * in, true, y.data + r0 * o, 0.0f,
                            GemmTag{GemmPass::Fprop, role, layer, 0}));
  }
}

void moe_expert_linear_backward(Backend& backend, const Tensor& dx, const Tensor& dw, const Tensor& dy,
                                const Tensor& x, const Tensor& w, const TensorI32& expert_offsets, const char* role,
                                int layer) {
  const char* op = "moe_expert_linear_backward";
  STRATA_CHECK(w.ndim == 3, op, "[", role, "]: expert weights '", w.name, "' must be (E,O,I), got ", w.shape_string());
  const int64_t e = w.size(0), o = w.size(1), in = w.size(2), r = x.rows();
  check_shape(op, "expert_offsets", expert_offsets, {e + 1});
  STRATA_CHECK(x.cols() == in && dy.rows() == r && dy.cols() == o, op, "[", role, "]: x ", x.shape_string(),
               " and dy ", dy.shape_string(), " do not fit weights ", w.shape_string());
  if (dx.defined()) check_shape(op, "dx", dx, {r, in});
  if (dw.defined()) check_shape(op, "dw", dw, {e, o, in});
  const bool grouped = !backend.host_accessible() &&
                       !gemm_input_transform_selects(GemmTag{GemmPass::Dgrad, role, layer, 0}) &&
                       !gemm_input_transform_selects(GemmTag{GemmPass::Wgrad, role, layer, 0});
  if (grouped) {
    if (dx.defined()) {
      moe_expert_gemm(backend, {GemmPass::Dgrad, dx, dy.reshaped({r, o}), w, expert_offsets});
      observe_grouped(r, in, o, GemmPass::Dgrad, role, layer);
    }
    if (dw.defined()) {
      moe_expert_gemm(backend, {GemmPass::Wgrad, dw, dy.reshaped({r, o}), x.reshaped({r, in}), expert_offsets});
      observe_grouped(o, in, r, GemmPass::Wgrad, role, layer);
    }
    return;
  }
  const std::vector<int32_t> offsets = host_offsets(backend, op, role, expert_offsets, r);
  for (int64_t ex = 0; ex < e; ++ex) {
    const int64_t r0 = offsets[ex], rows = offsets[ex + 1] - r0;
    if (rows == 0) continue;
    if (dx.defined()) {
      gemm(backend, gemm_call(rows, in, o, dy.data + r0 * o, false, w.data + ex * o * in, false, dx.data + r0 * in,
                              0.0f, GemmTag{GemmPass::Dgrad, role, layer, 0}));
    }
    if (dw.defined()) {
      gemm(backend, gemm_call(o, in, rows, dy.data + r0 * o, true, x.data + r0 * in, false, dw.data + ex * o * in,
                              1.0f, GemmTag{GemmPass::Wgrad, role, layer, 0}));
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
