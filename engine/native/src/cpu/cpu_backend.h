// The CPU backend: host memory (64-byte aligned) and the CPU kernels of every op family, which are
// the numerics reference the CUDA backend is tested against. Kernels are defined one file per op
// family (cpu/<family>_cpu.cpp); they are multi-threaded with OpenMP where that pays off.
// This header is for backend implementers and tests; model code uses ops/*.h and cpu_backend().
#pragma once

#include <string>
#include <vector>

#include "../core/backend.h"

namespace strata {

class CpuBackend : public Backend {  // not final: tests run it as a device (model_test)
 public:
  const char* name() const override { return "cpu"; }
  bool supports(OpKind) const override { return true; }
  bool host_accessible() const override { return true; }

  void* allocate(std::size_t bytes) override;
  void release(void* pointer) override;
  void fill_zero(void* pointer, std::size_t bytes) override;
  void upload(void* device_destination, const void* host_source, std::size_t bytes) override;
  void download(void* host_destination, const void* device_source, std::size_t bytes) override;

  void gemm(const GemmCall& call) override;
  void add(const AddArgs& args) override;
  void axpy(const AxpyArgs& args) override;
  void scale(const ScaleArgs& args) override;
  void copy_strided(const StridedCopyArgs& args) override;
  void bias_add(const BiasAddArgs& args) override;
  void bias_grad(const BiasGradArgs& args) override;
  void embedding_forward(const EmbeddingFwd& args) override;
  void embedding_backward(const EmbeddingBwd& args) override;
  void rmsnorm_forward(const RmsNormFwd& args) override;
  void rmsnorm_backward(const RmsNormBwd& args) override;
  void activation_forward(const ActivationFwd& args) override;
  void activation_backward(const ActivationBwd& args) override;
  void conv1d_forward(const Conv1dFwd& args) override;
  void conv1d_backward(const Conv1dBwd& args) override;
  void conv1d_step(const Conv1dStep& args) override;
  void ssd_forward(const SsdFwd& args) override;
  void ssd_backward(const SsdBwd& args) override;
  void ssd_step(const SsdStep& args) override;
  void gated_rmsnorm_forward(const GatedRmsNormFwd& args) override;
  void gated_rmsnorm_backward(const GatedRmsNormBwd& args) override;
  void rope(const RopeArgs& args) override;
  void attention_forward(const AttentionFwd& args) override;
  void attention_backward(const AttentionBwd& args) override;
  void attention_decode(const AttentionDecode& args) override;
  void moe_router_forward(const MoeRouterFwd& args) override;
  void moe_router_backward(const MoeRouterBwd& args) override;
  void moe_routing_plan(const MoeRoutingPlan& args) override;
  void moe_permute_forward(const MoePermuteFwd& args) override;
  void moe_permute_backward(const MoePermuteBwd& args) override;
  void moe_unpermute_forward(const MoeUnpermuteFwd& args) override;
  void moe_unpermute_backward(const MoeUnpermuteBwd& args) override;
  void moe_expert_gemm(const MoeExpertGemm& args) override;
  void cross_entropy_forward(const CrossEntropyFwd& args) override;
  void cross_entropy_backward(const CrossEntropyBwd& args) override;
  void argmax_rows(const ArgmaxRows& args) override;
  void adamw_step(const AdamWStep& args) override;
  void sum_squares(const SumSquaresArgs& args) override;
  void fake_quantize(const FakeQuantizeArgs& args) override;
};

// GEMM micro-kernels: "avx512", "avx2-fma", "scalar". The best supported one is active unless
// the environment variable STRATA_GEMM_KERNEL or set_cpu_gemm_kernel() picks another.
const char* cpu_gemm_kernel_name();
std::vector<std::string> cpu_gemm_kernels();  // supported on this CPU, best first
void set_cpu_gemm_kernel(const std::string& name);  // raises when not supported

}  // namespace strata
