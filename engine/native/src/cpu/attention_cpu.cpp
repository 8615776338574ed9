// CPU kernels of causal GQA attention, flash-style: queries in tiles of kQueryTile rows stream key
// tiles of kKeyTile with an online softmax (running max and sum); only a kQueryTile x kKeyTile score
// tile exists at a time. The backward recomputes each probability tile from the saved log-sum-exp:
//   p = exp(scale q.k - lse), dv += p dout, dp = dout.v, ds = p (dp - dout.out),
//   dq += scale ds k, dk += scale ds q.
// Forward runs in parallel over (batch, head, query tile); backward over (batch, kv head), so each
// thread owns its dk / dv rows. Also the KV-cache decode step and RoPE.
// Forward and backward have AVX2+FMA paths (simd.h): the same loops with vector dot products,
// multiply-adds over the head dimension and the probabilities exponentiated 8 at a time (the
// backward sums dq, dk and dv over tiles of query rows, see attention_backward_group_avx2); the
// scalar loops are the reference.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "../ops/attention.h"
#include "cpu_backend.h"
#include "cpu_math.h"
#include "simd.h"

namespace strata {

using namespace cpu_math;
namespace {

constexpr int64_t kQueryTile = 16;
constexpr int64_t kKeyTile = 64;

inline float resolve_scale(float scale, int64_t p) { return scale > 0.0f ? scale : 1.0f / std::sqrt(float(p)); }

// First key position a query at t may see.
inline int64_t first_key(int64_t t, int64_t window) { return window > 0 ? std::max<int64_t>(0, t - window + 1) : 0; }


struct AttnLayout {
  int64_t b, t, h, hkv, p;
  int64_t qi(int64_t bb, int64_t tt, int64_t hh) const { return ((bb * t + tt) * h + hh) * p; }
  int64_t ki(int64_t bb, int64_t tt, int64_t kh) const { return ((bb * t + tt) * hkv + kh) * p; }
  int64_t li(int64_t bb, int64_t hh, int64_t tt) const { return (bb * h + hh) * t + tt; }
};

#if STRATA_SIMD_X86
// Forward of one (batch, head, query tile) with AVX2; acc is kQueryTile * P scratch.
STRATA_AVX2 void attention_forward_tile_avx2(const AttentionFwd& a, const AttnLayout& l, float scale, int64_t b,
                                             int64_t h, int64_t qt, float* acc) {
  const int64_t kh = h / (l.h / l.hkv);
  const int64_t t0 = qt * kQueryTile, rows = std::min(kQueryTile, l.t - t0);
  alignas(32) float scores[kKeyTile];
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t t = t0 + r;
    const float* q = a.q.data + l.qi(b, t, h);
    float* o = acc + r * l.p;
    std::fill_n(o, l.p, 0.0f);
    float row_max = -std::numeric_limits<float>::infinity(), row_sum = 0.0f;
    const int64_t lo = first_key(t, a.window);
    for (int64_t s0 = lo; s0 <= t; s0 += kKeyTile) {
      const int64_t cols = std::min(kKeyTile, t + 1 - s0);
      // keys are rows of stride hkv * P; 8 at a time (a partial last group re-reads valid rows)
      const int64_t key_stride = l.hkv * l.p;
      __m256 vmax = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
      for (int64_t j = 0; j < cols; j += 8) {
        const int64_t lanes = std::min<int64_t>(8, cols - j);
        const int64_t first = lanes == 8 ? s0 + j : s0 + cols - 8 >= 0 ? s0 + cols - 8 : -1;
        __m256 sc;
        if (first >= 0 && lanes < 8) {  // the 8 rows ending at the last key, shifted into place
          alignas(32) float shifted[8];
          _mm256_store_ps(shifted, avx2::dot8(q, a.k.data + l.ki(b, first, kh), key_stride, l.p));
          sc = avx2::load_tail(shifted + (8 - lanes), lanes);
        } else if (first >= 0) {
          sc = avx2::dot8(q, a.k.data + l.ki(b, first, kh), key_stride, l.p);
        } else {  // fewer than 8 keys in the whole sequence so far
          alignas(32) float few[8] = {};
          for (int64_t r = 0; r < lanes; ++r) few[r] = avx2::dot(q, a.k.data + l.ki(b, s0 + j + r, kh), l.p);
          sc = _mm256_load_ps(few);
        }
        sc = _mm256_mul_ps(sc, _mm256_set1_ps(scale));
        avx2::store_n(scores + j, sc, lanes);
        if (lanes < 8) sc = _mm256_blendv_ps(_mm256_set1_ps(-std::numeric_limits<float>::infinity()), sc, _mm256_castsi256_ps(avx2::tail_mask(lanes)));
        vmax = _mm256_max_ps(vmax, sc);
      }
      const float tile_max = avx2::hmax(vmax);
      const float new_max = std::max(row_max, tile_max);
      const float correction = std::exp(row_max - new_max);
      avx2::scale(o, correction, l.p);
      __m256 sum = _mm256_setzero_ps();
      for (int64_t j = 0; j < cols; j += 8) {
        const int64_t lanes = std::min<int64_t>(8, cols - j);
        __m256 pr = avx2::exp(_mm256_sub_ps(avx2::load_n(scores + j, lanes), _mm256_set1_ps(new_max)));
        if (lanes < 8) pr = _mm256_and_ps(pr, _mm256_castsi256_ps(avx2::tail_mask(lanes)));
        sum = _mm256_add_ps(sum, pr);
        _mm256_store_ps(scores + j, pr);
      }
      avx2::add_weighted_rows(o, l.p, a.v.data + l.ki(b, s0, kh), key_stride, scores, 1, cols);  // o += p V, in registers
      row_sum = row_sum * correction + avx2::hsum(sum);
      row_max = new_max;
    }
    float* out = a.out.data + l.qi(b, t, h);
    const float inv = 1.0f / row_sum;
    for (int64_t d = 0; d < l.p; ++d) out[d] = o[d] * inv;
    a.lse.data[l.li(b, h, t)] = row_max + std::log(row_sum);
  }
}

// Backward of one (batch, kv head) with AVX2, per head of the group in tiles of kBackwardTile query
// rows: each row's probabilities p and score gradients ds (keys 8 at a time) fill a tile x keys
// scratch (tile_p, tile_ds: kBackwardTile * T each; zero outside the row's window), then
//   dq_t += sum_s ds_ts k_s (per row), dv_s += sum_t p_ts dout_t, dk_s += sum_t ds_ts q_t (per key,
//   over the tile's rows t >= s),
// as register-blocked sums (avx2::add_weighted_rows), so no dk / dv row is loaded and stored per pair.
constexpr int64_t kBackwardTile = 32;

STRATA_AVX2 void attention_backward_group_avx2(const AttentionBwd& a, const AttnLayout& l, float scale, int64_t b,
                                               int64_t kh, float* delta, float* tile_p, float* tile_ds) {
  const int64_t group = l.h / l.hkv;
  for (int64_t s = 0; s < l.t; ++s) {
    std::fill_n(a.dk.data + l.ki(b, s, kh), l.p, 0.0f);
    std::fill_n(a.dv.data + l.ki(b, s, kh), l.p, 0.0f);
  }
  alignas(32) float pr[8], ds[8];
  const int64_t key_stride = l.hkv * l.p, query_stride = l.h * l.p;
  for (int64_t h = kh * group; h < (kh + 1) * group; ++h) {
    for (int64_t t = 0; t < l.t; ++t) {
      delta[t] = avx2::dot(a.dout.data + l.qi(b, t, h), a.out.data + l.qi(b, t, h), l.p);
      std::fill_n(a.dq.data + l.qi(b, t, h), l.p, 0.0f);
    }
    for (int64_t t0 = 0; t0 < l.t; t0 += kBackwardTile) {
      const int64_t t1 = std::min(l.t, t0 + kBackwardTile), k_lo = first_key(t0, a.window), width = t1 - k_lo;
      for (int64_t t = t0; t < t1; ++t) {
        const float* q = a.q.data + l.qi(b, t, h);
        const float* dout = a.dout.data + l.qi(b, t, h);
        float* p_row = tile_p + (t - t0) * width;  // column s - k_lo holds key position s
        float* ds_row = tile_ds + (t - t0) * width;
        const int64_t lo = first_key(t, a.window);
        std::fill(p_row, p_row + (lo - k_lo), 0.0f);
        std::fill(ds_row, ds_row + (lo - k_lo), 0.0f);
        const __m256 lse = _mm256_set1_ps(a.lse.data[l.li(b, h, t)]), vscale = _mm256_set1_ps(scale);
        const __m256 vdelta = _mm256_set1_ps(delta[t]);
        for (int64_t s0 = lo; s0 <= t; s0 += 8) {
          const int64_t lanes = std::min<int64_t>(8, t + 1 - s0);
          if (lanes == 8) {
            _mm256_store_ps(pr, avx2::dot8(q, a.k.data + l.ki(b, s0, kh), key_stride, l.p));
            _mm256_store_ps(ds, avx2::dot8(dout, a.v.data + l.ki(b, s0, kh), key_stride, l.p));
          } else if (t >= 7) {  // the 8 rows ending at t, shifted into place
            alignas(32) float qk[8], dv[8];
            _mm256_store_ps(qk, avx2::dot8(q, a.k.data + l.ki(b, t - 7, kh), key_stride, l.p));
            _mm256_store_ps(dv, avx2::dot8(dout, a.v.data + l.ki(b, t - 7, kh), key_stride, l.p));
            for (int64_t j = 0; j < lanes; ++j) pr[j] = qk[8 - lanes + j], ds[j] = dv[8 - lanes + j];
          } else {
            for (int64_t j = 0; j < lanes; ++j) {
              pr[j] = avx2::dot(q, a.k.data + l.ki(b, s0 + j, kh), l.p);
              ds[j] = avx2::dot(dout, a.v.data + l.ki(b, s0 + j, kh), l.p);
            }
          }
          const __m256 p = avx2::exp(_mm256_fmsub_ps(vscale, _mm256_load_ps(pr), lse));
          avx2::store_n(ds_row + (s0 - k_lo), _mm256_mul_ps(_mm256_mul_ps(p, _mm256_sub_ps(_mm256_load_ps(ds), vdelta)), vscale),
                        lanes);
          avx2::store_n(p_row + (s0 - k_lo), p, lanes);
        }
        avx2::add_weighted_rows(a.dq.data + l.qi(b, t, h), l.p, a.k.data + l.ki(b, lo, kh), key_stride,
                                ds_row + (lo - k_lo), 1, t + 1 - lo);
      }
      for (int64_t s = k_lo; s < t1; ++s) {
        const int64_t tb = std::max(s, t0);  // rows of the tile that see key s (window zeros included)
        const float* p_col = tile_p + (tb - t0) * width + (s - k_lo);
        const float* ds_col = tile_ds + (tb - t0) * width + (s - k_lo);
        avx2::add_weighted_rows(a.dv.data + l.ki(b, s, kh), l.p, a.dout.data + l.qi(b, tb, h), query_stride, p_col, width,
                                t1 - tb);
        avx2::add_weighted_rows(a.dk.data + l.ki(b, s, kh), l.p, a.q.data + l.qi(b, tb, h), query_stride, ds_col, width,
                                t1 - tb);
      }
    }
  }
}
#endif

}  // namespace

void CpuBackend::attention_forward(const AttentionFwd& a) {
  const AttnLayout l{a.q.size(0), a.q.size(1), a.q.size(2), a.k.size(2), a.q.size(3)};
  const float scale = resolve_scale(a.scale, l.p);
  const int64_t group = l.h / l.hkv;
  const int64_t q_tiles = (l.t + kQueryTile - 1) / kQueryTile;
#if STRATA_SIMD_X86
  if (cpu_simd_avx2()) {
#pragma omp parallel
    {
      std::vector<float> acc(kQueryTile * l.p);
#pragma omp for collapse(3) schedule(dynamic)
      for (int64_t b = 0; b < l.b; ++b) {
        for (int64_t h = 0; h < l.h; ++h) {
          for (int64_t qt = 0; qt < q_tiles; ++qt) attention_forward_tile_avx2(a, l, scale, b, h, qt, acc.data());
        }
      }
    }
    return;
  }
#endif
#pragma omp parallel
  {
    std::vector<float> acc(kQueryTile * l.p);
    float scores[kQueryTile][kKeyTile];
    float row_max[kQueryTile], row_sum[kQueryTile];
#pragma omp for collapse(3) schedule(dynamic)
    for (int64_t b = 0; b < l.b; ++b) {
      for (int64_t h = 0; h < l.h; ++h) {
        for (int64_t qt = 0; qt < q_tiles; ++qt) {
          const int64_t kh = h / group;
          const int64_t t0 = qt * kQueryTile, rows = std::min(kQueryTile, l.t - t0);
          std::fill(acc.begin(), acc.end(), 0.0f);
          for (int64_t r = 0; r < rows; ++r) {
            row_max[r] = -std::numeric_limits<float>::infinity();
            row_sum[r] = 0.0f;
          }
          const int64_t key_begin = first_key(t0, a.window), key_end = t0 + rows;  // exclusive
          for (int64_t s0 = key_begin / kKeyTile * kKeyTile; s0 < key_end; s0 += kKeyTile) {
            const int64_t cols = std::min(kKeyTile, key_end - s0);
            for (int64_t r = 0; r < rows; ++r) {
              const int64_t t = t0 + r;
              const float* q = a.q.data + l.qi(b, t, h);
              float tile_max = -std::numeric_limits<float>::infinity();
              for (int64_t j = 0; j < cols; ++j) {
                const int64_t s = s0 + j;
                float v = -std::numeric_limits<float>::infinity();
                if (s <= t && s >= first_key(t, a.window)) v = scale * dot(q, a.k.data + l.ki(b, s, kh), l.p);
                scores[r][j] = v;
                tile_max = std::max(tile_max, v);
              }
              if (tile_max == -std::numeric_limits<float>::infinity()) continue;  // nothing visible
              const float new_max = std::max(row_max[r], tile_max);
              const float correction = std::exp(row_max[r] - new_max);
              float* o = acc.data() + r * l.p;
              for (int64_t d = 0; d < l.p; ++d) o[d] *= correction;
              float sum = row_sum[r] * correction;
              for (int64_t j = 0; j < cols; ++j) {
                if (scores[r][j] == -std::numeric_limits<float>::infinity()) continue;
                const float pr = std::exp(scores[r][j] - new_max);
                sum += pr;
                const float* v = a.v.data + l.ki(b, s0 + j, kh);
                for (int64_t d = 0; d < l.p; ++d) o[d] += pr * v[d];
              }
              row_sum[r] = sum;
              row_max[r] = new_max;
            }
          }
          for (int64_t r = 0; r < rows; ++r) {
            float* out = a.out.data + l.qi(b, t0 + r, h);
            const float inv = 1.0f / row_sum[r];
            for (int64_t d = 0; d < l.p; ++d) out[d] = acc[r * l.p + d] * inv;
            a.lse.data[l.li(b, h, t0 + r)] = row_max[r] + std::log(row_sum[r]);
          }
        }
      }
    }
  }
}

void CpuBackend::attention_backward(const AttentionBwd& a) {
  const AttnLayout l{a.q.size(0), a.q.size(1), a.q.size(2), a.k.size(2), a.q.size(3)};
  const float scale = resolve_scale(a.scale, l.p);
  const int64_t group = l.h / l.hkv;
#if STRATA_SIMD_X86
  if (cpu_simd_avx2()) {
#pragma omp parallel
    {
      std::vector<float> delta(l.t), tile_p(kBackwardTile * l.t), tile_ds(kBackwardTile * l.t);
#pragma omp for collapse(2) schedule(dynamic)
      for (int64_t b = 0; b < l.b; ++b) {
        for (int64_t kh = 0; kh < l.hkv; ++kh) {
          attention_backward_group_avx2(a, l, scale, b, kh, delta.data(), tile_p.data(), tile_ds.data());
        }
      }
    }
    return;
  }
#endif
#pragma omp parallel
  {
    std::vector<float> delta(l.t);
#pragma omp for collapse(2) schedule(dynamic)
    for (int64_t b = 0; b < l.b; ++b) {
      for (int64_t kh = 0; kh < l.hkv; ++kh) {
        for (int64_t s = 0; s < l.t; ++s) {
          std::fill_n(a.dk.data + l.ki(b, s, kh), l.p, 0.0f);
          std::fill_n(a.dv.data + l.ki(b, s, kh), l.p, 0.0f);
        }
        for (int64_t h = kh * group; h < (kh + 1) * group; ++h) {
          for (int64_t t = 0; t < l.t; ++t) {
            delta[t] = dot(a.dout.data + l.qi(b, t, h), a.out.data + l.qi(b, t, h), l.p);
            std::fill_n(a.dq.data + l.qi(b, t, h), l.p, 0.0f);
          }
          for (int64_t t0 = 0; t0 < l.t; t0 += kQueryTile) {
            const int64_t rows = std::min(kQueryTile, l.t - t0);
            for (int64_t s0 = first_key(t0, a.window) / kKeyTile * kKeyTile; s0 < t0 + rows; s0 += kKeyTile) {
              const int64_t cols = std::min(kKeyTile, t0 + rows - s0);
              for (int64_t r = 0; r < rows; ++r) {
                const int64_t t = t0 + r;
                const float* q = a.q.data + l.qi(b, t, h);
                const float* dout = a.dout.data + l.qi(b, t, h);
                float* dq = a.dq.data + l.qi(b, t, h);
                const float lse = a.lse.data[l.li(b, h, t)];
                const int64_t lo = std::max(s0, first_key(t, a.window)), hi = std::min(s0 + cols - 1, t);
                for (int64_t s = lo; s <= hi; ++s) {
                  const float* k = a.k.data + l.ki(b, s, kh);
                  const float* v = a.v.data + l.ki(b, s, kh);
                  const float pr = std::exp(scale * dot(q, k, l.p) - lse);
                  const float ds = pr * (dot(dout, v, l.p) - delta[t]) * scale;
                  float* dk = a.dk.data + l.ki(b, s, kh);
                  float* dv = a.dv.data + l.ki(b, s, kh);
                  for (int64_t d = 0; d < l.p; ++d) {
                    dv[d] += pr * dout[d];
                    dk[d] += ds * q[d];
                    dq[d] += ds * k[d];
                  }
                }
              }
            }
          }
        }
      }
    }
  }
}

void CpuBackend::attention_decode(const AttentionDecode& a) {
  const int64_t bsz = a.q.size(0), h_len = a.q.size(1), p = a.q.size(2);
  const int64_t cap = a.k_cache.size(1), hkv = a.k_cache.size(2), group = h_len / hkv;
  const float scale = resolve_scale(a.scale, p);
  for (int64_t b = 0; b < bsz; ++b) {
    for (int64_t kh = 0; kh < hkv; ++kh) {
      std::copy_n(a.k_new.data + (b * hkv + kh) * p, p, a.k_cache.data + ((b * cap + a.position) * hkv + kh) * p);
      std::copy_n(a.v_new.data + (b * hkv + kh) * p, p, a.v_cache.data + ((b * cap + a.position) * hkv + kh) * p);
    }
  }
  const int64_t begin = first_key(a.position, a.window);
#pragma omp parallel for collapse(2) schedule(static) if (bsz * h_len >= 4)
  for (int64_t b = 0; b < bsz; ++b) {
    for (int64_t h = 0; h < h_len; ++h) {
      const int64_t kh = h / group;
      const float* q = a.q.data + (b * h_len + h) * p;
      float* out = a.out.data + (b * h_len + h) * p;
      std::fill_n(out, p, 0.0f);
      float running_max = -std::numeric_limits<float>::infinity(), sum = 0.0f;
      for (int64_t s = begin; s <= a.position; ++s) {
        const float* k = a.k_cache.data + ((b * cap + s) * hkv + kh) * p;
        const float* v = a.v_cache.data + ((b * cap + s) * hkv + kh) * p;
        const float score = scale * dot(q, k, p);
        const float new_max = std::max(running_max, score);
        const float correction = std::exp(running_max - new_max), pr = std::exp(score - new_max);
        sum = sum * correction + pr;
        for (int64_t d = 0; d < p; ++d) out[d] = out[d] * correction + pr * v[d];
        running_max = new_max;
      }
      for (int64_t d = 0; d < p; ++d) out[d] /= sum;
    }
  }
}

void CpuBackend::rope(const RopeArgs& a) {
  const int64_t bsz = a.x.size(0), t_len = a.x.size(1), heads = a.x.size(2), p = a.x.size(3);
  const int64_t rotated = static_cast<int64_t>(p * static_cast<double>(a.fraction)) / 2 * 2;
  const int64_t half = rotated / 2;
  if (half == 0) return;
  const double sign = a.inverse ? -1.0 : 1.0;
#pragma omp parallel for schedule(static) if (t_len >= 64)
  for (int64_t t = 0; t < t_len; ++t) {
    const double pos = static_cast<double>(a.position_offset + t);
    for (int64_t i = 0; i < half; ++i) {
      const double angle = pos * std::pow(static_cast<double>(a.theta), -2.0 * i / rotated);
      const float c = static_cast<float>(std::cos(angle)), s = static_cast<float>(sign * std::sin(angle));
      for (int64_t b = 0; b < bsz; ++b) {
        for (int64_t h = 0; h < heads; ++h) {
          float* x = a.x.data + ((b * t_len + t) * heads + h) * p;
          const float x1 = x[i], x2 = x[i + half];
          x[i] = x1 * c - x2 * s;
          x[i + half] = x2 * c + x1 * s;
        }
      }
    }
  }
}

}  // namespace strata
