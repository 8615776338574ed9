// CPU kernels of the gated grouped RMSNorm.
// gate-then-norm: g = y silu(z), n = g rstd, out = n w;
//   dg = rstd (dout w - n mean_group(dout w n)), dw += dout n, dy = dg silu(z), dz = dg y silu'(z)
// norm-then-gate: n = y rstd, out = n w silu(z); with e = dout silu(z):
//   dy = rstd (e w - n mean_group(e w n)), dw += e n, dz = dout n w silu'(z)
// dw is accumulated per thread and reduced in a fixed order. z / dz rows are z_ld / dz_ld apart.
// Forward and backward have AVX2+FMA paths (simd.h); the scalar loops are the reference.
#include <algorithm>
#include <cmath>
#include <vector>

#include "../ops/gated_rmsnorm.h"
#include "cpu_backend.h"
#include "cpu_math.h"
#include "simd.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace strata {

using namespace cpu_math;

namespace {

#if STRATA_SIMD_X86
// One row of the forward (every group of row i).
STRATA_AVX2 void gated_rmsnorm_forward_row_avx2(const GatedRmsNormFwd& a, int64_t i, int64_t di, int64_t gs) {
  for (int64_t g = 0; g < a.groups; ++g) {
    const int64_t off = i * di + g * gs;
    const float* y = a.y.data + off;
    const float* z = a.z.data + i * a.z_ld + g * gs;
    const float* w = a.w.data + g * gs;
    float* out = a.out.data + off;
    __m256 sum = _mm256_setzero_ps();
    for (int64_t j = 0; j < gs; j += 8) {
      const int64_t lanes = std::min<int64_t>(8, gs - j);
      __m256 v = avx2::load_n(y + j, lanes);
      if (!a.norm_before_gate) {
        const __m256 zv = avx2::load_n(z + j, lanes);
        v = _mm256_mul_ps(v, _mm256_mul_ps(zv, avx2::sigmoid(zv)));
      }
      sum = _mm256_fmadd_ps(v, v, sum);
      avx2::store_n(out + j, v, lanes);
    }
    const float rstd = 1.0f / std::sqrt(avx2::hsum(sum) / static_cast<float>(gs) + a.eps);
    a.rstd.data[i * a.groups + g] = rstd;
    const __m256 vr = _mm256_set1_ps(rstd);
    for (int64_t j = 0; j < gs; j += 8) {
      const int64_t lanes = std::min<int64_t>(8, gs - j);
      __m256 v = _mm256_mul_ps(_mm256_mul_ps(avx2::load_n(out + j, lanes), vr), avx2::load_n(w + j, lanes));
      if (a.norm_before_gate) {
        const __m256 zv = avx2::load_n(z + j, lanes);
        v = _mm256_mul_ps(v, _mm256_mul_ps(zv, avx2::sigmoid(zv)));
      }
      avx2::store_n(out + j, v, lanes);
    }
  }
}

// One row of the backward; dw_local (di floats) accumulates this thread's weight gradient.
STRATA_AVX2 void gated_rmsnorm_backward_row_avx2(const GatedRmsNormBwd& a, int64_t i, int64_t di, int64_t gs,
                                                 float* dw_local, float* normed, float* upstream) {
  const __m256 one = _mm256_set1_ps(1.0f);
  for (int64_t g = 0; g < a.groups; ++g) {
    const int64_t off = i * di + g * gs;
    const float* y = a.y.data + off;
    const float* z = a.z.data + i * a.z_ld + g * gs;
    const float* w = a.w.data + g * gs;
    const float* dout = a.dout.data + off;
    float* dy = a.dy.data + off;
    float* dz = a.dz.data + i * a.dz_ld + g * gs;
    const __m256 rstd = _mm256_set1_ps(a.rstd.data[i * a.groups + g]);
    __m256 dot = _mm256_setzero_ps();
    for (int64_t j = 0; j < gs; j += 8) {
      const int64_t lanes = std::min<int64_t>(8, gs - j);
      const __m256 zv = avx2::load_n(z + j, lanes), sv = avx2::sigmoid(zv), yv = avx2::load_n(y + j, lanes);
      const __m256 pre = a.norm_before_gate ? yv : _mm256_mul_ps(yv, _mm256_mul_ps(zv, sv));
      const __m256 n = _mm256_mul_ps(pre, rstd);
      const __m256 dov = avx2::load_n(dout + j, lanes);
      const __m256 up = a.norm_before_gate ? _mm256_mul_ps(dov, _mm256_mul_ps(zv, sv)) : dov;
      avx2::store_n(normed + j, n, lanes);
      avx2::store_n(upstream + j, up, lanes);
      dot = _mm256_fmadd_ps(_mm256_mul_ps(up, avx2::load_n(w + j, lanes)), n, dot);
    }
    const __m256 mean_dot = _mm256_set1_ps(avx2::hsum(dot) / static_cast<float>(gs));
    for (int64_t j = 0; j < gs; j += 8) {
      const int64_t lanes = std::min<int64_t>(8, gs - j);
      const __m256 n = avx2::load_n(normed + j, lanes), up = avx2::load_n(upstream + j, lanes);
      const __m256 wv = avx2::load_n(w + j, lanes), zv = avx2::load_n(z + j, lanes), sv = avx2::sigmoid(zv);
      const __m256 silu_grad = _mm256_mul_ps(sv, _mm256_fmadd_ps(zv, _mm256_sub_ps(one, sv), one));
      const __m256 dpre = _mm256_mul_ps(rstd, _mm256_fnmadd_ps(n, mean_dot, _mm256_mul_ps(up, wv)));
      float* dwj = dw_local + g * gs + j;
      avx2::store_n(dwj, _mm256_fmadd_ps(up, n, avx2::load_n(dwj, lanes)), lanes);
      if (a.norm_before_gate) {
        avx2::store_n(dy + j, dpre, lanes);
        avx2::store_n(dz + j, _mm256_mul_ps(_mm256_mul_ps(avx2::load_n(dout + j, lanes), _mm256_mul_ps(n, wv)), silu_grad), lanes);
      } else {
        avx2::store_n(dy + j, _mm256_mul_ps(dpre, _mm256_mul_ps(zv, sv)), lanes);
        avx2::store_n(dz + j, _mm256_mul_ps(_mm256_mul_ps(dpre, avx2::load_n(y + j, lanes)), silu_grad), lanes);
      }
    }
  }
}
#endif

}  // namespace

void CpuBackend::gated_rmsnorm_forward(const GatedRmsNormFwd& a) {
  const int64_t m = a.y.rows(), di = a.y.cols(), gs = di / a.groups;
#if STRATA_SIMD_X86
  if (cpu_simd_avx2()) {
#pragma omp parallel for schedule(static) if (m * di > 16384)
    for (int64_t i = 0; i < m; ++i) gated_rmsnorm_forward_row_avx2(a, i, di, gs);
    return;
  }
#endif
#pragma omp parallel for schedule(static) if (m * di > 16384)
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t g = 0; g < a.groups; ++g) {
      const int64_t off = i * di + g * gs;
      const float* y = a.y.data + off;
      const float* z = a.z.data + i * a.z_ld + g * gs;
      float* out = a.out.data + off;
      double sum = 0.0;
      for (int64_t j = 0; j < gs; ++j) {
        float v = a.norm_before_gate ? y[j] : y[j] * z[j] * sigmoid(z[j]);
        out[j] = v;
        sum += static_cast<double>(v) * v;
      }
      const float rstd = static_cast<float>(1.0 / std::sqrt(sum / gs + a.eps));
      a.rstd.data[i * a.groups + g] = rstd;
      const float* w = a.w.data + g * gs;
      for (int64_t j = 0; j < gs; ++j) {
        out[j] *= rstd * w[j];
        if (a.norm_before_gate) out[j] *= z[j] * sigmoid(z[j]);
      }
    }
  }
}

void CpuBackend::gated_rmsnorm_backward(const GatedRmsNormBwd& a) {
  const int64_t m = a.y.rows(), di = a.y.cols(), gs = di / a.groups;
  int threads = 1;
#ifdef _OPENMP
  threads = omp_get_max_threads();
#endif
#if STRATA_SIMD_X86
  if (cpu_simd_avx2()) {
    std::vector<float> dw_partial(static_cast<size_t>(threads * di), 0.0f);
#pragma omp parallel num_threads(threads)
    {
      int tid = 0;
#ifdef _OPENMP
      tid = omp_get_thread_num();
#endif
      std::vector<float> normed(gs), upstream(gs);
#pragma omp for schedule(static)
      for (int64_t i = 0; i < m; ++i) {
        gated_rmsnorm_backward_row_avx2(a, i, di, gs, dw_partial.data() + tid * di, normed.data(), upstream.data());
      }
    }
    if (a.dw.defined()) {
      for (int t = 0; t < threads; ++t) {
        for (int64_t j = 0; j < di; ++j) a.dw.data[j] += dw_partial[t * di + j];
      }
    }
    return;
  }
#endif
  std::vector<double> dw_partial(a.dw.defined() ? static_cast<size_t>(threads * di) : 0, 0.0);
#pragma omp parallel num_threads(threads)
  {
    int tid = 0;
#ifdef _OPENMP
    tid = omp_get_thread_num();
#endif
    std::vector<float> normed(gs), upstream(gs);
#pragma omp for schedule(static)
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t g = 0; g < a.groups; ++g) {
        const int64_t off = i * di + g * gs;
        const float* y = a.y.data + off;
        const float* z = a.z.data + i * a.z_ld + g * gs;
        const float* w = a.w.data + g * gs;
        const float* dout = a.dout.data + off;
        float* dy = a.dy.data + off;
        float* dz = a.dz.data + i * a.dz_ld + g * gs;
        const float rstd = a.rstd.data[i * a.groups + g];
        double dot = 0.0;
        for (int64_t j = 0; j < gs; ++j) {
          const float s = sigmoid(z[j]);
          const float pre = a.norm_before_gate ? y[j] : y[j] * z[j] * s;
          normed[j] = pre * rstd;
          upstream[j] = a.norm_before_gate ? dout[j] * z[j] * s : dout[j];
          dot += static_cast<double>(upstream[j]) * w[j] * normed[j];
        }
        const float mean_dot = static_cast<float>(dot / gs);
        double* dw_local = dw_partial.empty() ? nullptr : dw_partial.data() + tid * di + g * gs;
        for (int64_t j = 0; j < gs; ++j) {
          const float dpre = rstd * (upstream[j] * w[j] - normed[j] * mean_dot);
          if (dw_local) dw_local[j] += static_cast<double>(upstream[j]) * normed[j];
          if (a.norm_before_gate) {
            dy[j] = dpre;
            dz[j] = dout[j] * normed[j] * w[j] * silu_grad(z[j]);
          } else {
            dy[j] = dpre * z[j] * sigmoid(z[j]);
            dz[j] = dpre * y[j] * silu_grad(z[j]);
          }
        }
      }
    }
  }
  if (a.dw.defined()) {
    for (int t = 0; t < threads; ++t) {
      for (int64_t j = 0; j < di; ++j) a.dw.data[j] += static_cast<float>(dw_partial[t * di + j]);
    }
  }
}

}  // namespace strata
