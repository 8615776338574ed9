// Layer-by-layer profiling of a design on the engine's backend: for each mode (train = forward +
// backward, prefill = forward over the whole context, decode = per-token steps after a prefill of
// the context) and each context length, one "profile" event per layer (layer index, block kind,
// op "block", fwd_ms, bwd_ms and GEMM flops per step, and bytes: the layer's activations, or for
// decode its Mamba state / KV cache) plus a model-level summary row (op "total": ms per step (a
// decode row averages its steps, like the layer rows), tokens_per_s, and bytes = peak memory:
// weights and gradients + decode state + the high-water mark of the run's step allocations,
// with param_bytes, activation_peak_bytes and for decode state_bytes beside it). Each measurement
// follows an unmeasured warm-up run (or decode step).
// Inputs are random token ids (timing does not depend on them). Not the analytic roofline
// (engine/spec/analytics predicts; this measures).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "events.h"
#include "model/model.h"

namespace strata::train {

struct ProfileRequest {
  std::vector<std::string> modes{"train", "prefill", "decode"};
  std::vector<int> contexts{1024};
  int batch = 1;
  int decode_steps = 8;
};

/** Runs the request and emits profile events; returns the number of rows emitted. */
int64_t profile_model(model::Model& model, const ProfileRequest& request, EventSink& events,
                      const std::function<bool()>& should_cancel);

}  // namespace strata::train
