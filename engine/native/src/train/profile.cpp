// Layer-by-layer profiling (see profile.h).
#include "profile.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <stdexcept>

#include "model/rng.h"

namespace strata::train {

namespace {

// A Backend front for the arenas a profiled run allocates from: memory calls go to the model's
// backend while live and peak bytes are counted (ops never reach it: tensors run on the model's).
class AllocationMeter final : public Backend {
 public:
  explicit AllocationMeter(Backend& inner) : inner_(inner) {}
  const char* name() const override { return inner_.name(); }
  bool supports(OpKind kind) const override { return inner_.supports(kind); }
  bool host_accessible() const override { return inner_.host_accessible(); }
  void* allocate(std::size_t bytes) override {
    void* p = inner_.allocate(bytes);
    sizes_[p] = bytes;
    live_ += bytes;
    peak_ = std::max(peak_, live_);
    return p;
  }
  void release(void* pointer) override {
    if (auto it = sizes_.find(pointer); it != sizes_.end()) {
      live_ -= it->second;
      sizes_.erase(it);
    }
    inner_.release(pointer);
  }
  void fill_zero(void* pointer, std::size_t bytes) override { inner_.fill_zero(pointer, bytes); }
  void fill_bytes(void* pointer, std::size_t bytes, unsigned char value) override {
    inner_.fill_bytes(pointer, bytes, value);
  }
  void note_parameter_memory(const void* pointer, std::size_t bytes) override {
    inner_.note_parameter_memory(pointer, bytes);
  }
  void upload(void* dst, const void* src, std::size_t bytes) override { inner_.upload(dst, src, bytes); }
  void download(void* dst, const void* src, std::size_t bytes) override { inner_.download(dst, src, bytes); }
  void synchronize() override { inner_.synchronize(); }
  std::size_t peak() const { return peak_; }

 private:
  Backend& inner_;
  std::map<void*, std::size_t> sizes_;
  std::size_t live_ = 0, peak_ = 0;
};

// Per-layer rows of one (mode, context): times and FLOPs per step (a decode row averages its
// steps), and the memory the layer holds: its activations, or for decode its cache.
int64_t emit_rows(const model::Profiler& profiler, const std::string& mode, int context, int batch, double steps,
                  const std::vector<double>& decode_cache_bytes, EventSink& events) {
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
    e.set("fwd_ms", json::Value(r->fwd_ms / steps));
    e.set("bwd_ms", json::Value(r->bwd_ms / steps));
    e.set("flops", json::Value((r->fwd_flops + r->bwd_flops) / steps));
    const bool cache_row = mode == "decode" && r->layer >= 0 && static_cast<size_t>(r->layer) < decode_cache_bytes.size();
    e.set("bytes", json::Value(cache_row ? decode_cache_bytes[static_cast<size_t>(r->layer)] : r->act_bytes));
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

double cache_bytes(const model::MixerCache& c) {
  double bytes = 0;
  for (const Tensor* t : {&c.conv_state, &c.ssm_state, &c.k_cache, &c.v_cache}) {
    if (t->defined()) bytes += static_cast<double>(t->numel()) * sizeof(float);
  }
  return bytes;
}

}  // namespace

int64_t profile_model(model::Model& model, const ProfileRequest& req, EventSink& events,
                      const std::function<bool()>& should_cancel) {
  const int vocab = model.config().vocab_size;
  // Weights and gradients: the parameter store holds both for every parameter.
  const double param_bytes = 2.0 * static_cast<double>(model.params().count()) * sizeof(float);
  int64_t rows = 0;
  for (const std::string& mode : req.modes) {
    if (mode != "train" && mode != "prefill" && mode != "decode") {
      throw std::runtime_error("profile: unknown mode \"" + mode + "\" (train, prefill or decode)");
    }
    for (int context : req.contexts) {
      if (should_cancel && should_cancel()) return rows;
      model::Profiler profiler;
      const int64_t B = req.batch;
      AllocationMeter meter(model.backend());
      double seconds = 0, tokens = 0, state_bytes = 0, steps = 1;
      std::vector<double> layer_cache_bytes;
      try {
        if (mode == "decode") {
          // One unmeasured warm-up step after the prefill, then decode_steps timed steps.
          auto state = model.start_decode(B, context + req.decode_steps + 1);
          {
            Arena scratch(meter);
            std::vector<float> logits;
            model.prefill(*state, scratch, random_tokens(B * context, vocab, 1), context, logits, nullptr);
          }
          {
            Arena warm(meter);
            std::vector<float> logits;
            model.decode_step(*state, warm, random_tokens(B, vocab, 99), logits, nullptr);
          }
          state_bytes = static_cast<double>(state->arena.bytes());
          for (const auto& c : state->caches) layer_cache_bytes.push_back(cache_bytes(c));
          model.set_profiler(&profiler);
          model.backend().synchronize();
          model.backend().restart_counters();
          auto t0 = std::chrono::steady_clock::now();
          for (int s = 0; s < req.decode_steps; s++) {
            Arena scratch(meter);
            std::vector<float> logits;
            model.decode_step(*state, scratch, random_tokens(B, vocab, 100 + s), logits, nullptr);
          }
          model.backend().synchronize();
          seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
          tokens = static_cast<double>(B) * req.decode_steps;
          steps = req.decode_steps;
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
          {
            // One unmeasured warm-up run (page faults, caches, a device's GEMM algorithm choice).
            Arena warm(meter);
            run(warm);
          }
          model.set_profiler(&profiler);
          Arena acts(meter);
          model.backend().synchronize();
          model.backend().restart_counters();
          auto t0 = std::chrono::steady_clock::now();
          run(acts);
          model.backend().synchronize();
          seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
          tokens = static_cast<double>(B) * context;
        }
        rows += emit_rows(profiler, mode, context, req.batch, steps, layer_cache_bytes, events);
      } catch (...) {
        model.set_profiler(nullptr);
        throw;
      }
      model.set_profiler(nullptr);
      const double activation_peak = static_cast<double>(meter.peak());
      json::Value total = events.make("profile");
      total.set("mode", mode);
      total.set("context", json::Value(context));
      total.set("batch", json::Value(req.batch));
      total.set("layer", json::Value(-1));
      total.set("kind", "model");
      total.set("op", "total");
      // Per step like the layer rows: a training/prefill step over the context, or one decode step.
      total.set("ms", json::Value(seconds * 1000.0 / steps));
      total.set("steps", json::Value(static_cast<int64_t>(steps)));
      total.set("tokens_per_s", json::Value(seconds > 0 ? tokens / seconds : 0.0));
      total.set("bytes", json::Value(param_bytes + state_bytes + activation_peak));
      total.set("bytes_meaning", mode == "decode" ? "peak memory (weights+grads, decode state, step scratch)"
                                                  : "peak memory (weights+grads, activations)");
      total.set("param_bytes", json::Value(param_bytes));
      total.set("activation_peak_bytes", json::Value(activation_peak));
      if (mode == "decode") total.set("state_bytes", json::Value(state_bytes));
      events.emit(total);
      rows++;
    }
  }
  return rows;
}

}  // namespace strata::train
