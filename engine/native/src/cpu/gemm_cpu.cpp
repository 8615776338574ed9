// CPU GEMM kernel: C = alpha * op(A) op(B) + beta * C in float32, row-major, the classic
// Goto/BLIS structure: B is packed into KC x NR column panels, A into MR x KC row panels, and a
// register-blocked micro-kernel computes MR x NR tiles with FMA. Blocks: KC = 256 (a panel pair
// stays in L1/L2), MC = 96 rows of A per packed block (L2), NC = 3072 columns of B per block (L3).
// Micro-kernels (chosen once at run time): AVX-512F 6x32, AVX2+FMA 6x16, portable scalar 6x16.
// OpenMP threads each own a slab of C. Accumulation order over K is fixed per kernel, so results
// are deterministic for a given kernel and thread count.
// GemmCall::a_bf16 / b_bf16 round the packed panels to bf16 (in registers while packing on the AVX2
// packing paths, else quant::bf16_round_n over the packed panel; packing only moves values and pads
// with zeros, so this equals a GEMM on rounded copies bit for bit). Otherwise this file
// is not the precision hook (ops/gemm.cpp, ops/quant_gemm.h) and does no quantization.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "../core/error.h"
#include "../ops/gemm.h"
#include "../ops/quant_codec.h"
#include "cpu_backend.h"
#include "simd.h"

#ifdef _OPENMP
#include <omp.h>
#endif

#if (defined(__x86_64__) || defined(_M_X64)) && defined(__GNUC__)  // target attributes are GCC/Clang
#define STRATA_X86 1
#include <immintrin.h>
#endif

namespace strata {
namespace {

constexpr int64_t kMr = 6;
constexpr int64_t kKc = 256;
constexpr int64_t kMc = 96;  // multiple of kMr
constexpr int64_t kNc = 3072;
constexpr double kParallelFlops = 4.0e6;  // smaller GEMMs run on the calling thread

// Micro-kernel contract: c_tile (MR x nr_full, row stride ldc) += alpha * a_panel @ b_panel, where
// a_panel is kc x MR (MR values per k step) and b_panel is kc x NR. Only rows < mr and columns < nr
// of C are touched (edge tiles).
using MicroKernel = void (*)(int64_t kc, const float* a_panel, const float* b_panel, float* c,
                             int64_t ldc, float alpha, int64_t mr, int64_t nr);

struct KernelChoice {
  const char* name;
  MicroKernel kernel;
  int64_t nr;
};

void micro_kernel_scalar(int64_t kc, const float* a_panel, const float* b_panel, float* c, int64_t ldc,
                         float alpha, int64_t mr, int64_t nr) {
  constexpr int64_t kNr = 16;
  float acc[kMr][kNr] = {};
  for (int64_t p = 0; p < kc; ++p) {
    const float* a = a_panel + p * kMr;
    const float* b = b_panel + p * kNr;
    for (int64_t r = 0; r < kMr; ++r) {
      for (int64_t j = 0; j < kNr; ++j) acc[r][j] += a[r] * b[j];
    }
  }
  for (int64_t r = 0; r < mr; ++r) {
    for (int64_t j = 0; j < nr; ++j) c[r * ldc + j] += alpha * acc[r][j];
  }
}

#if STRATA_X86
// The SIMD micro-kernels keep their 12 accumulators in named variables (an accumulator array gets
// spilled to the stack by GCC) and share one edge-tile writer.
#define STRATA_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5)

__attribute__((target("avx2,fma"))) void micro_kernel_avx2(int64_t kc, const float* a_panel,
                                                           const float* b_panel, float* c, int64_t ldc,
                                                           float alpha, int64_t mr, int64_t nr) {
  constexpr int64_t kNr = 16;
#define STRATA_DECLARE(r) __m256 c##r##0 = _mm256_setzero_ps(), c##r##1 = _mm256_setzero_ps();
  STRATA_ROWS(STRATA_DECLARE)
#undef STRATA_DECLARE
  for (int64_t p = 0; p < kc; ++p) {
    const __m256 b0 = _mm256_loadu_ps(b_panel + p * kNr);
    const __m256 b1 = _mm256_loadu_ps(b_panel + p * kNr + 8);
    const float* a = a_panel + p * kMr;
#define STRATA_FMA(r)                                  \
  {                                                    \
    const __m256 a_r = _mm256_broadcast_ss(a + r);     \
    c##r##0 = _mm256_fmadd_ps(a_r, b0, c##r##0);       \
    c##r##1 = _mm256_fmadd_ps(a_r, b1, c##r##1);       \
  }
    STRATA_ROWS(STRATA_FMA)
#undef STRATA_FMA
  }
  const __m256 scale = _mm256_set1_ps(alpha);
  if (mr == kMr && nr == kNr) {
#define STRATA_STORE(r)                                                                  \
  _mm256_storeu_ps(c + r * ldc, _mm256_fmadd_ps(c##r##0, scale, _mm256_loadu_ps(c + r * ldc))); \
  _mm256_storeu_ps(c + r * ldc + 8, _mm256_fmadd_ps(c##r##1, scale, _mm256_loadu_ps(c + r * ldc + 8)));
    STRATA_ROWS(STRATA_STORE)
#undef STRATA_STORE
    return;
  }
  alignas(32) float tile[kMr][kNr];
#define STRATA_SPILL(r)                \
  _mm256_store_ps(tile[r], c##r##0);   \
  _mm256_store_ps(tile[r] + 8, c##r##1);
  STRATA_ROWS(STRATA_SPILL)
#undef STRATA_SPILL
  for (int64_t r = 0; r < mr; ++r) {
    for (int64_t j = 0; j < nr; ++j) c[r * ldc + j] += alpha * tile[r][j];
  }
}

__attribute__((target("avx512f"))) void micro_kernel_avx512(int64_t kc, const float* a_panel,
                                                            const float* b_panel, float* c, int64_t ldc,
                                                            float alpha, int64_t mr, int64_t nr) {
  constexpr int64_t kNr = 32;
#define STRATA_DECLARE(r) __m512 c##r##0 = _mm512_setzero_ps(), c##r##1 = _mm512_setzero_ps();
  STRATA_ROWS(STRATA_DECLARE)
#undef STRATA_DECLARE
  for (int64_t p = 0; p < kc; ++p) {
    const __m512 b0 = _mm512_loadu_ps(b_panel + p * kNr);
    const __m512 b1 = _mm512_loadu_ps(b_panel + p * kNr + 16);
    const float* a = a_panel + p * kMr;
#define STRATA_FMA(r)                                  \
  {                                                    \
    const __m512 a_r = _mm512_set1_ps(a[r]);           \
    c##r##0 = _mm512_fmadd_ps(a_r, b0, c##r##0);       \
    c##r##1 = _mm512_fmadd_ps(a_r, b1, c##r##1);       \
  }
    STRATA_ROWS(STRATA_FMA)
#undef STRATA_FMA
  }
  const __m512 scale = _mm512_set1_ps(alpha);
  if (mr == kMr && nr == kNr) {
#define STRATA_STORE(r)                                                                  \
  _mm512_storeu_ps(c + r * ldc, _mm512_fmadd_ps(c##r##0, scale, _mm512_loadu_ps(c + r * ldc))); \
  _mm512_storeu_ps(c + r * ldc + 16, _mm512_fmadd_ps(c##r##1, scale, _mm512_loadu_ps(c + r * ldc + 16)));
    STRATA_ROWS(STRATA_STORE)
#undef STRATA_STORE
    return;
  }
  alignas(64) float tile[kMr][kNr];
#define STRATA_SPILL(r)                 \
  _mm512_store_ps(tile[r], c##r##0);    \
  _mm512_store_ps(tile[r] + 16, c##r##1);
  STRATA_ROWS(STRATA_SPILL)
#undef STRATA_SPILL
  for (int64_t r = 0; r < mr; ++r) {
    for (int64_t j = 0; j < nr; ++j) c[r * ldc + j] += alpha * tile[r][j];
  }
}
#undef STRATA_ROWS
#endif

std::vector<KernelChoice> supported_kernels() {
  std::vector<KernelChoice> kernels;
#if STRATA_X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) kernels.push_back({"avx512", micro_kernel_avx512, 32});
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    kernels.push_back({"avx2-fma", micro_kernel_avx2, 16});
  }
#endif
  kernels.push_back({"scalar", micro_kernel_scalar, 16});
  return kernels;
}

const std::vector<KernelChoice>& kernels_on_this_cpu() {
  static const std::vector<KernelChoice> kernels = supported_kernels();
  return kernels;
}

// Index into kernels_on_this_cpu(): the best kernel, unless STRATA_GEMM_KERNEL names another one.
std::atomic<size_t>& active_kernel_index() {
  static std::atomic<size_t> index{[] {
    const auto& kernels = kernels_on_this_cpu();
    if (const char* wanted = std::getenv("STRATA_GEMM_KERNEL")) {
      for (size_t i = 0; i < kernels.size(); ++i) {
        if (std::string(wanted) == kernels[i].name) return i;
      }
    }
    return size_t{0};
  }()};
  return index;
}

const KernelChoice& active_kernel() { return kernels_on_this_cpu()[active_kernel_index().load()]; }

#if STRATA_X86
// One MR-row panel of a non-transposed A with AVX2: 8 k-steps at a time, the 6 rows (and two zero
// rows) transposed 8x8 in registers; each k-step's 8-float store runs 2 floats into the next k-step,
// which the next store overwrites (the packing buffer has kPackSlack floats after its end).
// With bf16, values are rounded to bf16 (quant::bf16_round) as they are loaded.
__attribute__((target("avx2,fma"))) void pack_a_panel_avx2(const float* a, int64_t lda, int64_t rows, int64_t kc, float* out,
                                                          bool bf16) {
  const __m256 zero = _mm256_setzero_ps();
  int64_t p = 0;
  for (; p + 8 <= kc; p += 8) {
    __m256 r[8];
    for (int64_t i = 0; i < kMr; ++i) r[i] = i < rows ? _mm256_loadu_ps(a + i * lda + p) : zero;
    if (bf16) {
      for (int64_t i = 0; i < rows; ++i) r[i] = avx2::bf16_round(r[i]);
    }
    r[6] = zero;
    r[7] = zero;
    const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    const __m256 u4 = _mm256_shuffle_ps(t4, zero, 0x44), u5 = _mm256_shuffle_ps(t4, zero, 0xEE);
    const __m256 u6 = _mm256_shuffle_ps(t5, zero, 0x44), u7 = _mm256_shuffle_ps(t5, zero, 0xEE);
    // column j of the 8x8 block (k-step p + j): rows 0-3 from u*, rows 4-7 from the matching u(*+4)
    const __m256 col[8] = {
        _mm256_permute2f128_ps(u0, u4, 0x20), _mm256_permute2f128_ps(u1, u5, 0x20),
        _mm256_permute2f128_ps(u2, u6, 0x20), _mm256_permute2f128_ps(u3, u7, 0x20),
        _mm256_permute2f128_ps(u0, u4, 0x31), _mm256_permute2f128_ps(u1, u5, 0x31),
        _mm256_permute2f128_ps(u2, u6, 0x31), _mm256_permute2f128_ps(u3, u7, 0x31),
    };
    for (int64_t j = 0; j < 8; ++j) _mm256_storeu_ps(out + (p + j) * kMr, col[j]);
  }
  for (; p < kc; ++p) {
    for (int64_t i = 0; i < kMr; ++i) {
      const float v = i < rows ? a[i * lda + p] : 0.0f;
      out[p * kMr + i] = bf16 ? quant::bf16_round(v) : v;
    }
  }
}

// One NR-column panel of a non-transposed B with AVX2: rows of `cols` values (rounded to bf16 with
// bf16), zero padded to nr_block.
__attribute__((target("avx2,fma"))) void pack_b_panel_avx2(const float* b, int64_t ldb, int64_t kc, int64_t cols,
                                                          int64_t nr_block, float* out, bool bf16) {
  for (int64_t p = 0; p < kc; ++p) {
    const float* src = b + p * ldb;
    float* dst = out + p * nr_block;
    int64_t j = 0;
    for (; j < cols; j += 8) {
      const int64_t lanes = std::min<int64_t>(8, cols - j);
      __m256 v = avx2::load_n(src + j, lanes);
      if (bf16) v = avx2::bf16_round(v);
      avx2::store_n(dst + j, v, lanes);
    }
    for (j = cols; j < nr_block; ++j) dst[j] = 0.0f;
  }
}
#endif

constexpr int64_t kPackSlack = 8;  // floats after a packed A buffer (see pack_a_panel_avx2)

bool pack_with_avx2() {
#if STRATA_X86
  static const bool supported = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }();
  return supported;
#else
  return false;
#endif
}

// Packs rows [i0, i0+mc) x k-range [p0, p0+kc) of op(A) into MR-row panels (zero padded).
void pack_a(const GemmCall& call, int64_t i0, int64_t mc, int64_t p0, int64_t kc, float* packed) {
  int64_t panels = (mc + kMr - 1) / kMr;
  const bool vector_pack = !call.trans_a && pack_with_avx2();  // rounds to bf16 while packing
  for (int64_t panel = 0; panel < panels; ++panel) {
    float* out = packed + panel * kMr * kc;
    int64_t rows = std::min(kMr, mc - panel * kMr);
    int64_t row0 = i0 + panel * kMr;
#if STRATA_X86
    if (vector_pack) {
      pack_a_panel_avx2(call.a + row0 * call.lda + p0, call.lda, rows, kc, out, call.a_bf16);
      continue;
    }
#endif
    if (!call.trans_a) {
      for (int64_t r = 0; r < kMr; ++r) {
        const float* src = r < rows ? call.a + (row0 + r) * call.lda + p0 : nullptr;
        for (int64_t p = 0; p < kc; ++p) out[p * kMr + r] = src ? src[p] : 0.0f;
      }
    } else {
      for (int64_t p = 0; p < kc; ++p) {
        const float* src = call.a + (p0 + p) * call.lda + row0;
        for (int64_t r = 0; r < kMr; ++r) out[p * kMr + r] = r < rows ? src[r] : 0.0f;
      }
    }
  }
  if (call.a_bf16 && !vector_pack) quant::bf16_round_n(packed, packed, panels * kMr * kc);
}

// Packs k-range [p0, p0+kc) x columns [j0, j0+nc) of op(B) into NR-column panels (zero padded).
void pack_b(const GemmCall& call, int64_t p0, int64_t kc, int64_t j0, int64_t nc, int64_t nr_block,
            float* packed) {
  int64_t panels = (nc + nr_block - 1) / nr_block;
  const bool vector_pack = !call.trans_b && pack_with_avx2();  // rounds to bf16 while packing
  for (int64_t panel = 0; panel < panels; ++panel) {
    float* out = packed + panel * nr_block * kc;
    int64_t cols = std::min(nr_block, nc - panel * nr_block);
    int64_t col0 = j0 + panel * nr_block;
#if STRATA_X86
    if (vector_pack) {
      pack_b_panel_avx2(call.b + p0 * call.ldb + col0, call.ldb, kc, cols, nr_block, out, call.b_bf16);
      continue;
    }
#endif
    if (!call.trans_b) {
      for (int64_t p = 0; p < kc; ++p) {
        const float* src = call.b + (p0 + p) * call.ldb + col0;
        float* dst = out + p * nr_block;
        int64_t j = 0;
        for (; j < cols; ++j) dst[j] = src[j];
        for (; j < nr_block; ++j) dst[j] = 0.0f;
      }
    } else {
      for (int64_t j = 0; j < nr_block; ++j) {
        const float* src = j < cols ? call.b + (col0 + j) * call.ldb + p0 : nullptr;
        for (int64_t p = 0; p < kc; ++p) out[p * nr_block + j] = src ? src[p] : 0.0f;
      }
    }
  }
  if (call.b_bf16 && !vector_pack) quant::bf16_round_n(packed, packed, panels * nr_block * kc);
}

// Scales (or zeroes) C[i0:i1, j0:j1] by beta before accumulation.
void apply_beta(const GemmCall& call, int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
  for (int64_t i = i0; i < i1; ++i) {
    float* row = call.c + i * call.ldc + j0;
    if (call.beta == 0.0f) {
      std::memset(row, 0, sizeof(float) * (j1 - j0));
    } else if (call.beta != 1.0f) {
      for (int64_t j = 0; j < j1 - j0; ++j) row[j] *= call.beta;
    }
  }
}

// The blocked algorithm on the sub-problem C[i0:i1, j0:j1], single-threaded, with this thread's
// packing buffers.
void gemm_block(const GemmCall& call, const KernelChoice& kernel, int64_t i_begin, int64_t i_end, int64_t j_begin,
                int64_t j_end) {
  if (i_begin >= i_end || j_begin >= j_end) return;
  apply_beta(call, i_begin, i_end, j_begin, j_end);
  if (call.k == 0 || call.alpha == 0.0f) return;
  const int64_t nr = kernel.nr;
  thread_local std::vector<float> packed_a;
  thread_local std::vector<float> packed_b;
  const int64_t n_len = j_end - j_begin, m_len = i_end - i_begin;
  const int64_t nc_max = std::min(kNc, (n_len + nr - 1) / nr * nr);
  const int64_t kc_max = std::min(kKc, call.k);
  const int64_t mc_max = std::min(kMc, (m_len + kMr - 1) / kMr * kMr);
  packed_b.resize(static_cast<size_t>(kc_max * nc_max));
  packed_a.resize(static_cast<size_t>(kc_max * mc_max + kPackSlack));
  float* pa = packed_a.data();
  float* pb = packed_b.data();
  for (int64_t j0 = j_begin; j0 < j_end; j0 += kNc) {
    const int64_t nc = std::min(kNc, j_end - j0);
    const int64_t n_panels = (nc + nr - 1) / nr;
    for (int64_t p0 = 0; p0 < call.k; p0 += kKc) {
      const int64_t kc = std::min(kKc, call.k - p0);
      pack_b(call, p0, kc, j0, nc, nr, pb);
      for (int64_t i0 = i_begin; i0 < i_end; i0 += kMc) {
        const int64_t mc = std::min(kMc, i_end - i0);
        const int64_t m_panels = (mc + kMr - 1) / kMr;
        pack_a(call, i0, mc, p0, kc, pa);
        for (int64_t jp = 0; jp < n_panels; ++jp) {
          for (int64_t ip = 0; ip < m_panels; ++ip) {
            const int64_t rows = std::min(kMr, mc - ip * kMr);
            const int64_t cols = std::min(nr, nc - jp * nr);
            float* c_tile = call.c + (i0 + ip * kMr) * call.ldc + j0 + jp * nr;
            kernel.kernel(kc, pa + ip * kMr * kc, pb + jp * nr * kc, c_tile, call.ldc, call.alpha, rows, cols);
          }
        }
      }
    }
  }
}

}  // namespace

const char* cpu_gemm_kernel_name() { return active_kernel().name; }

std::vector<std::string> cpu_gemm_kernels() {
  std::vector<std::string> names;
  for (const KernelChoice& k : kernels_on_this_cpu()) names.emplace_back(k.name);
  return names;
}

void set_cpu_gemm_kernel(const std::string& name) {
  const auto& kernels = kernels_on_this_cpu();
  for (size_t i = 0; i < kernels.size(); ++i) {
    if (name == kernels[i].name) {
      active_kernel_index().store(i);
      return;
    }
  }
  throw Error("set_cpu_gemm_kernel: kernel '" + name + "' is not supported on this CPU");
}

// Threads split C into disjoint slabs (columns when N is the larger side, else rows), each slab
// aligned to the micro-tile and computed start to finish by one thread: no barriers inside the
// GEMM, which keeps it fast on machines that are shared with other work.
void CpuBackend::gemm(const GemmCall& call) {
  if (call.m == 0 || call.n == 0) return;
  const KernelChoice& kernel = active_kernel();
  int threads = 1;
#ifdef _OPENMP
  const double flops = 2.0 * call.m * call.n * call.k;
  if (flops >= kParallelFlops) threads = omp_get_max_threads();
#endif
  const bool split_columns = call.n >= call.m;
  const int64_t unit = split_columns ? kernel.nr : kMr;
  const int64_t extent = split_columns ? call.n : call.m;
  const int64_t units = (extent + unit - 1) / unit;
  threads = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads, units)));
  if (threads == 1) {
    gemm_block(call, kernel, 0, call.m, 0, call.n);
    return;
  }
#pragma omp parallel num_threads(threads)
  {
    // partition by the team actually granted (1 when called inside another parallel region)
    int tid = 0, team = 1;
#ifdef _OPENMP
    tid = omp_get_thread_num();
    team = omp_get_num_threads();
#endif
    const int64_t begin = std::min(extent, units * tid / team * unit);
    const int64_t end = std::min(extent, units * (tid + 1) / team * unit);
    if (split_columns) {
      gemm_block(call, kernel, 0, call.m, begin, end);
    } else {
      gemm_block(call, kernel, begin, end, 0, call.n);
    }
  }
}

}  // namespace strata
