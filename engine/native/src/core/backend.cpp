// Backend registry and the default "not supported" op entry points of the Backend interface.
// This file holds no kernels; the CPU backend lives in cpu/cpu_backend.cpp.
#include "backend.h"

#include <algorithm>
#include <mutex>

#include "../ops/adamw.h"
#include "error.h"

namespace strata {

const char* op_kind_name(OpKind kind) {
  switch (kind) {
    case OpKind::Gemm: return "gemm";
    case OpKind::Elementwise: return "elementwise";
    case OpKind::Embedding: return "embedding";
    case OpKind::RmsNorm: return "rmsnorm";
    case OpKind::Activation: return "activation";
    case OpKind::Conv1d: return "conv1d";
    case OpKind::Ssd: return "ssd";
    case OpKind::GatedRmsNorm: return "gated_rmsnorm";
    case OpKind::Rope: return "rope";
    case OpKind::Attention: return "attention";
    case OpKind::MoeRouter: return "moe_router";
    case OpKind::MoePermute: return "moe_permute";
    case OpKind::CrossEntropy: return "cross_entropy";
    case OpKind::AdamW: return "adamw";
    case OpKind::Quantize: return "quantize";
  }
  return "unknown";
}

void Backend::unsupported(OpKind kind) const {
  throw Error(detail::concat("backend ", name(), " does not support op family ", op_kind_name(kind)));
}

void Backend::fill_bytes(void* pointer, std::size_t bytes, unsigned char value) {
  constexpr std::size_t kChunk = std::size_t{1} << 16;
  const std::vector<unsigned char> pattern(std::min(bytes, kChunk), value);
  for (std::size_t done = 0; done < bytes; done += kChunk)
    upload(static_cast<unsigned char*>(pointer) + done, pattern.data(), std::min(kChunk, bytes - done));
}

void Backend::fill_zero_ranges(const std::vector<std::pair<void*, std::size_t>>& ranges) {
  for (const auto& [pointer, bytes] : ranges) fill_zero(pointer, bytes);
}

bool Backend::begin_recording(std::string* why_not) {
  if (why_not) *why_not = detail::concat("backend ", name(), " cannot record ops");
  return false;
}
std::unique_ptr<OpRecording> Backend::end_recording(std::string* why_not) {
  if (why_not) *why_not = detail::concat("backend ", name(), " cannot record ops");
  return nullptr;
}

void Backend::gemm(const GemmCall&) { unsupported(OpKind::Gemm); }
void Backend::fake_quantize(const FakeQuantizeArgs&) { unsupported(OpKind::Quantize); }
void Backend::add(const AddArgs&) { unsupported(OpKind::Elementwise); }
void Backend::axpy(const AxpyArgs&) { unsupported(OpKind::Elementwise); }
void Backend::scale(const ScaleArgs&) { unsupported(OpKind::Elementwise); }
void Backend::copy_strided(const StridedCopyArgs&) { unsupported(OpKind::Elementwise); }
void Backend::bias_add(const BiasAddArgs&) { unsupported(OpKind::Elementwise); }
void Backend::bias_grad(const BiasGradArgs&) { unsupported(OpKind::Elementwise); }
void Backend::embedding_forward(const EmbeddingFwd&) { unsupported(OpKind::Embedding); }
void Backend::embedding_backward(const EmbeddingBwd&) { unsupported(OpKind::Embedding); }
void Backend::rmsnorm_forward(const RmsNormFwd&) { unsupported(OpKind::RmsNorm); }
void Backend::rmsnorm_backward(const RmsNormBwd&) { unsupported(OpKind::RmsNorm); }
void Backend::activation_forward(const ActivationFwd&) { unsupported(OpKind::Activation); }
void Backend::activation_backward(const ActivationBwd&) { unsupported(OpKind::Activation); }
void Backend::conv1d_forward(const Conv1dFwd&) { unsupported(OpKind::Conv1d); }
void Backend::conv1d_backward(const Conv1dBwd&) { unsupported(OpKind::Conv1d); }
void Backend::conv1d_step(const Conv1dStep&) { unsupported(OpKind::Conv1d); }
void Backend::ssd_forward(const SsdFwd&) { unsupported(OpKind::Ssd); }
void Backend::ssd_backward(const SsdBwd&) { unsupported(OpKind::Ssd); }
void Backend::ssd_step(const SsdStep&) { unsupported(OpKind::Ssd); }
void Backend::gated_rmsnorm_forward(const GatedRmsNormFwd&) { unsupported(OpKind::GatedRmsNorm); }
void Backend::gated_rmsnorm_backward(const GatedRmsNormBwd&) { unsupported(OpKind::GatedRmsNorm); }
void Backend::rope(const RopeArgs&) { unsupported(OpKind::Rope); }
void Backend::attention_forward(const AttentionFwd&) { unsupported(OpKind::Attention); }
void Backend::attention_backward(const AttentionBwd&) { unsupported(OpKind::Attention); }
void Backend::attention_decode(const AttentionDecode&) { unsupported(OpKind::Attention); }
void Backend::moe_router_forward(const MoeRouterFwd&) { unsupported(OpKind::MoeRouter); }
void Backend::moe_router_backward(const MoeRouterBwd&) { unsupported(OpKind::MoeRouter); }
void Backend::moe_routing_plan(const MoeRoutingPlan&) { unsupported(OpKind::MoePermute); }
void Backend::moe_permute_forward(const MoePermuteFwd&) { unsupported(OpKind::MoePermute); }
void Backend::moe_permute_backward(const MoePermuteBwd&) { unsupported(OpKind::MoePermute); }
void Backend::moe_unpermute_forward(const MoeUnpermuteFwd&) { unsupported(OpKind::MoePermute); }
void Backend::moe_unpermute_backward(const MoeUnpermuteBwd&) { unsupported(OpKind::MoePermute); }
void Backend::moe_expert_gemm(const MoeExpertGemm&) { unsupported(OpKind::MoePermute); }
void Backend::cross_entropy_forward(const CrossEntropyFwd&) { unsupported(OpKind::CrossEntropy); }
void Backend::cross_entropy_backward(const CrossEntropyBwd&) { unsupported(OpKind::CrossEntropy); }
void Backend::argmax_rows(const ArgmaxRows&) { unsupported(OpKind::CrossEntropy); }
void Backend::adamw_step(const AdamWStep&) { unsupported(OpKind::AdamW); }
void Backend::sum_squares(const SumSquaresArgs&) { unsupported(OpKind::AdamW); }
void Backend::adamw_steps(const std::vector<AdamWStep>& steps) {
  for (const AdamWStep& a : steps) adamw_step(a);
}

namespace {
std::mutex registry_mutex;
std::vector<Backend*>& registered_backends() {
  static std::vector<Backend*> backends;
  return backends;
}
}  // namespace

void register_backend(Backend* backend) {
  STRATA_CHECK(backend != nullptr, "register_backend: null backend");
  std::lock_guard<std::mutex> lock(registry_mutex);
  auto& backends = registered_backends();
  if (std::find(backends.begin(), backends.end(), backend) == backends.end()) {
    backends.push_back(backend);
  }
}

std::vector<Backend*> available_backends() {
  std::vector<Backend*> result{&cpu_backend()};
  std::lock_guard<std::mutex> lock(registry_mutex);
  for (Backend* backend : registered_backends()) {
    if (backend != &cpu_backend()) result.push_back(backend);
  }
  return result;
}

void require_support(const Backend& backend, OpKind kind, const char* op) {
  STRATA_CHECK(backend.supports(kind), op, ": backend ", backend.name(), " does not support op family ",
               op_kind_name(kind));
}

}  // namespace strata
