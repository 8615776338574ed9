// Training-step numerics around the AdamW op: learning-rate schedules (warmup then cosine,
// warmup-stable-decay, or constant), global-norm gradient clipping, the AdamW optimizer with
// fp32 master weights and state (the parameters themselves are fp32), and the check that stops
// a run on a non-finite gradient naming the layer and tensor.
// This is not the run loop (trainer.h) and not the kernels (ops/adamw.h).
#pragma once

#include <cstdint>
#include <string>

#include "core/arena.h"
#include "io/safetensors.h"
#include "model/config.h"
#include "model/params.h"

namespace strata::train {

/** Learning rate for optimizer step `step` (0-based) of `total`. */
double learning_rate(const model::TrainConfig& t, int64_t step, int64_t total);

/** sqrt(sum of squares) over every trainable gradient (double accumulation). */
double global_grad_norm(Backend& backend, model::ParamStore& params);

/** The first trainable parameter whose gradient holds NaN/Inf, or nullptr. */
const model::Param* first_non_finite_grad(model::ParamStore& params);

class AdamW {
 public:
  AdamW(model::ParamStore& params, Backend& backend);

  /** One update of every trainable parameter; grads are multiplied by grad_scale (clipping) first. */
  void step(const model::TrainConfig& t, double lr, double grad_scale);

  /** Moments as safetensors ("adam.m.<name>", "adam.v.<name>") plus the step count in metadata. */
  io::SafetensorsFile state() const;
  /** Restores moments and step count; errors name the file and tensor. */
  void load_state(const io::SafetensorsFile& file, const std::string& label);

 private:
  struct Slot {
    model::Param* param;
    Tensor m, v;
  };
  model::ParamStore& params_;
  Backend& backend_;
  Arena arena_;
  std::vector<Slot> slots_;
  int64_t step_ = 0;
};

}  // namespace strata::train
