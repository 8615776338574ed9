// Layer-by-layer profiling (see profile.h).
#include "profile.h"

#include <chrono>
#include <stdexcept>

#include "model/rng.h"

namespace strata::train {

namespace {

int64_t emit_rows(const model::Profiler& profiler, const std::string& mode, int context, int batch, double calls_divisor,
                  EventSink& events) {
  int64_t n = 0;
  for (const auto& r : profiler.rows()) {
    json::Value e = events.make("profile");
    e.set("mode", mode);
    e.set("context", json::Value(context));
    e.set("batch", json::Value(batch));
    e.set("layer", json::Value(r->layer));
    e.set("kind", r->kind);
    e.set("label", r->label);
    e.set("op", "block");
    e.set("fwd_ms", json::Value(r->fwd_ms / calls_divisor));
    e.set("bwd_ms", json::Value(r->bwd_ms / calls_divisor));
    e.set("flops", json::Value((r->fwd_flops + r->bwd_flops) / calls_divisor));
    e.set("bytes", json::Value(r->act_bytes));
    events.emit(e);
    n++;
  }
  return n;
}

std::vector<int32_t> random_tokens(int64_t n, int vocab, uint64_t seed) {
  model::Rng rng(seed, 0);
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (auto& x : t) x = static_cast<int32_t>(rng.below(static_cast<uint64_t>(vocab)));
  return t;
}

}  // namespace

int64_t profile_model(model::Model& model, const ProfileRequest& req, EventSink& events,
                      const std::function<bool()>& should_cancel) {
  const int vocab = model.config().vocab_size;
  int64_t rows = 0;
  for (const std::string& mode : req.modes) {
    if (mode != "train" && mode != "prefill" && mode != "decode") {
      throw std::runtime_error("profile: unknown mode \"" + mode + "\" (train, prefill or decode)");
    }
    for (int context : req.contexts) {
      if (should_cancel && should_cancel()) return rows;
      model::Profiler profiler;
      model.set_profiler(&profiler);
      const int64_t B = req.batch;
      double seconds = 0, tokens = 0, state_bytes = 0;
      try {
        if (mode == "decode") {
          auto state = model.start_decode(B, context + req.decode_steps);
          {
            model::Profiler* saved = model.profiler();
            model.set_profiler(nullptr);  // the prefill is not what decode rows measure
            Arena scratch(model.backend());
            std::vector<float> logits;
            model.prefill(*state, scratch, random_tokens(B * context, vocab, 1), context, logits, nullptr);
            model.set_profiler(saved);
          }
          state_bytes = static_cast<double>(state->arena.bytes());
          model.backend().synchronize();
          auto t0 = std::chrono::steady_clock::now();
          for (int s = 0; s < req.decode_steps; s++) {
            Arena scratch(model.backend());
            std::vector<float> logits;
            model.decode_step(*state, scratch, random_tokens(B, vocab, 100 + s), logits, nullptr);
          }
          model.backend().synchronize();
          seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
          tokens = static_cast<double>(B) * req.decode_steps;
          rows += emit_rows(profiler, mode, context, req.batch, req.decode_steps, events);
        } else {
          model::Batch batch;
          batch.batch = B;
          batch.time = context;
          batch.tokens = random_tokens(B * (context + 1), vocab, 2);
          auto run = [&](Arena& acts) {
            model.forward(acts, batch, mode == "train", mode == "train");
            if (mode == "train") {
              model.params().zero_grads();
              model.backward(acts, 1.0f);
            }
          };
          if (!model.backend().host_accessible()) {
            // A device backend's first run picks GEMM algorithms and fills its allocator cache:
            // one unmeasured warm-up run, outside the profiler.
            model.set_profiler(nullptr);
            Arena warm(model.backend());
            run(warm);
            model.set_profiler(&profiler);
          }
          Arena acts(model.backend());
          model.backend().synchronize();
          auto t0 = std::chrono::steady_clock::now();
          run(acts);
          model.backend().synchronize();
          seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
          tokens = static_cast<double>(B) * context;
          state_bytes = static_cast<double>(acts.bytes());
          rows += emit_rows(profiler, mode, context, req.batch, 1.0, events);
        }
      } catch (...) {
        model.set_profiler(nullptr);
        throw;
      }
      model.set_profiler(nullptr);
      json::Value total = events.make("profile");
      total.set("mode", mode);
      total.set("context", json::Value(context));
      total.set("batch", json::Value(req.batch));
      total.set("layer", json::Value(-1));
      total.set("kind", "model");
      total.set("op", "total");
      total.set("ms", json::Value(seconds * 1000.0));
      total.set("tokens_per_s", json::Value(seconds > 0 ? tokens / seconds : 0.0));
      total.set("bytes", json::Value(state_bytes));
      total.set("bytes_meaning", mode == "decode" ? "decode state (Mamba conv+SSM state, KV cache)" : "activations");
      events.emit(total);
      rows++;
    }
  }
  return rows;
}

}  // namespace strata::train
