// The Backend interface: where tensors live and which kernels run the ops. One Backend object per
// device kind; the CPU backend always exists (cpu/cpu_backend.h), a CUDA backend comes later behind
// the same interface. Model code never calls a backend method directly: it calls the checked op
// functions in ops/*.h (which validate shapes, then dispatch here), so every backend receives
// arguments that are already known to be consistent.
//
// A backend may decline an op family: supports(kind) returns false and the op function raises a
// clear "backend X does not support op Y" error (the caller can then route that op to the CPU).
// This file is not an op implementation, not a scheduler and not a memory planner.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace strata {

// One entry per op family (forward, backward and decode step of a family share one kind).
enum class OpKind {
  Gemm,
  Elementwise,
  Embedding,
  RmsNorm,
  Activation,
  Conv1d,
  Ssd,
  GatedRmsNorm,
  Rope,
  Attention,
  MoeRouter,
  MoePermute,
  CrossEntropy,
  AdamW,
  Quantize,
};
const char* op_kind_name(OpKind kind);
inline constexpr OpKind kAllOpKinds[] = {
    OpKind::Gemm,      OpKind::Elementwise, OpKind::Embedding,    OpKind::RmsNorm,
    OpKind::Activation, OpKind::Conv1d,     OpKind::Ssd,          OpKind::GatedRmsNorm,
    OpKind::Rope,      OpKind::Attention,   OpKind::MoeRouter,    OpKind::MoePermute,
    OpKind::CrossEntropy, OpKind::AdamW,     OpKind::Quantize,
};

// Argument structs, defined in the op family headers (ops/<family>.h).
struct GemmCall;
struct FakeQuantizeArgs;
struct AddArgs;
struct AxpyArgs;
struct ScaleArgs;
struct StridedCopyArgs;
struct BiasAddArgs;
struct BiasGradArgs;
struct EmbeddingFwd;
struct EmbeddingBwd;
struct RmsNormFwd;
struct RmsNormBwd;
struct ActivationFwd;
struct ActivationBwd;
struct Conv1dFwd;
struct Conv1dBwd;
struct Conv1dStep;
struct SsdFwd;
struct SsdBwd;
struct SsdStep;
struct GatedRmsNormFwd;
struct GatedRmsNormBwd;
struct RopeArgs;
struct AttentionFwd;
struct AttentionBwd;
struct AttentionDecode;
struct MoeRouterFwd;
struct MoeRouterBwd;
struct MoeRoutingPlan;
struct MoePermuteFwd;
struct MoePermuteBwd;
struct MoeUnpermuteFwd;
struct MoeUnpermuteBwd;
struct MoeExpertGemm;
struct CrossEntropyFwd;
struct CrossEntropyBwd;
struct ArgmaxRows;
struct AdamWStep;
struct SumSquaresArgs;

// A replayable recording of queued ops (a CUDA graph): replay() queues the same work again, on the
// same memory, with the same arguments.
class OpRecording {
 public:
  virtual ~OpRecording() = default;
  virtual void replay() = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;

  virtual const char* name() const = 0;  // "cpu", "cuda:0"
  virtual bool supports(OpKind kind) const = 0;
  // True when the backend's memory is directly addressable by host code (CPU).
  virtual bool host_accessible() const = 0;

  // Memory. Allocations are 64-byte aligned; release(nullptr) is a no-op.
  virtual void* allocate(std::size_t bytes) = 0;
  virtual void release(void* pointer) = 0;
  virtual void fill_zero(void* pointer, std::size_t bytes) = 0;
  // fill_zero of every (pointer, bytes) range (a model's gradients). Default: one fill_zero each.
  virtual void fill_zero_ranges(const std::vector<std::pair<void*, std::size_t>>& ranges);
  // Every byte set to `value` (the arena's NaN poison: 0xFF). The default uploads a host pattern.
  virtual void fill_bytes(void* pointer, std::size_t bytes, unsigned char value);
  // The allocation at `pointer` holds parameter values (ParamStore calls it): a backend that caches
  // derived copies of parameters watches writes into it (core/parameter_memory.h). Default: nothing.
  virtual void note_parameter_memory(const void* pointer, std::size_t bytes) {}
  virtual void upload(void* device_destination, const void* host_source, std::size_t bytes) = 0;
  virtual void download(void* host_destination, const void* device_source, std::size_t bytes) = 0;
  virtual void synchronize() {}
  // The work queued from now on is what a profile measures: a backend that keeps its own counters
  // (the CUDA op times) waits for the queued work and restarts them, so warm-up runs (GEMM algorithm
  // choice, allocator growth) stay out of the table. Default: nothing.
  virtual void restart_counters() {}

  // Recording: ops queued between begin_recording() and end_recording() are recorded instead of run
  // (nothing may wait for the backend or allocate outside its caches in between). Either call
  // returns false / nullptr with the reason in *why_not when the backend cannot record (the
  // default) or the recording failed; the backend is then back to running ops as they come.
  virtual bool begin_recording(std::string* why_not);
  virtual std::unique_ptr<OpRecording> end_recording(std::string* why_not);

  // Op entry points. The defaults raise "not supported"; a backend overrides what it implements
  // and reports it through supports(). Arguments are validated by the ops/*.h functions first.
  virtual void gemm(const GemmCall& call);
  virtual void add(const AddArgs& args);
  virtual void axpy(const AxpyArgs& args);
  virtual void scale(const ScaleArgs& args);
  virtual void copy_strided(const StridedCopyArgs& args);
  virtual void bias_add(const BiasAddArgs& args);
  virtual void bias_grad(const BiasGradArgs& args);
  virtual void embedding_forward(const EmbeddingFwd& args);
  virtual void embedding_backward(const EmbeddingBwd& args);
  virtual void rmsnorm_forward(const RmsNormFwd& args);
  virtual void rmsnorm_backward(const RmsNormBwd& args);
  virtual void activation_forward(const ActivationFwd& args);
  virtual void activation_backward(const ActivationBwd& args);
  virtual void conv1d_forward(const Conv1dFwd& args);
  virtual void conv1d_backward(const Conv1dBwd& args);
  virtual void conv1d_step(const Conv1dStep& args);
  virtual void ssd_forward(const SsdFwd& args);
  virtual void ssd_backward(const SsdBwd& args);
  virtual void ssd_step(const SsdStep& args);
  virtual void gated_rmsnorm_forward(const GatedRmsNormFwd& args);
  virtual void gated_rmsnorm_backward(const GatedRmsNormBwd& args);
  virtual void rope(const RopeArgs& args);
  virtual void attention_forward(const AttentionFwd& args);
  virtual void attention_backward(const AttentionBwd& args);
  virtual void attention_decode(const AttentionDecode& args);
  virtual void moe_router_forward(const MoeRouterFwd& args);
  virtual void moe_router_backward(const MoeRouterBwd& args);
  virtual void moe_routing_plan(const MoeRoutingPlan& args);
  virtual void moe_permute_forward(const MoePermuteFwd& args);
  virtual void moe_permute_backward(const MoePermuteBwd& args);
  virtual void moe_unpermute_forward(const MoeUnpermuteFwd& args);
  virtual void moe_unpermute_backward(const MoeUnpermuteBwd& args);
  virtual void moe_expert_gemm(const MoeExpertGemm& args);
  virtual void cross_entropy_forward(const CrossEntropyFwd& args);
  virtual void cross_entropy_backward(const CrossEntropyBwd& args);
  virtual void argmax_rows(const ArgmaxRows& args);
  virtual void adamw_step(const AdamWStep& args);
  // Default: adamw_step of each (see ops/adamw.h).
  virtual void adamw_steps(const std::vector<AdamWStep>& steps);
  virtual void sum_squares(const SumSquaresArgs& args);
  virtual void fake_quantize(const FakeQuantizeArgs& args);

 protected:
  [[noreturn]] void unsupported(OpKind kind) const;
};

// The CPU backend (always present; process-wide instance).
Backend& cpu_backend();

// Every backend usable in this process: CPU first, then any compiled-in and present accelerator.
std::vector<Backend*> available_backends();

// A backend registers itself here (called by a CUDA backend's static initializer or by the host).
void register_backend(Backend* backend);

// Raises "op: backend X does not support <family>" unless backend.supports(kind).
void require_support(const Backend& backend, OpKind kind, const char* op);

}  // namespace strata
