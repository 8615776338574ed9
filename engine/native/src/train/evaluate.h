// Evaluation of a model on held-out token data: mean loss, perplexity, bits per byte (from the
// data's bytes_per_token, 1 for byte-tokenized text), NLL by position, and masked accuracy for
// synthetic tasks (argmax equals the target on every counted position). Forward only, main head.
// This is not the training loop and does not write files (callers emit the result as an event).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "data.h"
#include "io/json.h"
#include "model/model.h"

namespace strata::train {

struct EvalResult {
  double loss = 0;
  double ppl = 0;
  std::optional<double> bpb;
  std::optional<double> accuracy;  // only for masked (task) data
  int64_t tokens = 0;
  int64_t batches = 0;
  std::vector<double> nll_by_position;  // mean NLL at each position t of the window

  /** Fields of the eval event / result JSON (loss, ppl, bpb, accuracy, tokens, nll_by_position). */
  json::Value to_json(bool with_positions) const;
};

/** Evaluates up to `batches` batches from the start of `stream` (its cursor is reset first). */
EvalResult evaluate(model::Model& model, BatchStream& stream, int64_t batches);

}  // namespace strata::train
