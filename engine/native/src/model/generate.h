// Text generation for one sequence: prefill the prompt, then decode step by step with the
// constant-size Mamba state and the attention KV cache; greedy, temperature and top-p (nucleus)
// sampling; optional MTP self-speculative decoding (the MTP heads draft `depth` tokens from the
// main model's hidden states with their own decode caches, the main model scores the decided token
// and all drafts in one multi-token pass from its decode state, the agreeing prefix is kept and the
// state rewound past the rest; the acceptance rate is reported and the output is exactly what the
// main model alone would produce, sampling included); and a thinking budget (after N tokens inside
// a <think> span, </think> is forced).
// This is not batched serving and not a tokenizer (ids in, ids out).
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "model.h"
#include "rng.h"

namespace strata::model {

struct GenerateOptions {
  int max_new_tokens = 64;
  double temperature = 0;  // <= 0: greedy
  double top_p = 1.0;
  uint64_t seed = 0;
  int32_t stop_id = -1;     // stop after emitting this id (-1: none)
  bool speculative = false; // MTP drafting + verification (needs model.mtp)
  int32_t think_open_id = -1, think_close_id = -1;
  int think_budget = -1;    // -1: unlimited
};

struct GenerateOutput {
  std::vector<int32_t> ids;  // generated ids (prompt excluded)
  double prefill_ms = 0, decode_ms = 0;
  double tokens_per_s = 0;   // decode throughput
  int64_t drafted = 0, accepted = 0;  // speculative decoding counters (verified drafts)
  bool cancelled = false;
  bool forced_think_close = false;
};

/** Picks the next id from logits (V values) with the options' sampling rule. */
int32_t sample_token(const float* logits, int64_t vocab, const GenerateOptions& options, Rng& rng);

GenerateOutput generate(Model& model, const std::vector<int32_t>& prompt, const GenerateOptions& options,
                        const std::function<bool()>& should_cancel, const std::function<void(int32_t)>& on_token);

}  // namespace strata::model
