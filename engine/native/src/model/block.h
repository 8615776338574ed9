// One residual block: h + mixer(RMSNorm(h)) (HF NemotronHBlock), forward/backward and decode
// step, with per-block timing and activation-byte accounting in the profiler.
// Parameters: {prefix}norm.weight [D] plus the mixer's. Not the mixer math (one file per kind).
#pragma once

#include <memory>

#include "layer.h"

namespace strata::model {

class Block {
 public:
  Block(const BlockConfig& config, const ModelConfig& model, const LayerPlace& place, ParamStore& params, Rng& rng);

  /** h (B*T, D) -> h + mixer(norm(h)); fills `cache` when given (prefill). */
  Tensor forward(StepContext& ctx, const Tensor& h, MixerCache* cache, Profiler* profiler);
  /** dh (B*T, D) of the block output -> gradient of the block input, summed in place in dh's memory
   *  (the returned tensor is dh renamed): dh must not be read by the caller afterwards. */
  Tensor backward(StepContext& ctx, const Tensor& dh, Profiler* profiler);
  /** One decode token per sequence: h (B, D). */
  Tensor step(StepContext& ctx, const Tensor& h, MixerCache& cache);

  Mixer& mixer() { return *mixer_; }
  const LayerPlace& place() const { return place_; }
  BlockKind kind() const { return kind_; }

 private:
  BlockKind kind_;
  LayerPlace place_;
  float eps_;
  Param* norm_ = nullptr;
  std::unique_ptr<Mixer> mixer_;
  Tensor h_, xn_, rstd_;
};

}  // namespace strata::model
