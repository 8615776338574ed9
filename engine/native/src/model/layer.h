// The interface every layer kind implements (mamba2, attention, moe, mlp: one file each with
// forward and backward side by side), the per-step context they run in, and the profiler that
// records per-layer forward/backward time, GEMM FLOPs and activation bytes.
//
// A mixer computes out = mixer(x) for x = RMSNorm(h) of one residual block (block.h adds the norm
// and the residual). forward() saves what backward() needs inside the mixer object (llm.c style:
// one micro-batch in flight), in tensors allocated from the step's activation arena and named
// "layer.7.mamba2.ssd". Decoding uses a per-mixer cache: prefill runs forward() with a cache to
// fill, step() advances one token. This file is not a graph executor and has no autograd.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "config.h"
#include "core/arena.h"
#include "core/backend.h"
#include "core/tensor.h"
#include "params.h"
#include "rng.h"

namespace strata::model {

/** Per-layer measurements of one run (forward, backward, GEMM FLOPs, activation bytes). */
struct LayerProfile {
  std::string label;  // "layer.7" or "mtp.1.block.0" or "head"
  int layer = -1;
  std::string kind;   // mamba2 | attention | moe | mlp | embedding | head | mtp
  double fwd_ms = 0, bwd_ms = 0;
  double fwd_flops = 0, bwd_flops = 0;
  double act_bytes = 0;
  int64_t calls = 0;
};

/** Collects LayerProfile rows; the GEMM observer attributes FLOPs to the active row. */
class Profiler {
 public:
  Profiler();
  ~Profiler();
  Profiler(const Profiler&) = delete;
  Profiler& operator=(const Profiler&) = delete;

  /** Row for a label, created on first use. */
  LayerProfile& row(const std::string& label, int layer, const std::string& kind);
  void set_active(LayerProfile* row, bool backward) { active_ = row; backward_ = backward; }
  void add_gemm_flops(double flops);
  const std::vector<std::unique_ptr<LayerProfile>>& rows() const { return rows_; }

 private:
  std::vector<std::unique_ptr<LayerProfile>> rows_;
  LayerProfile* active_ = nullptr;
  bool backward_ = false;
};

/**
 * Scoped timer: adds elapsed milliseconds to a target on destruction. With a backend, it waits for
 * the backend's queued work at both ends (a device backend runs ops asynchronously), so the time
 * is the scope's device time; without a target it neither waits nor measures.
 */
class ScopedTimer {
 public:
  explicit ScopedTimer(double* target_ms, Backend* backend = nullptr) : target_(target_ms), backend_(backend) {
    if (target_ && backend_) backend_->synchronize();
    start_ = std::chrono::steady_clock::now();
  }
  ~ScopedTimer() {
    if (!target_) return;
    if (backend_) backend_->synchronize();
    *target_ += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  double* target_;
  Backend* backend_;
  std::chrono::steady_clock::time_point start_;
};

/**
 * Work of a decode step that depends on the absolute position of its first token (RoPE angles, the
 * KV-cache slot, the attended length). A recorded step (CUDA graph) cannot hold the position, so
 * such work runs outside the recording, at every replay, with that replay's position.
 */
using PositionalWork = std::function<void(int64_t position)>;

/** What one forward/backward (or decode step) runs with. */
struct StepContext {
  Backend* backend = nullptr;
  Arena* acts = nullptr;   // activations of this micro-batch / decode step
  int64_t batch = 0;       // B
  int64_t time = 0;        // T (1 for a decode step)
  int64_t position = 0;    // absolute position of the first token (decode)
  bool record_history = false;  // decode step: keep the state before/after each token for rewind()
  float loss_scale = 1.0f; // d(objective)/d(this micro-batch's summed losses), e.g. 1/grad_accum
  bool count_expert_load = false;  // training forward: MoE loads feed the bias update
  // Set while a decode step is being recorded: takes the step's PositionalWork instead of running
  // it. Unset: the mixer runs it at once with ctx.position (run_positional below).
  std::function<void(PositionalWork)> defer_positional;
  void run_positional(const PositionalWork& work) const {
    if (defer_positional) {
      defer_positional(work);
    } else {
      work(position);
    }
  }
};

/** Decode cache of one mixer (conv + SSM state for Mamba-2, KV cache for attention). */
struct MixerCache {
  Tensor conv_state;  // (B, K-1, conv_dim)
  Tensor ssm_state;   // (B, H, P, N)
  Tensor k_cache;     // (B, S, Hkv, P)
  Tensor v_cache;     // (B, S, Hkv, P)
  int64_t capacity = 0;
  // Mamba-2 states around the tokens of the last step run with record_history: slot 0 before the
  // step, slot t+1 after its token t (flat rows of conv_state / ssm_state size).
  Tensor conv_history, ssm_history;  // (history_tokens + 1, numel)
  int64_t history_tokens = 0;        // most tokens one recorded step may take (0: no history)
  int64_t recorded_tokens = -1;      // tokens of the last recorded step (-1: none to rewind)
};

/** Where a mixer sits: main-stack layer index, or an MTP module block (layer -1, mtp role). */
struct LayerPlace {
  int layer = -1;        // main-stack index, -1 inside MTP modules
  bool in_mtp = false;
  std::string prefix;    // parameter prefix: "backbone.layers.3." or "mtp.layers.0.blocks.1."
  std::string label;     // tensor/profile label: "layer.3.mamba2"
  /** The tensor role for GEMM precision: the given role in the main stack, "mtp" inside MTP. */
  const char* role(const char* main_role) const { return in_mtp ? "mtp" : main_role; }
};

class Mixer {
 public:
  virtual ~Mixer() = default;
  virtual BlockKind kind() const = 0;

  /**
   * x: (B*T, D) normalized block input. Returns (B*T, D), allocated in ctx.acts. When `cache`
   * is given (prefill from position 0), also fills the decode cache.
   */
  virtual Tensor forward(StepContext& ctx, const Tensor& x, MixerCache* cache) = 0;
  /** dout: (B*T, D). Returns dx (B*T, D). Accumulates parameter gradients. */
  virtual Tensor backward(StepContext& ctx, const Tensor& dout) = 0;

  /**
   * Allocates an empty decode cache for `batch` sequences of up to `capacity` positions; with
   * history_tokens > 0 also room to rewind a recorded step of up to that many tokens.
   */
  virtual void init_cache(Arena& arena, MixerCache& cache, int64_t batch, int64_t capacity, int64_t history_tokens) {}
  /**
   * ctx.time = n tokens per sequence from ctx.position, rows b*n + t: x (B*n, D) -> (B*n, D), each
   * token computed exactly as a one-token step would (the recurrences run token by token; the
   * projections over all rows at once). Default: forward (position-free mixers).
   */
  virtual Tensor step(StepContext& ctx, const Tensor& x, MixerCache& cache) { return forward(ctx, x, nullptr); }
  /** Puts the cache back to its state after `keep` tokens of the last recorded step (0: before it). */
  virtual void rewind(Backend& backend, MixerCache& cache, int64_t keep) {}

  /** MoE: the auxiliary loss of the last forward (already scaled by its coefficient). */
  virtual double aux_loss() const { return 0; }
  /** MoE: applies the aux-loss-free bias update from the loads accumulated since the last call. */
  virtual void update_expert_bias() {}
};

/** Builds the mixer of a block and registers (and initializes) its parameters. */
std::unique_ptr<Mixer> make_mixer(const BlockConfig& block, const ModelConfig& model, const LayerPlace& place,
                                  ParamStore& params, Rng& init_rng);

// Initialization helpers shared by the layer files.
void init_normal(const Param& p, Rng& rng, double std);
void init_uniform(const Param& p, Rng& rng, double lo, double hi);
void init_constant(const Param& p, float value);
/** Sets a parameter's values from the host (values.size() == numel). */
void init_values(const Param& p, const std::vector<float>& values);

}  // namespace strata::model
