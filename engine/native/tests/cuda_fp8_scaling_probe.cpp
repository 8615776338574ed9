// strata_cuda_fp8_scaling_probe: what cuBLASLt on this GPU offers for FP8 (e4m3) GEMMs under each
// scaling mode, for scripts/gpu/visit.sh (a GPU tool, not a CTest test: CI has no GPU). It decides
// how the CUDA backend's fp8 GEMM mode should scale its operands; it is not that mode's test (the op
// harness and strata_cuda_compare check the backend's GEMMs).
//
// Part 1, layout and exactness: D (M x N, column-major) = A^T B with A stored K x M and B stored K x N
// (the "TN" layout fp8 tensor cores take), e4m3 operands holding small integers and power-of-two
// scales, so every product and sum is exact in fp32 and a wrong scale layout cannot pass by rounding.
// For each A/B scale mode (per tensor, per row "outer vector", one fp32 scale per 128 K-elements
// "vec128" on both sides) and output type (fp32, bf16): whether cuBLASLt has an algorithm, and the
// largest |D - reference| under each layout the scale tensor might have (and once with beta 1 into
// an fp32 C):
//   k_fastest: scale(row r, block j) at r * (K / 128) + j      m_fastest: at j * rows + r
// Part 2, speed: TFLOP/s at M = N = K = 8192 and at the ~1B benchmark model's largest training shapes
// for bf16 operands with fp32 output (the bf16 mode's GEMM) and each fp8 mode that has an algorithm
// (fastest of up to 8 heuristic candidates, 20 timed launches after 3 warm-ups).
// Output: one line per case, "ok"/"FAIL"/"none" first. Exit status 0 unless the CUDA runtime failed.
#include <cuda_runtime.h>
#include <cublasLt.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace {

#define PROBE_CUDA(call)                                                                   \
  do {                                                                                     \
    const cudaError_t probe_status = (call);                                               \
    if (probe_status != cudaSuccess) {                                                     \
      std::fprintf(stderr, "FAIL %s: %s\n", #call, cudaGetErrorString(probe_status));      \
      std::exit(1);                                                                        \
    }                                                                                      \
  } while (0)

enum class Scale { Tensor, RowVector, Vec128 };
const char* scale_name(Scale s) {
  return s == Scale::Tensor ? "tensor" : s == Scale::RowVector ? "outer_vec" : "vec128";
}
cublasLtMatmulMatrixScale_t scale_mode(Scale s) {
  return s == Scale::Tensor      ? CUBLASLT_MATMUL_MATRIX_SCALE_SCALAR_32F
         : s == Scale::RowVector ? CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F
                                 : CUBLASLT_MATMUL_MATRIX_SCALE_VEC128_32F;
}

// e4m3 bits of an integer with |v| <= 15 (exact: 1 sign, 4 exponent bits with bias 7, 3 mantissa bits).
uint8_t e4m3_of_int(int v) {
  if (v == 0) return 0;
  const int a = std::abs(v);
  int e = 0;
  while ((2 << e) <= a) ++e;
  const int mantissa = (a * 8 >> e) - 8;  // a / 2^e = 1 + mantissa / 8
  return static_cast<uint8_t>((v < 0 ? 0x80 : 0) | ((e + 7) << 3) | mantissa);
}

uint16_t bf16_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return static_cast<uint16_t>((u + 0x7fff + ((u >> 16) & 1)) >> 16);
}
float from_bf16(uint16_t b) {
  const uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

struct Lt {
  cublasLtHandle_t handle = nullptr;
  void* workspace = nullptr;
  size_t workspace_bytes = size_t{64} << 20;
  Lt() {
    cublasLtCreate(&handle);
    PROBE_CUDA(cudaMalloc(&workspace, workspace_bytes));
  }
};

// One cuBLASLt problem: D (m x n) = op_a(A) op_b(B), A (k x m) op T, B (k x n) op N, D leading dim m.
struct Problem {
  int64_t m, n, k;
  cudaDataType_t ab_type, d_type;
  Scale scale = Scale::Tensor;
  const void *a = nullptr, *b = nullptr;
  void* d = nullptr;
  const float *a_scale = nullptr, *b_scale = nullptr;  // device (fp8 only)
  float beta = 0.0f;  // C is D
};

struct Plan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t la = nullptr, lb = nullptr, ld = nullptr;
  std::vector<cublasLtMatmulHeuristicResult_t> candidates;
  std::string why;  // why there is no candidate
  ~Plan() {
    if (la) cublasLtMatrixLayoutDestroy(la);
    if (lb) cublasLtMatrixLayoutDestroy(lb);
    if (ld) cublasLtMatrixLayoutDestroy(ld);
    if (desc) cublasLtMatmulDescDestroy(desc);
  }
};

void make_plan(Lt& lt, const Problem& p, Plan& plan) {
  auto fail = [&](const char* what, cublasStatus_t st) {
    plan.why = std::string(what) + ": " + cublasLtGetStatusString(st);
  };
  cublasStatus_t st = cublasLtMatmulDescCreate(&plan.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F);
  if (st != CUBLAS_STATUS_SUCCESS) return fail("desc", st);
  const cublasOperation_t op_t = CUBLAS_OP_T, op_n = CUBLAS_OP_N;
  cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_TRANSA, &op_t, sizeof(op_t));
  cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_TRANSB, &op_n, sizeof(op_n));
  if (p.ab_type == CUDA_R_8F_E4M3) {
    const int32_t mode = scale_mode(p.scale);
    st = cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_A_SCALE_MODE, &mode, sizeof(mode));
    if (st != CUBLAS_STATUS_SUCCESS) return fail("A scale mode", st);
    st = cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_B_SCALE_MODE, &mode, sizeof(mode));
    if (st != CUBLAS_STATUS_SUCCESS) return fail("B scale mode", st);
    cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &p.a_scale, sizeof(p.a_scale));
    cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &p.b_scale, sizeof(p.b_scale));
  }
  cublasLtMatrixLayoutCreate(&plan.la, p.ab_type, p.k, p.m, p.k);
  cublasLtMatrixLayoutCreate(&plan.lb, p.ab_type, p.k, p.n, p.k);
  cublasLtMatrixLayoutCreate(&plan.ld, p.d_type, p.m, p.n, p.m);
  cublasLtMatmulPreference_t pref = nullptr;
  cublasLtMatmulPreferenceCreate(&pref);
  cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &lt.workspace_bytes,
                                       sizeof(lt.workspace_bytes));
  cublasLtMatmulHeuristicResult_t results[8];
  int found = 0;
  st = cublasLtMatmulAlgoGetHeuristic(lt.handle, plan.desc, plan.la, plan.lb, plan.ld, plan.ld, pref, 8, results,
                                      &found);
  cublasLtMatmulPreferenceDestroy(pref);
  if (st != CUBLAS_STATUS_SUCCESS || found == 0) return fail("heuristic", st == CUBLAS_STATUS_SUCCESS ? CUBLAS_STATUS_NOT_SUPPORTED : st);
  plan.candidates.assign(results, results + found);
}

cublasStatus_t launch(Lt& lt, const Problem& p, const Plan& plan, int candidate) {
  const float alpha = 1.0f;
  return cublasLtMatmul(lt.handle, plan.desc, &alpha, p.a, plan.la, p.b, plan.lb, &p.beta, p.d, plan.ld, p.d, plan.ld,
                        &plan.candidates[candidate].algo, lt.workspace, lt.workspace_bytes, nullptr);
}

// ---- part 1: layout and exactness ------------------------------------------------------------------
// Scales of one operand (rows x K): per mode, the value for (row, k) under a layout hypothesis.
struct ScaleSet {
  std::vector<float> values;  // what is uploaded
  Scale mode;
  int64_t rows, blocks;
  float at(int64_t row, int64_t k, bool k_fastest) const {
    if (mode == Scale::Tensor) return values[0];
    if (mode == Scale::RowVector) return values[static_cast<size_t>(row)];
    const int64_t j = k / 128;
    return values[static_cast<size_t>(k_fastest ? row * blocks + j : j * rows + row)];
  }
};

ScaleSet random_scales(Scale mode, int64_t rows, int64_t k, std::mt19937& rng) {
  ScaleSet s{{}, mode, rows, k / 128};
  const size_t count = mode == Scale::Tensor ? 1 : mode == Scale::RowVector ? rows : rows * (k / 128);
  for (size_t i = 0; i < count; ++i) s.values.push_back(std::ldexp(1.0f, static_cast<int>(rng() % 5) - 2));
  return s;
}

void check_layout(Lt& lt, Scale mode, cudaDataType_t d_type, float beta) {
  const int64_t m = 256, n = 384, k = 512;
  std::mt19937 rng(static_cast<unsigned>(17 + static_cast<int>(mode)));
  std::vector<int> a_int(m * k), b_int(n * k);
  for (int& v : a_int) v = static_cast<int>(rng() % 15) - 7;
  for (int& v : b_int) v = static_cast<int>(rng() % 15) - 7;
  std::vector<uint8_t> a8(a_int.size()), b8(b_int.size());
  for (size_t i = 0; i < a_int.size(); ++i) a8[i] = e4m3_of_int(a_int[i]);
  for (size_t i = 0; i < b_int.size(); ++i) b8[i] = e4m3_of_int(b_int[i]);
  const ScaleSet sa = random_scales(mode, m, k, rng), sb = random_scales(mode, n, k, rng);
  uint8_t *da, *db;
  float *dsa, *dsb;
  void* dd;
  const size_t d_bytes = static_cast<size_t>(m * n) * (d_type == CUDA_R_32F ? 4 : 2);
  PROBE_CUDA(cudaMalloc(&da, a8.size()));
  PROBE_CUDA(cudaMalloc(&db, b8.size()));
  PROBE_CUDA(cudaMalloc(&dsa, sa.values.size() * 4));
  PROBE_CUDA(cudaMalloc(&dsb, sb.values.size() * 4));
  PROBE_CUDA(cudaMalloc(&dd, d_bytes));
  PROBE_CUDA(cudaMemcpy(da, a8.data(), a8.size(), cudaMemcpyHostToDevice));
  PROBE_CUDA(cudaMemcpy(db, b8.data(), b8.size(), cudaMemcpyHostToDevice));
  PROBE_CUDA(cudaMemcpy(dsa, sa.values.data(), sa.values.size() * 4, cudaMemcpyHostToDevice));
  PROBE_CUDA(cudaMemcpy(dsb, sb.values.data(), sb.values.size() * 4, cudaMemcpyHostToDevice));
  if (beta == 0.0f) {
    PROBE_CUDA(cudaMemset(dd, 0xff, d_bytes));  // NaN: an element the GEMM skips shows
  } else {  // C = D = 1 (fp32 output only)
    const std::vector<float> ones(static_cast<size_t>(m * n), 1.0f);
    PROBE_CUDA(cudaMemcpy(dd, ones.data(), d_bytes, cudaMemcpyHostToDevice));
  }
  Problem p{m, n, k, CUDA_R_8F_E4M3, d_type, mode, da, db, dd, dsa, dsb, beta};
  Plan plan;
  make_plan(lt, p, plan);
  const std::string out_name = std::string(d_type == CUDA_R_32F ? "fp32" : "bf16") + (beta != 0.0f ? " (beta 1)" : "");
  if (plan.candidates.empty()) {
    std::printf("none layout fp8 %s scales, %s output: no algorithm (%s)\n", scale_name(mode), out_name.c_str(),
                plan.why.c_str());
  } else {
    const cublasStatus_t st = launch(lt, p, plan, 0);
    PROBE_CUDA(cudaDeviceSynchronize());
    std::vector<float> got(static_cast<size_t>(m * n));
    if (d_type == CUDA_R_32F) {
      PROBE_CUDA(cudaMemcpy(got.data(), dd, d_bytes, cudaMemcpyDeviceToHost));
    } else {
      std::vector<uint16_t> raw(static_cast<size_t>(m * n));
      PROBE_CUDA(cudaMemcpy(raw.data(), dd, d_bytes, cudaMemcpyDeviceToHost));
      for (size_t i = 0; i < raw.size(); ++i) got[i] = from_bf16(raw[i]);
    }
    double worst[2] = {0, 0};  // k_fastest, m_fastest
    for (int layout = 0; layout < 2; ++layout) {
      for (int64_t j = 0; j < n; ++j) {
        for (int64_t i = 0; i < m; ++i) {
          double ref = beta;
          for (int64_t kk = 0; kk < k; ++kk) {
            ref += static_cast<double>(a_int[i * k + kk]) * sa.at(i, kk, layout == 0) * b_int[j * k + kk] *
                   sb.at(j, kk, layout == 0);
          }
          if (d_type != CUDA_R_32F) ref = from_bf16(bf16_bits(static_cast<float>(ref)));
          const double diff = std::fabs(got[static_cast<size_t>(j * m + i)] - ref);
          worst[layout] = std::isnan(diff) ? INFINITY : std::max(worst[layout], diff);
        }
      }
    }
    const bool exact = worst[0] == 0 || worst[1] == 0;
    std::printf("%s layout fp8 %s scales, %s output: %zu algorithms, launch %s, max |D - ref| k_fastest %.3g, "
                "m_fastest %.3g\n",
                exact && st == CUBLAS_STATUS_SUCCESS ? "ok" : "FAIL", scale_name(mode), out_name.c_str(), plan.candidates.size(),
                cublasLtGetStatusString(st), worst[0], worst[1]);
  }
  cudaFree(da), cudaFree(db), cudaFree(dsa), cudaFree(dsb), cudaFree(dd);
}

// ---- part 2: speed ---------------------------------------------------------------------------------------
void time_case(Lt& lt, int64_t m, int64_t n, int64_t k, cudaDataType_t ab, cudaDataType_t d_type, Scale mode) {
  const size_t elem = ab == CUDA_R_16BF ? 2 : 1;
  void *da, *db, *dd;
  float *dsa, *dsb;
  PROBE_CUDA(cudaMalloc(&da, static_cast<size_t>(m * k) * elem));
  PROBE_CUDA(cudaMalloc(&db, static_cast<size_t>(n * k) * elem));
  PROBE_CUDA(cudaMalloc(&dd, static_cast<size_t>(m * n) * (d_type == CUDA_R_32F ? 4 : 2)));
  PROBE_CUDA(cudaMalloc(&dsa, static_cast<size_t>(m * (k / 128 + 1)) * 4));
  PROBE_CUDA(cudaMalloc(&dsb, static_cast<size_t>(n * (k / 128 + 1)) * 4));
  PROBE_CUDA(cudaMemset(da, 0x30, static_cast<size_t>(m * k) * elem));  // small finite values in both types
  PROBE_CUDA(cudaMemset(db, 0x30, static_cast<size_t>(n * k) * elem));
  std::vector<float> ones(static_cast<size_t>(std::max(m, n) * (k / 128 + 1)), 1.0f);
  PROBE_CUDA(cudaMemcpy(dsa, ones.data(), static_cast<size_t>(m * (k / 128 + 1)) * 4, cudaMemcpyHostToDevice));
  PROBE_CUDA(cudaMemcpy(dsb, ones.data(), static_cast<size_t>(n * (k / 128 + 1)) * 4, cudaMemcpyHostToDevice));
  Problem p{m, n, k, ab, d_type, mode, da, db, dd, dsa, dsb, 0.0f};
  Plan plan;
  make_plan(lt, p, plan);
  const std::string label = std::string(ab == CUDA_R_16BF ? "bf16" : "fp8 ") + " " +
                            (ab == CUDA_R_16BF ? "-" : scale_name(mode)) + " -> " +
                            (d_type == CUDA_R_32F ? "fp32" : "bf16");
  if (plan.candidates.empty()) {
    std::printf("none speed %-24s m %lld n %lld k %lld: no algorithm (%s)\n", label.c_str(), static_cast<long long>(m),
                static_cast<long long>(n), static_cast<long long>(k), plan.why.c_str());
  } else {
    cudaEvent_t e0, e1;
    cudaEventCreate(&e0);
    cudaEventCreate(&e1);
    double best_ms = INFINITY;
    for (size_t c = 0; c < plan.candidates.size(); ++c) {
      bool ok = true;
      for (int w = 0; w < 3 && ok; ++w) ok = launch(lt, p, plan, static_cast<int>(c)) == CUBLAS_STATUS_SUCCESS;
      if (!ok) continue;
      cudaEventRecord(e0);
      for (int r = 0; r < 20; ++r) launch(lt, p, plan, static_cast<int>(c));
      cudaEventRecord(e1);
      PROBE_CUDA(cudaEventSynchronize(e1));
      float ms = 0;
      cudaEventElapsedTime(&ms, e0, e1);
      best_ms = std::min(best_ms, static_cast<double>(ms) / 20);
    }
    const double tflops = 2.0 * m * n * k / (best_ms * 1e-3) / 1e12;
    std::printf("ok   speed %-24s m %lld n %lld k %lld: %.3f ms, %.1f TFLOP/s (%zu candidates)\n", label.c_str(),
                static_cast<long long>(m), static_cast<long long>(n), static_cast<long long>(k), best_ms, tflops,
                plan.candidates.size());
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
  }
  cudaFree(da), cudaFree(db), cudaFree(dd), cudaFree(dsa), cudaFree(dsb);
}

}  // namespace

int main() {
  cudaDeviceProp prop{};
  PROBE_CUDA(cudaGetDeviceProperties(&prop, 0));
  std::printf("device %s (sm_%d%d), cuBLASLt %zu\n", prop.name, prop.major, prop.minor, cublasLtGetVersion());
  Lt lt;
  for (Scale mode : {Scale::Tensor, Scale::RowVector, Scale::Vec128}) {
    for (cudaDataType_t d_type : {CUDA_R_32F, CUDA_R_16BF}) check_layout(lt, mode, d_type, 0.0f);
  }
  check_layout(lt, Scale::Tensor, CUDA_R_32F, 1.0f);  // accumulating into an fp32 C (weight gradients)
  // 8192^3, then the ~1B model's (d_model 2048) largest products at B4 x 2048 = 8192 tokens: a forward
  // (tokens x 2048 -> 8192 wide) and a weight gradient (K = tokens)
  const int64_t shapes[][3] = {{8192, 8192, 8192}, {8192, 8192, 2048}, {2048, 8192, 8192}};
  for (const auto& s : shapes) {
    time_case(lt, s[0], s[1], s[2], CUDA_R_16BF, CUDA_R_32F, Scale::Tensor);
    for (Scale mode : {Scale::Tensor, Scale::RowVector, Scale::Vec128}) {
      for (cudaDataType_t d_type : {CUDA_R_32F, CUDA_R_16BF}) time_case(lt, s[0], s[1], s[2], CUDA_R_8F_E4M3, d_type, mode);
    }
  }
  return 0;
}
