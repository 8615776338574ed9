// CPU kernels of the MoE router (scores, biased top-k selection, combine weights, Switch aux loss
// and the exact gradient of all of it), the routing plan (counting sort by expert) and the
// permutation / weighted unpermutation of token rows, and the grouped expert GEMM (one gemm call
// per expert's row range, on this backend's own GEMM kernel).
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "../ops/gemm.h"
#include "../ops/moe.h"
#include "cpu_backend.h"
#include "cpu_math.h"

namespace strata {

using namespace cpu_math;
namespace {
constexpr float kNormEpsilon = 1e-20f;  // guards the top-k renormalization (as in HF's routers)
}  // namespace

void CpuBackend::moe_router_forward(const MoeRouterFwd& a) {
  const int64_t m = a.logits.size(0), e = a.logits.size(1), k = a.params.top_k;
  const bool softmax = a.params.type == RouterType::Softmax;
  std::fill_n(a.expert_load.data, e, 0.0f);
  std::vector<double> mean_prob(e, 0.0);
  std::vector<char> taken(e);
  for (int64_t i = 0; i < m; ++i) {
    const float* logits = a.logits.data + i * e;
    float* scores = a.scores.data + i * e;
    if (softmax) {
      float mx = -std::numeric_limits<float>::infinity();
      for (int64_t j = 0; j < e; ++j) mx = std::max(mx, logits[j]);
      double sum = 0.0;
      for (int64_t j = 0; j < e; ++j) sum += scores[j] = std::exp(logits[j] - mx);
      for (int64_t j = 0; j < e; ++j) scores[j] = static_cast<float>(scores[j] / sum);
    } else {
      for (int64_t j = 0; j < e; ++j) scores[j] = sigmoid(logits[j]);
    }
    double score_sum = 0.0;
    for (int64_t j = 0; j < e; ++j) score_sum += scores[j];
    for (int64_t j = 0; j < e; ++j) mean_prob[j] += softmax ? scores[j] : scores[j] / score_sum;
    std::fill(taken.begin(), taken.end(), 0);
    float weight_sum = 0.0f;
    for (int64_t slot = 0; slot < k; ++slot) {
      int64_t best = -1;
      float best_value = -std::numeric_limits<float>::infinity();
      for (int64_t j = 0; j < e; ++j) {
        const float biased = scores[j] + (a.expert_bias.defined() ? a.expert_bias.data[j] : 0.0f);
        if (!taken[j] && (best < 0 || biased > best_value)) best = j, best_value = biased;
      }
      taken[best] = 1;
      a.topk_index.data[i * k + slot] = static_cast<int32_t>(best);
      a.topk_weight.data[i * k + slot] = scores[best];
      weight_sum += scores[best];
      a.expert_load.data[best] += 1.0f;
    }
    for (int64_t slot = 0; slot < k; ++slot) {
      float& w = a.topk_weight.data[i * k + slot];
      if (a.params.norm_topk) w /= weight_sum + kNormEpsilon;
      w *= a.params.routed_scaling;
    }
  }
  double aux = 0.0;
  if (a.params.aux_loss_coeff > 0.0f && m > 0) {
    for (int64_t j = 0; j < e; ++j) {
      aux += (a.expert_load.data[j] / static_cast<double>(m * k)) * (mean_prob[j] / static_cast<double>(m));
    }
    aux *= a.params.aux_loss_coeff * static_cast<double>(e);
  }
  a.aux_loss.data[0] = static_cast<float>(aux);
}

void CpuBackend::moe_router_backward(const MoeRouterBwd& a) {
  const int64_t m = a.scores.size(0), e = a.scores.size(1), k = a.params.top_k;
  const bool softmax = a.params.type == RouterType::Softmax;
  const bool with_aux = a.params.aux_loss_coeff > 0.0f && m > 0;
  std::vector<float> dscore(e);
#pragma omp parallel for schedule(static) firstprivate(dscore) if (m * e > 16384)
  for (int64_t i = 0; i < m; ++i) {
    const float* scores = a.scores.data + i * e;
    std::fill(dscore.begin(), dscore.end(), 0.0f);
    // combine weights: w_k = r * s_k / S (norm_topk) or r * s_k
    const int32_t* idx = a.topk_index.data + i * k;
    const float* dw = a.dtopk_weight.data + i * k;
    const float r = a.params.routed_scaling;
    if (a.params.norm_topk) {
      float sum = kNormEpsilon, weighted = 0.0f;
      for (int64_t s = 0; s < k; ++s) sum += scores[idx[s]];
      for (int64_t s = 0; s < k; ++s) weighted += dw[s] * scores[idx[s]];
      for (int64_t s = 0; s < k; ++s) dscore[idx[s]] += r * (dw[s] / sum - weighted / (sum * sum));
    } else {
      for (int64_t s = 0; s < k; ++s) dscore[idx[s]] += r * dw[s];
    }
    // aux = coeff E sum_e f_e mean_m p[m,e]  ->  dp[m,e] = daux coeff E f_e / M
    if (with_aux) {
      const float base = a.daux_loss * a.params.aux_loss_coeff * static_cast<float>(e) / static_cast<float>(m);
      if (softmax) {
        for (int64_t j = 0; j < e; ++j) dscore[j] += base * a.expert_load.data[j] / static_cast<float>(m * k);
      } else {  // p = s / sum(s): ds_j = (dp_j - sum_l dp_l p_l) / sum(s)
        double total = 0.0, dp_dot_p = 0.0;
        for (int64_t j = 0; j < e; ++j) total += scores[j];
        for (int64_t j = 0; j < e; ++j) dp_dot_p += base * a.expert_load.data[j] / (m * k) * scores[j] / total;
        for (int64_t j = 0; j < e; ++j) {
          const double dp = base * a.expert_load.data[j] / (m * k);
          dscore[j] += static_cast<float>((dp - dp_dot_p) / total);
        }
      }
    }
    float* dlogits = a.dlogits.data + i * e;
    if (softmax) {
      double dot = 0.0;
      for (int64_t j = 0; j < e; ++j) dot += static_cast<double>(dscore[j]) * scores[j];
      for (int64_t j = 0; j < e; ++j) dlogits[j] = scores[j] * (dscore[j] - static_cast<float>(dot));
    } else {
      for (int64_t j = 0; j < e; ++j) dlogits[j] = dscore[j] * scores[j] * (1.0f - scores[j]);
    }
  }
}

void CpuBackend::moe_routing_plan(const MoeRoutingPlan& a) {
  const int64_t m = a.topk_index.size(0), k = a.topk_index.size(1), e = a.experts;
  std::vector<int32_t> count(e, 0);
  for (int64_t i = 0; i < m * k; ++i) {
    const int32_t ex = a.topk_index.data[i];
    STRATA_CHECK(ex >= 0 && ex < e, "moe_routing_plan: expert index ", ex, " at assignment ", i,
                 " is outside [0, ", e, ")");
    ++count[ex];
  }
  a.expert_offsets.data[0] = 0;
  for (int64_t ex = 0; ex < e; ++ex) a.expert_offsets.data[ex + 1] = a.expert_offsets.data[ex] + count[ex];
  std::vector<int32_t> cursor(a.expert_offsets.data, a.expert_offsets.data + e);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t s = 0; s < k; ++s) {
      const int32_t row = cursor[a.topk_index.data[i * k + s]]++;
      a.row_token.data[row] = static_cast<int32_t>(i);
      a.slot_row.data[i * k + s] = row;
    }
  }
}

void CpuBackend::moe_permute_forward(const MoePermuteFwd& a) {
  const int64_t r = a.routed.size(0), d = a.routed.size(1), m = a.x.size(0);
  for (int64_t row = 0; row < r; ++row) {
    const int32_t token = a.row_token.data[row];
    STRATA_CHECK(token >= 0 && token < m, "moe_permute_forward: row ", row, " names token ", token,
                 " outside [0, ", m, ")");
  }
#pragma omp parallel for schedule(static) if (r * d > 65536)
  for (int64_t row = 0; row < r; ++row) {
    std::memcpy(a.routed.data + row * d, a.x.data + static_cast<int64_t>(a.row_token.data[row]) * d,
                sizeof(float) * d);
  }
}

void CpuBackend::moe_permute_backward(const MoePermuteBwd& a) {
  const int64_t m = a.slot_row.size(0), k = a.slot_row.size(1), d = a.drouted.size(1);
#pragma omp parallel for schedule(static) if (m * d > 65536)
  for (int64_t i = 0; i < m; ++i) {
    float* dx = a.dx.data + i * d;
    std::fill_n(dx, d, 0.0f);
    for (int64_t s = 0; s < k; ++s) {
      const float* g = a.drouted.data + static_cast<int64_t>(a.slot_row.data[i * k + s]) * d;
      for (int64_t j = 0; j < d; ++j) dx[j] += g[j];
    }
  }
}

void CpuBackend::moe_unpermute_forward(const MoeUnpermuteFwd& a) {
  const int64_t m = a.slot_row.size(0), k = a.slot_row.size(1), d = a.routed.size(1);
#pragma omp parallel for schedule(static) if (m * d > 65536)
  for (int64_t i = 0; i < m; ++i) {
    float* y = a.y.data + i * d;
    std::fill_n(y, d, 0.0f);
    for (int64_t s = 0; s < k; ++s) {
      const float w = a.topk_weight.data[i * k + s];
      const float* src = a.routed.data + static_cast<int64_t>(a.slot_row.data[i * k + s]) * d;
      for (int64_t j = 0; j < d; ++j) y[j] += w * src[j];
    }
  }
}

void CpuBackend::moe_unpermute_backward(const MoeUnpermuteBwd& a) {
  const int64_t m = a.slot_row.size(0), k = a.slot_row.size(1), d = a.routed.size(1);
#pragma omp parallel for schedule(static) if (m * d > 65536)
  for (int64_t i = 0; i < m; ++i) {
    const float* dy = a.dy.data + i * d;
    for (int64_t s = 0; s < k; ++s) {
      const int64_t row = a.slot_row.data[i * k + s];
      const float w = a.topk_weight.data[i * k + s];
      const float* src = a.routed.data + row * d;
      float* g = a.drouted.data + row * d;
      double dot = 0.0;
      for (int64_t j = 0; j < d; ++j) {
        g[j] = w * dy[j];
        dot += static_cast<double>(dy[j]) * src[j];
      }
      a.dtopk_weight.data[i * k + s] = static_cast<float>(dot);
    }
  }
}

void CpuBackend::moe_expert_gemm(const MoeExpertGemm& a) {
  const char* op = "moe_expert_gemm";
  const int64_t e = a.expert_offsets.numel() - 1, r = a.a.size(0);
  const int32_t* off = a.expert_offsets.data;
  STRATA_CHECK(off[0] == 0 && off[e] == r, op, ": offsets cover [", off[0], ", ", off[e], ") but there are ", r,
               " routed rows");
  for (int64_t ex = 0; ex < e; ++ex) {
    STRATA_CHECK(off[ex] <= off[ex + 1], op, ": expert offsets decrease at expert ", ex);
  }
  for (int64_t ex = 0; ex < e; ++ex) {
    const int64_t r0 = off[ex], rows = off[ex + 1] - r0;
    if (a.pass == GemmPass::Wgrad) {
      const int64_t o = a.out.size(1), in = a.out.size(2);
      if (rows > 0) {
        gemm(gemm_call(o, in, rows, a.a.data + r0 * o, true, a.b.data + r0 * in, false, a.out.data + ex * o * in, 1.0f,
                       GemmTag{}));
      }
      continue;
    }
    if (rows == 0) continue;
    const int64_t o = a.b.size(1), in = a.b.size(2);
    const float* w = a.b.data + ex * o * in;
    if (a.pass == GemmPass::Fprop) {
      gemm(gemm_call(rows, o, in, a.a.data + r0 * in, false, w, true, a.out.data + r0 * o, 0.0f, GemmTag{}));
    } else {
      gemm(gemm_call(rows, in, o, a.a.data + r0 * o, false, w, false, a.out.data + r0 * in, 0.0f, GemmTag{}));
    }
  }
}

}  // namespace strata
