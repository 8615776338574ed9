// Generation loop with sampling, MTP self-speculative decoding (drafts verified in one main-model
// pass per round) and a thinking budget (see generate.h). Greedy steps without drafting pick on
// the device (Model::decode_greedy: recorded as a CUDA graph where the backend can).
#include "generate.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <stdexcept>

namespace strata::model {

int32_t sample_token(const float* logits, int64_t vocab, const GenerateOptions& o, Rng& rng) {
  if (o.temperature <= 0) return static_cast<int32_t>(std::max_element(logits, logits + vocab) - logits);
  const double maxv = *std::max_element(logits, logits + vocab);
  std::vector<std::pair<double, int32_t>> probs(static_cast<size_t>(vocab));
  double total = 0;
  for (int64_t v = 0; v < vocab; v++) {
    double p = std::exp((logits[v] - maxv) / o.temperature);
    probs[static_cast<size_t>(v)] = {p, static_cast<int32_t>(v)};
    total += p;
  }
  std::sort(probs.begin(), probs.end(), [](const auto& a, const auto& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  });
  // Nucleus: the smallest prefix whose probability reaches top_p.
  double kept = 0;
  size_t n = 0;
  const double top_p = o.top_p > 0 && o.top_p < 1 ? o.top_p : 1.0;
  while (n < probs.size()) {
    kept += probs[n].first / total;
    n++;
    if (kept >= top_p) break;
  }
  double r = rng.uniform() * kept * total;
  for (size_t i = 0; i < n; i++) {
    r -= probs[i].first;
    if (r <= 0) return probs[i].second;
  }
  return probs[n - 1].second;
}

GenerateOutput generate(Model& model, const std::vector<int32_t>& prompt, const GenerateOptions& o,
                        const std::function<bool()>& should_cancel, const std::function<void(int32_t)>& on_token) {
  if (prompt.empty()) throw std::runtime_error("generate: the prompt is empty (give at least one token id)");
  if (o.speculative && !model.has_mtp()) throw std::runtime_error("generate: speculative decoding needs model.mtp");
  const int64_t V = model.config().vocab_size, D = model.config().d_model;
  const int64_t T = static_cast<int64_t>(prompt.size());
  const int64_t depth = o.speculative ? model.config().mtp.depth : 0;
  GenerateOutput out;
  Rng rng(o.seed, 0);
  const int64_t capacity = T + o.max_new_tokens + depth + 1;
  auto state = model.start_decode(1, capacity, depth + 1);
  std::unique_ptr<MtpDecodeState> drafting = o.speculative ? model.start_mtp_decode(capacity) : nullptr;
  std::vector<float> logits, hidden, chunk_hidden;
  auto t0 = std::chrono::steady_clock::now();
  {
    Arena scratch(model.backend());
    model.prefill(*state, scratch, prompt, T, logits, o.speculative ? &hidden : nullptr);
  }
  out.prefill_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  t0 = std::chrono::steady_clock::now();

  std::vector<int32_t> seq = prompt;
  // A prompt that ends inside a <think> span (e.g. a chat template that opens it) starts the budget.
  bool in_think = false;
  int think_spent = 0;
  for (int32_t id : prompt) {
    if (id == o.think_open_id) in_think = true;
    else if (id == o.think_close_id) in_think = false;
  }
  // The thinking budget overrides the sampled id.
  auto within_budget = [&](int32_t id) {
    if (in_think && o.think_budget >= 0 && think_spent >= o.think_budget && o.think_close_id >= 0) {
      if (id != o.think_close_id) out.forced_think_close = true;
      id = o.think_close_id;
    }
    return id;
  };
  auto choose = [&](const float* row) { return within_budget(sample_token(row, V, o, rng)); };
  // Appends a decided token; true when generation ends with it (stop id, length or cancellation).
  auto emit = [&](int32_t id) {
    out.ids.push_back(id);
    seq.push_back(id);
    if (on_token) on_token(id);
    if (id == o.think_open_id) {
      in_think = true;
      think_spent = 0;
    } else if (id == o.think_close_id) {
      in_think = false;
    } else if (in_think) {
      think_spent++;
    }
    if (id == o.stop_id || static_cast<int>(out.ids.size()) >= o.max_new_tokens) return true;
    if (should_cancel && should_cancel()) {
      out.cancelled = true;
      return true;
    }
    return false;
  };

  int32_t next = choose(logits.data() + (T - 1) * V);
  bool finished = emit(next);
  while (!finished) {
    if (!o.speculative && o.temperature <= 0) {
      // Greedy: the argmax runs where the logits are; only the chosen id comes back.
      next = within_budget(model.decode_greedy(*state, {next})[0]);
      finished = emit(next);
      continue;
    }
    if (!o.speculative) {
      Arena scratch(model.backend());
      model.decode_step(*state, scratch, {next}, logits, nullptr);
      next = choose(logits.data());
      finished = emit(next);
      continue;
    }
    // Speculative: the MTP heads draft, then one pass of the main model over [next, drafts...]
    // scores every position; each token is chosen from the main model's logits in order (exactly
    // what one-token steps would choose), drafts are kept while they agree, and the decode state is
    // rewound to the tokens kept.
    Arena scratch(model.backend());
    std::vector<int32_t> chunk = {next};
    for (int32_t d : model.mtp_draft(*drafting, scratch, seq, hidden)) chunk.push_back(d);
    const int64_t n = static_cast<int64_t>(chunk.size());
    model.decode_chunk(*state, scratch, chunk, n, logits, &chunk_hidden);
    int64_t keep = n;
    for (int64_t i = 0; i < n; i++) {
      const int32_t id = choose(logits.data() + i * V);
      const bool draft_agrees = i + 1 < n && id == chunk[static_cast<size_t>(i + 1)];
      if (i + 1 < n) out.drafted++;
      if (draft_agrees) out.accepted++;
      finished = emit(id);
      if (!draft_agrees || finished) {
        next = id;
        keep = i + 1;
        break;
      }
    }
    model.rewind_decode(*state, keep);
    hidden.insert(hidden.end(), chunk_hidden.begin(), chunk_hidden.begin() + keep * D);
  }
  out.decode_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  out.tokens_per_s = out.decode_ms > 0 ? 1000.0 * static_cast<double>(out.ids.size()) / out.decode_ms : 0.0;
  return out;
}

}  // namespace strata::model
