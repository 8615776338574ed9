// SIMD support of the CPU kernels (other than the GEMM micro-kernels, which have their own): the
// run-time choice between the AVX2+FMA code paths and the portable scalar reference, and small
// AVX2 helpers (exp, sigmoid, horizontal sums, dot products) used by those paths.
//
// Every kernel with an AVX2 path keeps its scalar loop as the readable reference; the AVX2 path is
// a function carrying STRATA_AVX2 (a GCC/Clang target attribute, so the rest of the library still
// compiles for baseline x86-64) and is taken when cpu_simd_avx2() is true: the CPU has AVX2 and FMA
// and neither STRATA_CPU_SIMD=scalar nor set_cpu_simd_level("scalar") asked for the reference.
// The two paths agree to float rounding (FMA contraction, a polynomial exp accurate to ~2 ulp), not
// bit for bit. This file is not a general SIMD library.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#if (defined(__x86_64__) || defined(_M_X64)) && defined(__GNUC__)
#define STRATA_SIMD_X86 1
#include <immintrin.h>
#define STRATA_AVX2 __attribute__((target("avx2,fma")))
#define STRATA_AVX2_INLINE __attribute__((target("avx2,fma"), always_inline)) inline
#endif

namespace strata {

// True when the AVX2+FMA kernel paths are active (read once per kernel call; cheap).
bool cpu_simd_avx2();
// "avx2-fma" or "scalar".
const char* cpu_simd_level();
std::vector<std::string> cpu_simd_levels();  // supported on this CPU, best first
void set_cpu_simd_level(const std::string& name);  // raises when not supported

#if STRATA_SIMD_X86
namespace avx2 {

STRATA_AVX2_INLINE float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

STRATA_AVX2_INLINE float hmax(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Loads n < 8 floats (the rest zero) / stores the first n lanes.
STRATA_AVX2_INLINE __m256i tail_mask(int64_t n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
STRATA_AVX2_INLINE __m256 load_tail(const float* p, int64_t n) { return _mm256_maskload_ps(p, tail_mask(n)); }
STRATA_AVX2_INLINE void store_tail(float* p, __m256 v, int64_t n) { _mm256_maskstore_ps(p, tail_mask(n), v); }
// Full or partial vector (lanes in 1..8).
STRATA_AVX2_INLINE __m256 load_n(const float* p, int64_t lanes) { return lanes >= 8 ? _mm256_loadu_ps(p) : load_tail(p, lanes); }
STRATA_AVX2_INLINE void store_n(float* p, __m256 v, int64_t lanes) {
  if (lanes >= 8) _mm256_storeu_ps(p, v);
  else store_tail(p, v, lanes);
}

// e^x: x = n ln2 + r with |r| <= ln2/2, e^r by a degree-6 polynomial, 2^n through the exponent
// bits. Inputs below -87.3 give 0 (no denormals), above 88.7 give +inf, NaN stays NaN.
STRATA_AVX2_INLINE __m256 exp(__m256 x) {
  const __m256 hi = _mm256_set1_ps(88.7228f), lo = _mm256_set1_ps(-87.3365f);
  const __m256 underflow = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
  const __m256 overflow = _mm256_cmp_ps(x, hi, _CMP_GT_OQ);
  __m256 xc = _mm256_min_ps(_mm256_max_ps(x, lo), hi);
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), xc);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  // 2^n in two halves so n = 128 (x near the top of the range) does not overflow the exponent
  const __m256i ni = _mm256_cvtps_epi32(n);
  const __m256i half = _mm256_srai_epi32(ni, 1);
  const __m256 scale_a = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(half, _mm256_set1_epi32(127)), 23));
  const __m256 scale_b =
      _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_sub_epi32(ni, half), _mm256_set1_epi32(127)), 23));
  __m256 result = _mm256_mul_ps(_mm256_mul_ps(p, scale_a), scale_b);
  result = _mm256_andnot_ps(underflow, result);
  result = _mm256_blendv_ps(result, _mm256_set1_ps(__builtin_inff()), overflow);
  return _mm256_blendv_ps(result, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));  // NaN in, NaN out
}

STRATA_AVX2_INLINE __m256 sigmoid(__m256 x) {
  const __m256 one = _mm256_set1_ps(1.0f);
  return _mm256_div_ps(one, _mm256_add_ps(one, exp(_mm256_sub_ps(_mm256_setzero_ps(), x))));
}

// fp32 -> nearest bf16 (ties to even) -> fp32 on 8 lanes: bit for bit quant::bf16_round (integer
// arithmetic on the fp32 bits; NaN stays a quiet NaN with its sign, overflow rounds to Inf).
STRATA_AVX2_INLINE __m256 bf16_round(__m256 v) {
  const __m256i bits = _mm256_castps_si256(v);
  const __m256i high_mask = _mm256_set1_epi32(static_cast<int>(0xFFFF0000u));
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(1));  // ties to even
  const __m256i rounded =
      _mm256_and_si256(_mm256_add_epi32(bits, _mm256_add_epi32(_mm256_set1_epi32(0x7FFF), lsb)), high_mask);
  const __m256i is_nan = _mm256_cmpgt_epi32(_mm256_and_si256(bits, _mm256_set1_epi32(0x7FFFFFFF)), _mm256_set1_epi32(0x7F800000));
  // a NaN whose payload sat only in the dropped bits gets the quiet bit, so it stays a NaN
  const __m256i payload_gone = _mm256_cmpeq_epi32(_mm256_and_si256(bits, _mm256_set1_epi32(0x007F0000)), _mm256_setzero_si256());
  const __m256i nan_value =
      _mm256_or_si256(_mm256_and_si256(bits, high_mask), _mm256_and_si256(payload_gone, _mm256_set1_epi32(0x00400000)));
  return _mm256_castsi256_ps(_mm256_blendv_epi8(rounded, nan_value, is_nan));
}

// sum a[i] b[i] with two accumulators (fixed order: deterministic for a given n).
STRATA_AVX2_INLINE float dot(const float* a, const float* b, int64_t n) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
  }
  for (; i + 8 <= n; i += 8) acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
  if (i < n) acc1 = _mm256_fmadd_ps(load_tail(a + i, n - i), load_tail(b + i, n - i), acc1);
  return hsum(_mm256_add_ps(acc0, acc1));
}

// The 8 dot products a . rows[r] (r < 8), rows[r] = b + r * row_stride, as one vector: eight
// accumulators reduced together with a horizontal-add tree (no per-dot horizontal sum).
STRATA_AVX2_INLINE __m256 dot8(const float* a, const float* b, int64_t row_stride, int64_t n) {
  __m256 acc[8];
  for (int r = 0; r < 8; ++r) acc[r] = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 va = _mm256_loadu_ps(a + i);
    for (int r = 0; r < 8; ++r) acc[r] = _mm256_fmadd_ps(va, _mm256_loadu_ps(b + r * row_stride + i), acc[r]);
  }
  if (i < n) {
    const __m256 va = load_tail(a + i, n - i);
    for (int r = 0; r < 8; ++r) acc[r] = _mm256_fmadd_ps(va, load_tail(b + r * row_stride + i, n - i), acc[r]);
  }
  const __m256 s01 = _mm256_hadd_ps(acc[0], acc[1]), s23 = _mm256_hadd_ps(acc[2], acc[3]);
  const __m256 s45 = _mm256_hadd_ps(acc[4], acc[5]), s67 = _mm256_hadd_ps(acc[6], acc[7]);
  const __m256 s0123 = _mm256_hadd_ps(s01, s23), s4567 = _mm256_hadd_ps(s45, s67);
  return _mm256_add_ps(_mm256_permute2f128_ps(s0123, s4567, 0x20), _mm256_permute2f128_ps(s0123, s4567, 0x31));
}

// y[i] += alpha x[i]
STRATA_AVX2_INLINE void axpy(float* y, float alpha, const float* x, int64_t n) {
  const __m256 va = _mm256_set1_ps(alpha);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  if (i < n) store_tail(y + i, _mm256_fmadd_ps(va, load_tail(x + i, n - i), load_tail(y + i, n - i)), n - i);
}

// out[0:n) += sum_{j < count} w[j * w_stride] * row_j[0:n), row_j = rows + j * row_stride: a small
// matrix product with the output held in registers, 32 columns per pass (rows in order j = 0, 1, ...).
STRATA_AVX2_INLINE void add_weighted_rows(float* out, int64_t n, const float* rows, int64_t row_stride, const float* w,
                                          int64_t w_stride, int64_t count) {
  for (int64_t c0 = 0; c0 < n; c0 += 32) {
    int64_t lanes[4];
    __m256 acc[4];
    for (int v = 0; v < 4; ++v) {
      lanes[v] = n - c0 - 8 * v < 0 ? 0 : (n - c0 - 8 * v > 8 ? 8 : n - c0 - 8 * v);
      acc[v] = lanes[v] > 0 ? load_n(out + c0 + 8 * v, lanes[v]) : _mm256_setzero_ps();
    }
    if (lanes[3] == 8) {  // the common case: 32 full lanes
      for (int64_t j = 0; j < count; ++j) {
        const __m256 wj = _mm256_set1_ps(w[j * w_stride]);
        const float* r = rows + j * row_stride + c0;
        for (int v = 0; v < 4; ++v) acc[v] = _mm256_fmadd_ps(wj, _mm256_loadu_ps(r + 8 * v), acc[v]);
      }
    } else {
      for (int64_t j = 0; j < count; ++j) {
        const __m256 wj = _mm256_set1_ps(w[j * w_stride]);
        const float* r = rows + j * row_stride + c0;
        for (int v = 0; v < 4 && lanes[v] > 0; ++v) acc[v] = _mm256_fmadd_ps(wj, load_n(r + 8 * v, lanes[v]), acc[v]);
      }
    }
    for (int v = 0; v < 4 && lanes[v] > 0; ++v) store_n(out + c0 + 8 * v, acc[v], lanes[v]);
  }
}

// y[i] *= alpha
STRATA_AVX2_INLINE void scale(float* y, float alpha, int64_t n) {
  const __m256 va = _mm256_set1_ps(alpha);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_mul_ps(va, _mm256_loadu_ps(y + i)));
  if (i < n) store_tail(y + i, _mm256_mul_ps(va, load_tail(y + i, n - i)), n - i);
}

}  // namespace avx2
#endif

}  // namespace strata
