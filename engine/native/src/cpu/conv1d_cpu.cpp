// CPU kernels of the depthwise causal conv1d. Work is split over blocks of channels, so every
// thread owns its slice of dw, dbias and dx (no races, deterministic sums).
#include <algorithm>
#include <cmath>

#include "../ops/conv1d.h"
#include "cpu_backend.h"
#include "cpu_math.h"

namespace strata {

using namespace cpu_math;
namespace {

constexpr int64_t kChannelBlock = 64;


// Pre-activation at (b, t) for channels [c0, c1) into pre[0..c1-c0).
inline void conv_pre(const float* x, const float* w, const float* bias, int64_t t_len, int64_t c_len, int64_t k,
                     int64_t b, int64_t t, int64_t c0, int64_t c1, float* pre) {
  for (int64_t c = c0; c < c1; ++c) pre[c - c0] = bias ? bias[c] : 0.0f;
  for (int64_t j = 0; j < k; ++j) {
    int64_t src_t = t - k + 1 + j;
    if (src_t < 0) continue;
    const float* xs = x + (b * t_len + src_t) * c_len;
    for (int64_t c = c0; c < c1; ++c) pre[c - c0] += w[c * k + j] * xs[c];
  }
}

}  // namespace

void CpuBackend::conv1d_forward(const Conv1dFwd& a) {
  const int64_t bsz = a.x.size(0), t_len = a.x.size(1), c_len = a.x.size(2), k = a.w.size(1);
  const float* bias = a.bias.defined() ? a.bias.data : nullptr;
  const int64_t blocks = (c_len + kChannelBlock - 1) / kChannelBlock;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < bsz; ++b) {
    for (int64_t blk = 0; blk < blocks; ++blk) {
      int64_t c0 = blk * kChannelBlock, c1 = std::min(c_len, c0 + kChannelBlock);
      float pre[kChannelBlock];
      for (int64_t t = 0; t < t_len; ++t) {
        conv_pre(a.x.data, a.w.data, bias, t_len, c_len, k, b, t, c0, c1, pre);
        float* y = a.y.data + (b * t_len + t) * c_len;
        for (int64_t c = c0; c < c1; ++c) {
          float v = pre[c - c0];
          y[c] = a.silu ? v * sigmoid(v) : v;
        }
      }
    }
  }
}

void CpuBackend::conv1d_backward(const Conv1dBwd& a) {
  const int64_t bsz = a.x.size(0), t_len = a.x.size(1), c_len = a.x.size(2), k = a.w.size(1);
  const float* bias = a.bias.defined() ? a.bias.data : nullptr;
  const int64_t blocks = (c_len + kChannelBlock - 1) / kChannelBlock;
  for (int64_t i = 0; i < a.dx.numel(); ++i) a.dx.data[i] = 0.0f;
#pragma omp parallel for schedule(static)
  for (int64_t blk = 0; blk < blocks; ++blk) {
    int64_t c0 = blk * kChannelBlock, c1 = std::min(c_len, c0 + kChannelBlock);
    float pre[kChannelBlock], g[kChannelBlock];
    for (int64_t b = 0; b < bsz; ++b) {
      for (int64_t t = 0; t < t_len; ++t) {
        const float* dy = a.dy.data + (b * t_len + t) * c_len;
        if (a.silu) {
          conv_pre(a.x.data, a.w.data, bias, t_len, c_len, k, b, t, c0, c1, pre);
          for (int64_t c = c0; c < c1; ++c) {
            float v = pre[c - c0], s = sigmoid(v);
            g[c - c0] = dy[c] * s * (1.0f + v * (1.0f - s));
          }
        } else {
          for (int64_t c = c0; c < c1; ++c) g[c - c0] = dy[c];
        }
        if (a.dbias.defined()) {
          for (int64_t c = c0; c < c1; ++c) a.dbias.data[c] += g[c - c0];
        }
        for (int64_t j = 0; j < k; ++j) {
          int64_t src_t = t - k + 1 + j;
          if (src_t < 0) continue;
          const float* xs = a.x.data + (b * t_len + src_t) * c_len;
          float* dxs = a.dx.data + (b * t_len + src_t) * c_len;
          for (int64_t c = c0; c < c1; ++c) {
            dxs[c] += g[c - c0] * a.w.data[c * k + j];
            if (a.dw.defined()) a.dw.data[c * k + j] += g[c - c0] * xs[c];
          }
        }
      }
    }
  }
}

void CpuBackend::conv1d_step(const Conv1dStep& a) {
  const int64_t bsz = a.x.size(0), c_len = a.x.size(1), k = a.w.size(1);
  for (int64_t b = 0; b < bsz; ++b) {
    float* state = a.state.data + b * (k - 1) * c_len;  // (K-1, C), oldest first
    const float* x = a.x.data + b * c_len;
    float* y = a.y.data + b * c_len;
    for (int64_t c = 0; c < c_len; ++c) {
      float v = a.bias.defined() ? a.bias.data[c] : 0.0f;
      for (int64_t j = 0; j < k - 1; ++j) v += a.w.data[c * k + j] * state[j * c_len + c];
      v += a.w.data[c * k + k - 1] * x[c];
      y[c] = a.silu ? v * sigmoid(v) : v;
      for (int64_t j = 0; j + 1 < k - 1; ++j) state[j * c_len + c] = state[(j + 1) * c_len + c];
      state[(k - 2) * c_len + c] = x[c];
    }
  }
}

}  // namespace strata
