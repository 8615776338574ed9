// GEMM: the one place every matrix multiply of the engine goes through (linear layers, attention
// projections, expert FFNs, LM head). Each call carries a tag (pass + tensor role + layer) so the
// precision layer can quantize-dequantize the inputs per pass (fprop / dgrad / wgrad) with the
// format the resolved precision policy assigns to that (layer, role, pass).
// This file is the GEMM API and the precision hook; the CPU kernel is cpu/gemm_cpu.cpp.
//
// Shape legend: M rows of C, N columns of C, K the reduction dimension. All matrices row-major.
//   C (M,N) = alpha * op(A) (M,K) @ op(B) (K,N) + beta * C
//   op(A) = A stored (M,K) with lda >= K, or A^T with A stored (K,M) and lda >= M (trans_a)
//   op(B) = B stored (K,N) with ldb >= N, or B^T with B stored (N,K) and ldb >= K (trans_b)
// Linear layers keep the PyTorch weight layout W (out, in) = (N, K):
//   fprop  y  (M,N)  = x (M,K) @ W^T           -> trans_b = true
//   dgrad  dx (M,K)  = dy (M,N) @ W (N,K)      -> no transposes
//   wgrad  dW (N,K) += dy^T (N,M) @ x (M,K)    -> trans_a = true, beta = 1
#pragma once

#include <cstdint>
#include <functional>

#include "../core/backend.h"

namespace strata {

enum class GemmPass { Fprop, Dgrad, Wgrad, Other };
const char* gemm_pass_name(GemmPass pass);

// Who is multiplying: role is one of the document's TENSOR_ROLES ("mamba.in_proj", "head", ...)
// or a free label for GEMMs no precision rule selects ("attention.scores"); layer is the 0-based
// index in the flattened stack, -1 when not applicable; mtp_depth >= 1 inside MTP module k.
struct GemmTag {
  GemmPass pass = GemmPass::Other;
  const char* role = "";
  int layer = -1;
  int mtp_depth = 0;
};

// The arithmetic a device backend multiplies this call's (already transformed) inputs in, when the
// precision hook chose it: Default is the backend's own GEMM mode (CUDA: STRATA_CUDA_GEMM); Fp32
// keeps float32; Bf16 rounds both inputs to bf16 (nearest even); Fp8E4M3 scales each input per
// tensor by 448 / amax and rounds it to e4m3 (the fp8_e4m3 recipe of ops/quant.h, on fp8 tensor
// cores). Host backends multiply in float32 (the hook hands them quantized copies or a_bf16 / b_bf16).
enum class GemmArithmetic : uint8_t { Default, Fp32, Bf16, Fp8E4M3 };
const char* gemm_arithmetic_name(GemmArithmetic arithmetic);

struct GemmCall {
  int64_t m = 0, n = 0, k = 0;
  const float* a = nullptr;  // (M,K) or (K,M) if trans_a
  int64_t lda = 0;
  bool trans_a = false;
  const float* b = nullptr;  // (K,N) or (N,K) if trans_b
  int64_t ldb = 0;
  bool trans_b = false;
  float* c = nullptr;  // (M,N)
  int64_t ldc = 0;
  float alpha = 1.0f;
  float beta = 0.0f;  // 0: C is overwritten (never read, so NaN garbage in C cannot leak)
  GemmTag tag;
  // Round op(A) / op(B) to bf16 (nearest even, quant::bf16_round) as they are read: the result is
  // bit for bit the GEMM of rounded copies, without making them. Set by the precision hook for bf16
  // passes on host backends (the CPU kernel rounds its packed panels); gemm() refuses it elsewhere.
  bool a_bf16 = false;
  bool b_bf16 = false;
  GemmArithmetic arithmetic = GemmArithmetic::Default;  // device backends only (see above)
};

// Checks the call, applies the precision hook (if set) and runs it on the backend.
void gemm(Backend& backend, const GemmCall& call);

// Convenience for contiguous matrices: lda/ldb/ldc derived from the shapes.
GemmCall gemm_call(int64_t m, int64_t n, int64_t k, const float* a, bool trans_a, const float* b,
                   bool trans_b, float* c, float beta, GemmTag tag);

// Precision hook. Called by gemm() before dispatch with the backend and a mutable copy of the call;
// it may replace call.a / call.b with quantize-dequantized copies it owns in that backend's memory
// (valid until the hook is called again on the same thread; on a device, stream order keeps them
// until the GEMM has read them), adjust lda/ldb, and set a_bf16 / b_bf16 (host) or arithmetic
// (device). Must be thread-safe. Empty = no hook.
using GemmInputTransform = std::function<void(Backend& backend, GemmCall& call)>;
// Which tags the hook wants to see one GEMM at a time: device backends run some multiplies as one
// grouped op (MoE experts, ops/moe.h) and fall back to one gemm() per part for a selected tag.
using GemmTagSelector = std::function<bool(const GemmTag& tag)>;
void set_gemm_input_transform(GemmInputTransform transform, GemmTagSelector selects = nullptr);
void clear_gemm_input_transform();
// True when a hook is installed and its selector takes this tag (false without a selector).
bool gemm_input_transform_selects(const GemmTag& tag);

// Observer for profiling: called after every GEMM with the call (for FLOP counting per tag).
using GemmObserver = std::function<void(const GemmCall& call)>;
void set_gemm_observer(GemmObserver observer);
// Tells the observer about a multiply that did not go through gemm() (grouped expert GEMMs).
void notify_gemm_observer(const GemmCall& call);

}  // namespace strata
