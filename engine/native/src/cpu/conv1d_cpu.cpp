// CPU kernels of the depthwise causal conv1d. Work is split over blocks of channels, so every
// thread owns its slice of dw, dbias and dx (no races, deterministic sums); the blocks never cross
// a column part of y / dy. x and dx rows are x_ld / dx_ld apart.
// Forward and backward have AVX2+FMA paths (simd.h) over a (K, C) transposed copy of the weights,
// so every tap is a contiguous multiply-add across channels; the scalar loops are the reference.
#include <algorithm>
#include <cmath>
#include <vector>

#include "../ops/conv1d.h"
#include "cpu_backend.h"
#include "cpu_math.h"
#include "simd.h"

namespace strata {

using namespace cpu_math;
namespace {

constexpr int64_t kChannelBlock = 64;

// Channels [c0, c1) of the (B,T,C) output y (or its gradient dy) inside one of its column parts:
// channel c of row r (= b*T + t) is at base[r * pitch + c - c0].
struct Span {
  float* base;
  int64_t pitch, c0, c1;
};
// Spans of at most `width` channels covering the parts in channel order (no span crosses a part).
std::vector<Span> spans_of(const std::array<Tensor, 3>& parts, int64_t width) {
  std::vector<Span> out;
  int64_t begin = 0;
  for (const Tensor& part : parts) {
    if (!part.defined()) continue;
    const int64_t w = part.size(2);
    for (int64_t c = 0; c < w; c += width) out.push_back({part.data + c, w, begin + c, begin + std::min(w, c + width)});
    begin += w;
  }
  return out;
}


// Pre-activation at (b, t) for channels [c0, c1) into pre[0..c1-c0); x rows are x_ld apart.
inline void conv_pre(const float* x, const float* w, const float* bias, int64_t t_len, int64_t x_ld, int64_t k,
                     int64_t b, int64_t t, int64_t c0, int64_t c1, float* pre) {
  for (int64_t c = c0; c < c1; ++c) pre[c - c0] = bias ? bias[c] : 0.0f;
  for (int64_t j = 0; j < k; ++j) {
    int64_t src_t = t - k + 1 + j;
    if (src_t < 0) continue;
    const float* xs = x + (b * t_len + src_t) * x_ld;
    for (int64_t c = c0; c < c1; ++c) pre[c - c0] += w[c * k + j] * xs[c];
  }
}

// w (C, K) -> (K, C)
std::vector<float> taps_by_channel(const Tensor& w) {
  const int64_t c_len = w.size(0), k = w.size(1);
  std::vector<float> wt(static_cast<size_t>(c_len * k));
  for (int64_t c = 0; c < c_len; ++c) {
    for (int64_t j = 0; j < k; ++j) wt[j * c_len + c] = w.data[c * k + j];
  }
  return wt;
}

#if STRATA_SIMD_X86
// Pre-activation of 8 channels [c, c+lanes) at (b, t), from the transposed taps wt (K, C); x rows
// are x_ld apart.
STRATA_AVX2_INLINE __m256 conv_pre_avx2(const float* x, const float* wt, const float* bias, int64_t t_len, int64_t c_len,
                                        int64_t x_ld, int64_t k, int64_t b, int64_t t, int64_t c, int64_t lanes) {
  __m256 pre = bias ? avx2::load_n(bias + c, lanes) : _mm256_setzero_ps();
  for (int64_t j = 0; j < k; ++j) {
    const int64_t src_t = t - k + 1 + j;
    if (src_t < 0) continue;
    pre = _mm256_fmadd_ps(avx2::load_n(wt + j * c_len + c, lanes), avx2::load_n(x + (b * t_len + src_t) * x_ld + c, lanes), pre);
  }
  return pre;
}

STRATA_AVX2 void conv1d_forward_avx2(const Conv1dFwd& a, const float* wt, int64_t b, const Span& span) {
  const int64_t t_len = a.x.size(1), c_len = a.x.size(2), k = a.w.size(1);
  const float* bias = a.bias.defined() ? a.bias.data : nullptr;
  for (int64_t t = 0; t < t_len; ++t) {
    float* y = span.base + (b * t_len + t) * span.pitch;
    for (int64_t c = span.c0; c < span.c1; c += 8) {
      const int64_t lanes = std::min<int64_t>(8, span.c1 - c);
      __m256 v = conv_pre_avx2(a.x.data, wt, bias, t_len, c_len, a.x_ld, k, b, t, c, lanes);
      if (a.silu) v = _mm256_mul_ps(v, avx2::sigmoid(v));
      avx2::store_n(y + (c - span.c0), v, lanes);
    }
  }
}

// Backward of the span's channels [c0, c1) (at most 8) over every batch; dwt is the (K, C) weight
// gradient.
// Per sequence, first the output gradients g_t (through SiLU, recomputing the pre-activation) with
// dbias and dw, then dx in gather form, dx_s = sum_j g_{s+K-1-j} w_j, one store per step instead of
// a load and a store per (step, tap). The sums run in the same order as the per-tap scatter would.
// g is t_len * 8 scratch.
STRATA_AVX2 void conv1d_backward_avx2(const Conv1dBwd& a, const float* wt, float* dwt, const Span& span, float* g) {
  const int64_t bsz = a.x.size(0), t_len = a.x.size(1), c_len = a.x.size(2), k = a.w.size(1);
  const float* bias = a.bias.defined() ? a.bias.data : nullptr;
  const __m256 one = _mm256_set1_ps(1.0f);
  const int64_t c = span.c0, lanes = span.c1 - span.c0;
  __m256 dbias = _mm256_setzero_ps();
  __m256 dw[8];
  for (int64_t j = 0; j < std::min<int64_t>(k, 8); ++j) dw[j] = _mm256_setzero_ps();
  for (int64_t b = 0; b < bsz; ++b) {
    for (int64_t t = 0; t < t_len; ++t) {
      __m256 gt = avx2::load_n(span.base + (b * t_len + t) * span.pitch, lanes);
      if (a.silu) {
        const __m256 v = conv_pre_avx2(a.x.data, wt, bias, t_len, c_len, a.x_ld, k, b, t, c, lanes);
        const __m256 s = avx2::sigmoid(v);
        gt = _mm256_mul_ps(gt, _mm256_mul_ps(s, _mm256_fmadd_ps(v, _mm256_sub_ps(one, s), one)));
      }
      _mm256_storeu_ps(g + t * 8, gt);
      dbias = _mm256_add_ps(dbias, gt);
      for (int64_t j = 0; j < k; ++j) {
        const int64_t src_t = t - k + 1 + j;
        if (src_t < 0) continue;
        const __m256 xs = avx2::load_n(a.x.data + (b * t_len + src_t) * a.x_ld + c, lanes);
        if (j < 8) {
          dw[j] = _mm256_fmadd_ps(gt, xs, dw[j]);
        } else {
          float* row = dwt + j * c_len + c;
          avx2::store_n(row, _mm256_fmadd_ps(gt, xs, avx2::load_n(row, lanes)), lanes);
        }
      }
    }
    for (int64_t s = 0; s < t_len; ++s) {
      float* dx = a.dx.data + (b * t_len + s) * a.dx_ld + c;
      __m256 acc = avx2::load_n(dx, lanes);
      for (int64_t i = 0; i < k && s + i < t_len; ++i) {  // step t = s + i reaches x_s through tap k - 1 - i
        acc = _mm256_fmadd_ps(_mm256_loadu_ps(g + (s + i) * 8), avx2::load_n(wt + (k - 1 - i) * c_len + c, lanes), acc);
      }
      avx2::store_n(dx, acc, lanes);
    }
  }
  if (a.dbias.defined()) {
    float* db = a.dbias.data + c;
    avx2::store_n(db, _mm256_add_ps(avx2::load_n(db, lanes), dbias), lanes);
  }
  for (int64_t j = 0; j < std::min<int64_t>(k, 8); ++j) {
    float* row = dwt + j * c_len + c;
    avx2::store_n(row, _mm256_add_ps(avx2::load_n(row, lanes), dw[j]), lanes);
  }
}
#endif

}  // namespace

void CpuBackend::conv1d_forward(const Conv1dFwd& a) {
  const int64_t bsz = a.x.size(0), t_len = a.x.size(1), k = a.w.size(1);
  const float* bias = a.bias.defined() ? a.bias.data : nullptr;
  const std::vector<Span> spans = spans_of(a.y_parts, kChannelBlock);
  const int64_t blocks = static_cast<int64_t>(spans.size());
#if STRATA_SIMD_X86
  if (cpu_simd_avx2()) {
    const std::vector<float> wt = taps_by_channel(a.w);
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t b = 0; b < bsz; ++b) {
      for (int64_t blk = 0; blk < blocks; ++blk) conv1d_forward_avx2(a, wt.data(), b, spans[blk]);
    }
    return;
  }
#endif
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < bsz; ++b) {
    for (int64_t blk = 0; blk < blocks; ++blk) {
      const Span& span = spans[blk];
      float pre[kChannelBlock];
      for (int64_t t = 0; t < t_len; ++t) {
        conv_pre(a.x.data, a.w.data, bias, t_len, a.x_ld, k, b, t, span.c0, span.c1, pre);
        float* y = span.base + (b * t_len + t) * span.pitch;
        for (int64_t c = span.c0; c < span.c1; ++c) {
          float v = pre[c - span.c0];
          y[c - span.c0] = a.silu ? v * sigmoid(v) : v;
        }
      }
    }
  }
}

void CpuBackend::conv1d_backward(const Conv1dBwd& a) {
  const int64_t bsz = a.x.size(0), t_len = a.x.size(1), c_len = a.x.size(2), k = a.w.size(1);
  const float* bias = a.bias.defined() ? a.bias.data : nullptr;
  for (int64_t r = 0; r < bsz * t_len; ++r) std::fill_n(a.dx.data + r * a.dx_ld, c_len, 0.0f);
#if STRATA_SIMD_X86
  if (cpu_simd_avx2()) {
    const std::vector<float> wt = taps_by_channel(a.w);
    std::vector<float> dwt(static_cast<size_t>(c_len * k), 0.0f);
    // finer channel blocks than the scalar path: 8-lane columns, so two threads split evenly
    const std::vector<Span> columns = spans_of(a.dy_parts, 8);
    const int64_t count = static_cast<int64_t>(columns.size());
#pragma omp parallel
    {
      std::vector<float> g(static_cast<size_t>(t_len * 8));
#pragma omp for schedule(static)
      for (int64_t col = 0; col < count; ++col) conv1d_backward_avx2(a, wt.data(), dwt.data(), columns[col], g.data());
    }
    if (a.dw.defined()) {
      for (int64_t c = 0; c < c_len; ++c) {
        for (int64_t j = 0; j < k; ++j) a.dw.data[c * k + j] += dwt[j * c_len + c];
      }
    }
    return;
  }
#endif
  const std::vector<Span> spans = spans_of(a.dy_parts, kChannelBlock);
  const int64_t blocks = static_cast<int64_t>(spans.size());
#pragma omp parallel for schedule(static)
  for (int64_t blk = 0; blk < blocks; ++blk) {
    const int64_t c0 = spans[blk].c0, c1 = spans[blk].c1;
    float pre[kChannelBlock], g[kChannelBlock];
    for (int64_t b = 0; b < bsz; ++b) {
      for (int64_t t = 0; t < t_len; ++t) {
        const float* dy = spans[blk].base + (b * t_len + t) * spans[blk].pitch;  // channels c0..c1
        if (a.silu) {
          conv_pre(a.x.data, a.w.data, bias, t_len, a.x_ld, k, b, t, c0, c1, pre);
          for (int64_t c = c0; c < c1; ++c) {
            float v = pre[c - c0], s = sigmoid(v);
            g[c - c0] = dy[c - c0] * s * (1.0f + v * (1.0f - s));
          }
        } else {
          for (int64_t c = c0; c < c1; ++c) g[c - c0] = dy[c - c0];
        }
        if (a.dbias.defined()) {
          for (int64_t c = c0; c < c1; ++c) a.dbias.data[c] += g[c - c0];
        }
        for (int64_t j = 0; j < k; ++j) {
          int64_t src_t = t - k + 1 + j;
          if (src_t < 0) continue;
          const float* xs = a.x.data + (b * t_len + src_t) * a.x_ld;
          float* dxs = a.dx.data + (b * t_len + src_t) * a.dx_ld;
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
