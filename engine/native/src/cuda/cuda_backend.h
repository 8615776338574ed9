// The CUDA backend: the Backend interface (core/backend.h) on one NVIDIA GPU, with cuBLASLt GEMMs
// (fp32, bf16 with fp32 accumulation, fp8 e4m3 with per-tensor scaling on sm_89+) and hand-written
// kernels for every other op family (cuda/*_cuda.cu, one file per group of families).
// This header is plain C++ (no CUDA types), so hosts, the op harness and the native CLI can include
// it when the engine is built with STRATA_CUDA (the macro STRATA_HAVE_CUDA is then defined).
//
// Memory: the process-wide backend keeps tensors in plain device memory (host_accessible() false):
// ops are queued on one stream without synchronizing, and the host waits only where it reads
// (download(), synchronize(), sum_squares). The model layers move data only through ops, upload()
// and download(). CudaMemoryMode::Managed (CUDA managed memory, host_accessible(), every op waits
// for the GPU) remains for host code that must touch tensors between ops. Both go through a
// caching allocator. Index errors found by validating kernels (token ids, targets, expert ids)
// are raised at the next wait, naming the op that found them. Queued ops can be recorded into a
// CUDA graph and replayed (Backend::begin_recording); scratch buffers a recording may use are
// kept (not freed when they grow) while any recording lives.
//
// When the process has a GPU, the backend registers itself at load time (available_backends()
// then lists "cuda:0" after "cpu"); cuda_backend_if_present() returns the same instance.
// This file is not a multi-GPU scheduler and holds no kernels.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "../core/backend.h"

namespace strata {

// How CudaBackend::gemm multiplies. The engine's tensors are float32; Bf16 and Fp8E4m3 convert the
// operands on the GPU first (fp8: per-tensor amax scaling to the e4m3 range, dequantized by
// cuBLASLt's scale pointers), accumulate in fp32 and write fp32. Fp32 is the exact reference mode
// (no TF32). Fp8E4m3 falls back to Bf16 (with one log line) on GPUs older than sm_89.
enum class CudaGemmMode { Fp32, Bf16, Fp8E4m3 };
const char* cuda_gemm_mode_name(CudaGemmMode mode);
// Parses "fp32" | "bf16" | "fp8"; raises on anything else.
CudaGemmMode parse_cuda_gemm_mode(const std::string& name);

enum class CudaMemoryMode { Managed, Device };

struct CudaBackendOptions {
  int device = 0;
  CudaMemoryMode memory = CudaMemoryMode::Managed;
  // Default: STRATA_CUDA_GEMM environment variable when set, else Fp32.
  CudaGemmMode gemm_mode = CudaGemmMode::Fp32;
};

struct CudaAllocatorStats {
  std::size_t live_bytes = 0;     // handed out and not released
  std::size_t cached_bytes = 0;   // released, kept for reuse
  std::size_t peak_bytes = 0;     // highest live_bytes
  std::size_t device_allocations = 0;  // calls that reached cudaMalloc / cudaMallocManaged
  std::size_t reuses = 0;              // allocations served from the cache
};

struct CudaBackendState;  // CUDA handles, streams, scratch buffers (cuda_backend.cu)

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(const CudaBackendOptions& options);
  ~CudaBackend() override;
  CudaBackend(const CudaBackend&) = delete;
  CudaBackend& operator=(const CudaBackend&) = delete;

  const char* name() const override { return name_.c_str(); }
  bool supports(OpKind kind) const override;
  bool host_accessible() const override;

  void* allocate(std::size_t bytes) override;
  void release(void* pointer) override;
  void fill_zero(void* pointer, std::size_t bytes) override;
  void fill_zero_ranges(const std::vector<std::pair<void*, std::size_t>>& ranges) override;
  void fill_bytes(void* pointer, std::size_t bytes, unsigned char value) override;
  void note_parameter_memory(const void* pointer, std::size_t bytes) override;
  void upload(void* device_destination, const void* host_source, std::size_t bytes) override;
  void download(void* host_destination, const void* device_source, std::size_t bytes) override;
  void synchronize() override;
  void restart_counters() override;
  // CUDA graphs: stream capture (relaxed mode) of everything queued in between; device memory mode only.
  bool begin_recording(std::string* why_not) override;
  std::unique_ptr<OpRecording> end_recording(std::string* why_not) override;

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
  void adamw_steps(const std::vector<AdamWStep>& steps) override;
  void sum_squares(const SumSquaresArgs& args) override;
  void fake_quantize(const FakeQuantizeArgs& args) override;  // quant_cuda.cu

  CudaGemmMode gemm_mode() const { return gemm_mode_; }
  void set_gemm_mode(CudaGemmMode mode) { gemm_mode_ = mode; }
  // The mode a GEMM asking for `requested` really runs in on this GPU (Fp8E4m3 -> Bf16 before sm_89);
  // effective_gemm_mode() is that of the backend's own mode.
  CudaGemmMode supported_gemm_mode(CudaGemmMode requested) const;
  CudaGemmMode effective_gemm_mode() const { return supported_gemm_mode(gemm_mode_); }
  CudaAllocatorStats allocator_stats() const;
  // bf16 GEMM operands taken from the previous GEMM's scratch pack instead of packed again.
  uint64_t gemm_pack_reuses() const;
  // Frees every cached (released) block back to the driver.
  void empty_cache();
  // "NVIDIA H200 (sm_90, 139 GiB)"
  std::string device_description() const;
  int compute_capability() const;  // e.g. 90
  CudaBackendState& state() { return *state_; }

 private:
  // Called at the end of every op: raises on a launch error; waits for the GPU (and raises reported
  // index errors) in managed mode only, so host code may touch the results. `detail` (a tensor name
  // or GEMM role) only names the op's row of the op timing (STRATA_CUDA_OP_TIMES=1).
  void finish_op(const char* op, const char* detail = nullptr);

  std::string name_;
  CudaMemoryMode memory_;
  CudaGemmMode gemm_mode_;
  std::unique_ptr<CudaBackendState> state_;
};

// True when the CUDA runtime finds at least one GPU (never raises).
bool cuda_device_present();
// The process-wide device-memory CUDA backend on device 0, or nullptr without a GPU.
CudaBackend* cuda_backend_if_present();

}  // namespace strata
