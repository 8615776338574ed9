// gemm(): argument checks, the precision hook and the profiling observer around the backend's GEMM.
// This file has no kernel; the CPU kernel is cpu/gemm_cpu.cpp.
#include "gemm.h"

#include <mutex>
#include <shared_mutex>

#include "../core/error.h"

namespace strata {

const char* gemm_pass_name(GemmPass pass) {
  switch (pass) {
    case GemmPass::Fprop: return "fprop";
    case GemmPass::Dgrad: return "dgrad";
    case GemmPass::Wgrad: return "wgrad";
    case GemmPass::Other: return "other";
  }
  return "other";
}

const char* gemm_arithmetic_name(GemmArithmetic arithmetic) {
  switch (arithmetic) {
    case GemmArithmetic::Default: return "default";
    case GemmArithmetic::Fp32: return "fp32";
    case GemmArithmetic::Bf16: return "bf16";
    case GemmArithmetic::Fp8E4M3: return "fp8_e4m3";
  }
  return "default";
}

namespace {
std::shared_mutex hook_mutex;
GemmInputTransform& input_transform() {
  static GemmInputTransform transform;
  return transform;
}
GemmTagSelector& transform_selector() {
  static GemmTagSelector selector;
  return selector;
}
GemmObserver& observer() {
  static GemmObserver instance;
  return instance;
}

void check_call(const GemmCall& call) {
  const char* role = call.tag.role ? call.tag.role : "";
  STRATA_CHECK(call.m >= 0 && call.n >= 0 && call.k >= 0, "gemm[", role, "]: negative size m=", call.m,
               " n=", call.n, " k=", call.k);
  STRATA_CHECK(call.c != nullptr || call.m * call.n == 0, "gemm[", role, "]: output C is missing");
  STRATA_CHECK(call.k == 0 || call.m * call.n == 0 || (call.a != nullptr && call.b != nullptr), "gemm[",
               role, "]: input A or B is missing");
  int64_t a_cols = call.trans_a ? call.m : call.k;
  int64_t b_cols = call.trans_b ? call.k : call.n;
  STRATA_CHECK(call.lda >= a_cols, "gemm[", role, "]: lda ", call.lda, " < ", a_cols);
  STRATA_CHECK(call.ldb >= b_cols, "gemm[", role, "]: ldb ", call.ldb, " < ", b_cols);
  STRATA_CHECK(call.ldc >= call.n, "gemm[", role, "]: ldc ", call.ldc, " < n ", call.n);
}
}  // namespace

GemmCall gemm_call(int64_t m, int64_t n, int64_t k, const float* a, bool trans_a, const float* b,
                   bool trans_b, float* c, float beta, GemmTag tag) {
  GemmCall call;
  call.m = m;
  call.n = n;
  call.k = k;
  call.a = a;
  call.trans_a = trans_a;
  call.lda = trans_a ? m : k;
  call.b = b;
  call.trans_b = trans_b;
  call.ldb = trans_b ? k : n;
  call.c = c;
  call.ldc = n;
  call.beta = beta;
  call.tag = tag;
  return call;
}

void gemm(Backend& backend, const GemmCall& original) {
  require_support(backend, OpKind::Gemm, "gemm");
  check_call(original);
  GemmCall call = original;
  {
    std::shared_lock<std::shared_mutex> lock(hook_mutex);
    if (input_transform()) {
      input_transform()(backend, call);
      check_call(call);
    }
  }
  STRATA_CHECK(!(call.a_bf16 || call.b_bf16) || backend.host_accessible(), "gemm[", call.tag.role ? call.tag.role : "",
               "]: bf16 rounding of the inputs is done by host backends only (", backend.name(), ")");
  STRATA_CHECK(call.arithmetic == GemmArithmetic::Default || !backend.host_accessible(), "gemm[",
               call.tag.role ? call.tag.role : "", "]: ", gemm_arithmetic_name(call.arithmetic),
               " arithmetic is chosen for device backends only (", backend.name(), " multiplies in float32)");
  backend.gemm(call);
  notify_gemm_observer(original);
}

void notify_gemm_observer(const GemmCall& call) {
  std::shared_lock<std::shared_mutex> lock(hook_mutex);
  if (observer()) observer()(call);
}

void set_gemm_input_transform(GemmInputTransform transform, GemmTagSelector selects) {
  std::unique_lock<std::shared_mutex> lock(hook_mutex);
  input_transform() = std::move(transform);
  transform_selector() = input_transform() ? std::move(selects) : nullptr;
}

bool gemm_input_transform_selects(const GemmTag& tag) {
  std::shared_lock<std::shared_mutex> lock(hook_mutex);
  return input_transform() && transform_selector() && transform_selector()(tag);
}
void clear_gemm_input_transform() { set_gemm_input_transform(nullptr); }

void set_gemm_observer(GemmObserver instance) {
  std::unique_lock<std::shared_mutex> lock(hook_mutex);
  observer() = std::move(instance);
}

}  // namespace strata
