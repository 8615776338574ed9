// Model numerics tests: gradient check of whole small models (each layer kind, LatentMoE, MTP)
// against central finite differences of the objective, decode (prefill + constant-size Mamba
// state + KV-cache steps) against a full forward, and multi-token decode chunks (with rewinds)
// against one-token steps bit for bit, the arena's fill modes, and the parameter-memory bookkeeping
// behind the CUDA backend's reusable weight packs. Small dims, fast on 2 cores.
// Run with STRATA_ARENA_POISON=1 as well (CTest model_test_poison): every tensor left to its first
// writer then starts as NaN, and NaN fails every comparison here.
// Not op-level tests (native-ops' op harness covers each op).
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/arena.h"
#include "core/backend.h"
#include "core/parameter_memory.h"
#include "cpu/cpu_backend.h"
#include "ops/gemm.h"
#include "ops/quant.h"
#include "model/config.h"
#include "model/model.h"
#include "model/params.h"
#include "model/precision_hook.h"
#include "model/rng.h"
#include "test_util.h"

using namespace strata;
using namespace strata::model;

namespace {

// The larger difference; NaN once either is NaN (std::max would drop a NaN difference).
double worse(double worst, double difference) { return std::isnan(difference) || difference > worst ? difference : worst; }

// Zero-filled tensors start as zeros; Overwritten ones as NaN under STRATA_ARENA_POISON=1, zeros
// under STRATA_ARENA_ZERO=1. The backend's byte fill covers sizes past its upload chunk.
void arena_fill_modes() {
  Backend& be = cpu_backend();
  std::vector<float> host(70000, 1.0f);
  void* raw = be.allocate(host.size() * sizeof(float));
  be.fill_bytes(raw, host.size() * sizeof(float) - 4, 0xFF);  // all but the last float
  be.download(host.data(), raw, host.size() * sizeof(float));
  be.release(raw);
  bool all_nan = true;
  for (size_t i = 0; i + 1 < host.size(); i++) all_nan = all_nan && std::isnan(host[i]);
  CHECK(all_nan, "fill_bytes 0xFF must make every float NaN");

  Arena arena(be);
  for (int round = 0; round < 3; round++) {
    Tensor zero = arena.tensor("zero", {33, 65});
    Tensor out = arena.tensor("out", {33, 65}, Arena::Fill::Overwritten);
    int64_t nonzero = 0, not_nan = 0, out_nonzero = 0;
    for (int64_t i = 0; i < zero.numel(); i++) {
      nonzero += zero.data[i] != 0.0f;
      not_nan += !std::isnan(out.data[i]);
      out_nonzero += out.data[i] != 0.0f;
    }
    CHECK(nonzero == 0, "round %d: %lld zero-filled elements are not 0", round, static_cast<long long>(nonzero));
    if (Arena::overwritten_mode() == Arena::OverwrittenMode::Poison) {
      CHECK(not_nan == 0, "round %d: %lld poisoned elements are not NaN", round, static_cast<long long>(not_nan));
    } else if (Arena::overwritten_mode() == Arena::OverwrittenMode::Zero) {
      CHECK(out_nonzero == 0, "round %d: %lld zero-mode elements are not 0", round, static_cast<long long>(out_nonzero));
    }
    for (int64_t i = 0; i < out.numel(); i++) out.data[i] = 3.0f;  // garbage for the next round's blocks
    arena.clear();
  }
  CHECK(arena.bytes() == 0 && arena.entries().empty(), "clear() forgets every allocation");
}

// ParameterMemory: covers() only inside one registered allocation; the generation moves on every
// add/remove, on a write overlapping parameter memory and on note_update(), and never on writes
// elsewhere (activations, gradients).
void parameter_memory_generations() {
  ParameterMemory mem;
  std::vector<float> block(128), other(16);
  float* a = block.data();       // a parameter of 64 floats,
  float* b = block.data() + 80;  // then a gap of 16, then one of 32
  const std::size_t a_bytes = 64 * sizeof(float), b_bytes = 32 * sizeof(float);
  mem.add(a, a_bytes);
  mem.add(b, b_bytes);
  uint64_t g = mem.generation();
  CHECK(mem.covers(a, a_bytes) && mem.covers(a + 10, 8 * sizeof(float)) &&
            mem.covers(b + 31, sizeof(float)),
        "registered ranges are covered");
  CHECK(!mem.covers(a + 60, 8 * sizeof(float)) && !mem.covers(other.data(), sizeof(float)),
        "extents past an allocation or outside parameter memory are not covered");
  mem.note_write(other.data(), other.size() * sizeof(float));
  CHECK(mem.generation() == g, "a write outside parameter memory keeps the generation");
  mem.note_write(a + 63, sizeof(float));
  CHECK(mem.generation() > g, "a write into the last element of a parameter changes the generation");
  g = mem.generation();
  mem.note_write(b - 4, 3 * sizeof(float));  // in the gap before b
  CHECK(mem.generation() == g, "a write between parameters keeps the generation");
  mem.note_write(b - 4, 5 * sizeof(float));  // starts in the gap, ends inside b
  CHECK(mem.generation() > g, "a write overlapping the start of a parameter changes the generation");
  g = mem.generation();
  mem.note_update();
  CHECK(mem.generation() > g, "an optimizer step changes the generation");
  g = mem.generation();
  CHECK(mem.remove(a) == a_bytes && mem.generation() > g, "remove returns the size");
  CHECK(mem.remove(a) == 0 && !mem.covers(a, sizeof(float)), "a removed range is forgotten");
  g = mem.generation();
  mem.note_write(a, a_bytes);
  CHECK(mem.generation() == g, "a write into freed parameter memory keeps the generation");
}

// ParamStore tells its backend where every parameter value lives (and only the values: gradients
// are written every step without making weight packs stale).
class ParamNoteBackend final : public Backend {
 public:
  const char* name() const override { return "cpu-notes"; }
  bool supports(OpKind kind) const override { return cpu_backend().supports(kind); }
  bool host_accessible() const override { return true; }
  void* allocate(std::size_t bytes) override { return cpu_backend().allocate(bytes); }
  void release(void* pointer) override { cpu_backend().release(pointer); }
  void fill_zero(void* pointer, std::size_t bytes) override { cpu_backend().fill_zero(pointer, bytes); }
  void upload(void* dst, const void* src, std::size_t bytes) override { cpu_backend().upload(dst, src, bytes); }
  void download(void* dst, const void* src, std::size_t bytes) override { cpu_backend().download(dst, src, bytes); }
  void note_parameter_memory(const void* pointer, std::size_t bytes) override { memory.add(pointer, bytes); }
  ParameterMemory memory;
};

void params_register_their_values() {
  ParamNoteBackend be;
  ParamStore store(be);
  Param& w = store.add("w", {3, 5}, "mlp.fc1", 0);
  Param& bias = store.add("b", {5}, "bias", 0, false);
  CHECK(be.memory.covers(w.value.data, 15 * sizeof(float)) && be.memory.covers(bias.value.data, 5 * sizeof(float)),
        "parameter values are registered");
  CHECK(!be.memory.covers(w.grad.data, sizeof(float)) && !be.memory.covers(bias.grad.data, sizeof(float)),
        "gradients are not parameter memory");
}

Batch random_batch(int64_t B, int64_t T, int vocab, uint64_t seed) {
  Rng rng(seed);
  Batch b;
  b.batch = B;
  b.time = T;
  for (int64_t i = 0; i < B * (T + 1); i++) b.tokens.push_back(static_cast<int32_t>(rng.below(vocab)));
  return b;
}

double objective(Model& m, const Batch& b) {
  Arena acts(m.backend());
  return m.forward(acts, b, true, false).objective;
}

// Compares analytic gradients with central differences on the largest-gradient entries of every
// trainable parameter (plus one random entry), in double-accumulated fp32 losses.
void gradient_check(const std::string& doc_text, const char* name, double h = 3e-3) {
  DocumentConfig doc = read_document_text(doc_text, name);
  Model m(doc.model, cpu_backend(), 7);
  Batch batch = random_batch(2, 9, doc.model.vocab_size, 99);
  m.params().zero_grads();
  {
    Arena acts(m.backend());
    m.forward(acts, batch, true, true);
    m.backward(acts, 1.0f);
  }
  Rng pick(5);
  int checked = 0, bad = 0;
  for (Param* p : m.params().all()) {
    if (!p->trainable) continue;
    const int64_t n = p->numel();
    std::vector<int64_t> order(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; i++) order[static_cast<size_t>(i)] = i;
    std::partial_sort(order.begin(), order.begin() + std::min<int64_t>(2, n), order.end(),
                      [&](int64_t a, int64_t b) { return std::fabs(p->grad.data[a]) > std::fabs(p->grad.data[b]); });
    std::vector<int64_t> idx(order.begin(), order.begin() + std::min<int64_t>(2, n));
    idx.push_back(static_cast<int64_t>(pick.below(static_cast<uint64_t>(n))));
    for (int64_t i : idx) {
      float saved = p->value.data[i];
      p->value.data[i] = saved + static_cast<float>(h);
      double up = objective(m, batch);
      p->value.data[i] = saved - static_cast<float>(h);
      double down = objective(m, batch);
      p->value.data[i] = saved;
      double fd = (up - down) / (2 * h);
      double g = p->grad.data[i];
      double tol = 3e-2 * std::max(std::fabs(fd), std::fabs(g)) + 3e-4;
      checked++;
      if (!(std::fabs(fd - g) <= tol)) {  // NaN never passes
        bad++;
        std::fprintf(stderr, "  %s: %s[%lld] analytic %.6g finite-difference %.6g\n", name, p->name.c_str(),
                     static_cast<long long>(i), g, fd);
      }
    }
  }
  CHECK(bad == 0, "%s: %d of %d gradient entries disagree with finite differences", name, bad, checked);
}

// A training head in row chunks (Model::set_head_chunk_rows; chunks of 5 rows, the last one short)
// gives the same losses and gradients as the whole head: main and MTP heads, loss scale 0.5, every
// parameter's gradient within 1e-5 relative to the largest entry of that parameter (the head's
// weight gradient is summed over chunks in a different order).
void chunked_head_matches_whole(const std::string& doc_text, const char* name) {
  DocumentConfig doc = read_document_text(doc_text, name);
  Batch batch = random_batch(2, 9, doc.model.vocab_size, 99);
  auto run = [&](int64_t chunk_rows, std::vector<std::vector<float>>& grads) {
    Model m(doc.model, cpu_backend(), 7);
    m.set_head_chunk_rows(chunk_rows);
    m.params().zero_grads();
    Arena acts(m.backend());
    const ForwardResult r = m.forward(acts, batch, true, true);
    m.backward(acts, 0.5f);
    CHECK(chunk_rows == 0 ? r.logits.defined() : !r.logits.defined(), "%s: logits kept only by the whole head", name);
    for (Param* p : m.params().all()) grads.emplace_back(p->grad.data, p->grad.data + p->numel());
    return r;
  };
  std::vector<std::vector<float>> whole_grads, chunk_grads;
  const ForwardResult whole = run(0, whole_grads), chunked = run(5, chunk_grads);
  CHECK(std::fabs(whole.objective - chunked.objective) <= 1e-6 * std::fabs(whole.objective), "%s: objective %.9g vs %.9g",
        name, whole.objective, chunked.objective);
  CHECK(whole.mtp_losses.size() == chunked.mtp_losses.size(), "%s: MTP depths differ", name);
  for (size_t k = 0; k < whole.mtp_losses.size(); k++) {
    CHECK(std::fabs(whole.mtp_losses[k] - chunked.mtp_losses[k]) <= 1e-6, "%s: MTP loss %zu %.9g vs %.9g", name, k,
          whole.mtp_losses[k], chunked.mtp_losses[k]);
  }
  int bad = 0;
  for (size_t i = 0; i < whole_grads.size(); i++) {
    float largest = 0;
    for (float g : whole_grads[i]) largest = std::max(largest, std::fabs(g));
    for (size_t j = 0; j < whole_grads[i].size(); j++) {
      const float diff = std::fabs(whole_grads[i][j] - chunk_grads[i][j]);
      if (!(diff <= 1e-5f * largest + 1e-9f)) bad++;  // NaN never passes
    }
  }
  CHECK(bad == 0, "%s: %d gradient entries of the chunked head differ from the whole head's", name, bad);
}

void decode_matches_forward(const std::string& doc_text, const char* name) {
  DocumentConfig doc = read_document_text(doc_text, name);
  Model m(doc.model, cpu_backend(), 11);
  const int64_t B = 2, T = 11, prefill_len = 4;
  Batch batch = random_batch(B, T, doc.model.vocab_size, 3);
  const int64_t V = doc.model.vocab_size;
  std::vector<float> full;
  {
    Arena acts(m.backend());
    ForwardResult r = m.forward(acts, batch, false, false);
    full.assign(r.logits.data, r.logits.data + B * T * V);
  }
  auto state = m.start_decode(B, T);
  std::vector<int32_t> prompt;
  for (int64_t b = 0; b < B; b++) {
    for (int64_t t = 0; t < prefill_len; t++) prompt.push_back(batch.tokens[static_cast<size_t>(b * (T + 1) + t)]);
  }
  double worst = 0;
  {
    Arena scratch(m.backend());
    std::vector<float> logits;
    m.prefill(*state, scratch, prompt, prefill_len, logits, nullptr);
    for (int64_t b = 0; b < B; b++) {
      for (int64_t t = 0; t < prefill_len; t++) {
        for (int64_t v = 0; v < V; v++) {
          worst = worse(worst, std::fabs(logits[(b * prefill_len + t) * V + v] - full[(b * T + t) * V + v]));
        }
      }
    }
  }
  for (int64_t t = prefill_len; t < T; t++) {
    Arena scratch(m.backend());
    std::vector<int32_t> tok;
    for (int64_t b = 0; b < B; b++) tok.push_back(batch.tokens[static_cast<size_t>(b * (T + 1) + t)]);
    std::vector<float> logits;
    m.decode_step(*state, scratch, tok, logits, nullptr);
    for (int64_t b = 0; b < B; b++) {
      for (int64_t v = 0; v < V; v++) worst = worse(worst, std::fabs(logits[b * V + v] - full[(b * T + t) * V + v]));
    }
  }
  std::printf("  %s: max |decode - forward| logit difference %.3g\n", name, worst);
  CHECK(worst < 2e-4, "%s: decode logits differ from the full forward by %g", name, worst);
}

// A multi-token decode chunk gives bit-identical logits and hidden states to one-token steps, and a
// rewound chunk continues exactly like a decode that never saw the dropped tokens.
void chunk_matches_steps(const std::string& doc_text, const char* name) {
  DocumentConfig doc = read_document_text(doc_text, name);
  Model m(doc.model, cpu_backend(), 13);
  const int64_t B = 2, T = 15, prefill_len = 3, V = doc.model.vocab_size;
  const int64_t capacity = T + 4;  // room for the last chunk, which runs past T before its rewind
  Batch batch = random_batch(B, capacity, V, 5);
  auto tokens_at = [&](int64_t t0, int64_t n) {  // B x n, sequence-major
    std::vector<int32_t> out;
    for (int64_t b = 0; b < B; b++) {
      for (int64_t t = t0; t < t0 + n; t++) out.push_back(batch.tokens[static_cast<size_t>(b * (capacity + 1) + t)]);
    }
    return out;
  };
  auto prefilled = [&]() {
    auto state = m.start_decode(B, capacity, 4);
    Arena scratch(m.backend());
    std::vector<float> logits;
    m.prefill(*state, scratch, tokens_at(0, prefill_len), prefill_len, logits, nullptr);
    return state;
  };
  // Reference: one-token steps over positions prefill_len..T-1.
  auto ref_state = prefilled();
  std::vector<std::vector<float>> ref_logits, ref_hidden;  // per position, B rows each
  for (int64_t t = prefill_len; t < T; t++) {
    Arena scratch(m.backend());
    std::vector<float> logits, hidden;
    m.decode_step(*ref_state, scratch, tokens_at(t, 1), logits, &hidden);
    ref_logits.push_back(logits);
    ref_hidden.push_back(hidden);
  }
  const int64_t D = doc.model.d_model;
  int mismatches = 0;
  auto compare = [&](const std::vector<float>& got, int64_t n, int64_t t_in_chunk, int64_t position, int64_t width,
                     const std::vector<std::vector<float>>& ref) {
    for (int64_t b = 0; b < B; b++) {
      for (int64_t v = 0; v < width; v++) {
        const float a = got[static_cast<size_t>((b * n + t_in_chunk) * width + v)];
        const float r = ref[static_cast<size_t>(position - prefill_len)][static_cast<size_t>(b * width + v)];
        if (a != r) mismatches++;
      }
    }
  };
  // Chunks of 4, 1 and 3 tokens, then 4 tokens of which only 1 is kept (rewind) and the rest redone.
  auto state = prefilled();
  int64_t pos = prefill_len;
  for (int64_t n : {4, 1, 3}) {
    Arena scratch(m.backend());
    std::vector<float> logits, hidden;
    m.decode_chunk(*state, scratch, tokens_at(pos, n), n, logits, &hidden);
    m.rewind_decode(*state, n);
    for (int64_t t = 0; t < n; t++) {
      compare(logits, n, t, pos + t, V, ref_logits);
      compare(hidden, n, t, pos + t, D, ref_hidden);
    }
    pos += n;
  }
  {
    Arena scratch(m.backend());
    std::vector<float> logits;
    std::vector<int32_t> wrong = tokens_at(pos, 4);
    for (size_t i = 0; i < wrong.size(); i++) {  // the kept token is right, the three after it are not
      if (i % 4 != 0) wrong[i] = static_cast<int32_t>((wrong[i] + 1) % V);
    }
    m.decode_chunk(*state, scratch, wrong, 4, logits, nullptr);
    compare(logits, 4, 0, pos, V, ref_logits);
    m.rewind_decode(*state, 1);
    pos += 1;
  }
  CHECK(pos + 3 == T, "%s: the test continues %lld steps after the rewind", name, static_cast<long long>(T - pos));
  CHECK(state->position == pos, "%s: position %lld after the rewind, expected %lld", name,
        static_cast<long long>(state->position), static_cast<long long>(pos));
  for (; pos < T; pos++) {
    Arena scratch(m.backend());
    std::vector<float> logits;
    m.decode_step(*state, scratch, tokens_at(pos, 1), logits, nullptr);
    compare(logits, 1, 0, pos, V, ref_logits);
  }
  CHECK(mismatches == 0, "%s: %d values of multi-token chunks differ from one-token steps", name, mismatches);
}

std::string stack(std::initializer_list<const char*> blocks) {
  std::string s = "[";
  for (const char* b : blocks) s += (s.size() > 1 ? "," : "") + std::string(b);
  return s + "]";
}

// The native resolver follows engine/spec/precision.ts: the head stays BF16 under an NVFP4 default
// unless a rule names it alone; MTP takes only `mtp` or criteria-free rules; positions never reach either.
void precision_resolution_matches_spec() {
  using strata::test::tiny_document;
  const std::string policy =
      R"(,"mtp":{"kind":"mtp","depth":1,"blocks":[)" + std::string(strata::test::kAttentionBlock) +
      R"(]},"precision":{"default":"nvfp4","rules":[)"
      R"({"select":{"last_n":1},"format":"mxfp8"},)"
      R"({"select":{"roles":["attention.qkv"]},"format":"fp8_e4m3"},)"
      R"({"select":{"kinds":["attention"],"passes":["dgrad"]},"format":"fp8_e5m2"}]})";
  const auto doc = read_document_text(tiny_document(stack({strata::test::kMambaBlock, strata::test::kAttentionBlock}), 48, 16, policy), "p.json");
  const auto& p = doc.model.precision;
  const int n = doc.model.n_layers();
  CHECK(p.resolve(-1, BlockKind::Mlp, "head", "fprop", n) == "bf16", "head under an nvfp4 default stays bf16");
  CHECK(p.resolve(-1, BlockKind::Mlp, "mtp", "fprop", n) == "nvfp4", "mtp takes the default");
  CHECK(p.resolve(0, BlockKind::Mamba2, "mamba.in_proj", "fprop", n) == "nvfp4", "layer 0 default");
  CHECK(p.resolve(1, BlockKind::Attention, "attention.qkv", "fprop", n) == "fp8_e4m3", "last matching rule wins");
  CHECK(p.resolve(1, BlockKind::Attention, "attention.o", "fprop", n) == "mxfp8", "last_n reaches the last layer");
  CHECK(p.resolve(1, BlockKind::Attention, "attention.o", "dgrad", n) == "fp8_e5m2", "kinds + passes");
  auto named = read_document_text(
      tiny_document(stack({strata::test::kMambaBlock}), 48, 16,
                    R"(,"precision":{"default":"fp32","rules":[{"select":{"roles":["head"]},"format":"fp8_e4m3"}]})"),
      "q.json");
  CHECK(named.model.precision.resolve(-1, BlockKind::Mlp, "head", "wgrad", 1) == "fp8_e4m3", "a rule naming the head applies");
  CHECK(named.model.precision.resolve(-1, BlockKind::Mlp, "mtp", "wgrad", 1) == "fp32", "fp32 default reaches mtp");
}

// The GEMM precision hook's device path (ops/quant_gemm.h) without a GPU: the CPU backend presented
// as a device (host_accessible() false) whose gemm() carries out GemmCall::arithmetic itself (bf16:
// round both inputs; fp8_e4m3: per-tensor e4m3 quantization of both), the way the CUDA backend does.
// One training step under a mixed policy must match the host hook (quantized copies around fp32
// GEMMs) on the CPU: the same objective within 1e-4 relative and every parameter's gradient as close
// (relative L2) as the host hook is to itself under another stochastic-rounding seed, or within 8%
// (the device multiplies emulated formats in bf16: one more rounding, which flips a few quantization
// decisions downstream),
// with native bf16 and fp8_e4m3 arithmetic used, the quantize op run, and MoE experts one gemm() each.
class CpuAsDevice final : public CpuBackend {
 public:
  const char* name() const override { return "cpu-as-device"; }
  bool host_accessible() const override { return false; }
  void fake_quantize(const FakeQuantizeArgs& args) override {
    ++quantize_calls;
    CpuBackend::fake_quantize(args);
  }
  void gemm(const GemmCall& call) override {
    ++arithmetic_calls[static_cast<int>(call.arithmetic)];
    if (call.tag.role && std::string(call.tag.role) == "moe.expert_fc1") ++expert_gemms;
    GemmCall c = call;
    std::vector<float> a, b;
    if (call.arithmetic == GemmArithmetic::Bf16 || call.arithmetic == GemmArithmetic::Fp8E4M3) {
      strata::quant::QuantConfig q;
      q.format = call.arithmetic == GemmArithmetic::Bf16 ? strata::quant::Format::Bf16 : strata::quant::Format::Fp8E4M3;
      auto quantized = [&](const float* src, int64_t rows, int64_t cols, int64_t ld, std::vector<float>& out) {
        out.resize(static_cast<size_t>(rows * cols));
        for (int64_t r = 0; r < rows; ++r) std::copy(src + r * ld, src + r * ld + cols, out.data() + r * cols);
        strata::quant::fake_quantize(out.data(), out.data(), rows, cols, q);
        return out.data();
      };
      const int64_t a_rows = call.trans_a ? call.k : call.m, a_cols = call.trans_a ? call.m : call.k;
      const int64_t b_rows = call.trans_b ? call.n : call.k, b_cols = call.trans_b ? call.k : call.n;
      c.a = quantized(call.a, a_rows, a_cols, call.lda, a), c.lda = a_cols;
      c.b = quantized(call.b, b_rows, b_cols, call.ldb, b), c.ldb = b_cols;
    }
    c.arithmetic = GemmArithmetic::Default;
    CpuBackend::gemm(c);
  }
  int arithmetic_calls[4] = {};
  int quantize_calls = 0, expert_gemms = 0;
};

void precision_policy_on_a_device_backend() {
  namespace t = strata::test;
  const std::string policy =
      R"(,"precision":{"default":"bf16","rules":[)"
      R"({"select":{"layers":{"from":0,"to":0}},"format":"nvfp4"},)"
      R"({"select":{"roles":["moe.expert_fc1","moe.expert_fc2"]},"format":"mxfp8"},)"
      R"({"select":{"kinds":["attention"]},"format":"fp8_e4m3"},)"
      R"({"select":{"kinds":["mlp"]},"format":"fp8_e5m2"}]})";
  const DocumentConfig doc = read_document_text(
      t::tiny_document(stack({t::kMambaBlock, t::kMoeBlock, t::kAttentionBlock, t::kMlpBlock}), 48, 32, policy),
      "device_policy.json");
  const Batch batch = random_batch(2, 16, doc.model.vocab_size, 5);
  auto step = [&](Backend& backend, std::vector<std::vector<float>>& grads, uint64_t seed) {
    PrecisionHook precision(doc.model, seed, backend.host_accessible());
    CHECK(precision.active(), "the policy is active");
    precision.begin_step(0, false);
    Model m(doc.model, backend, 3);
    m.params().zero_grads();
    Arena acts(backend);
    const ForwardResult r = m.forward(acts, batch, true, true);
    m.backward(acts, 1.0f);
    for (Param* p : m.params().all()) grads.emplace_back(p->grad.data, p->grad.data + p->numel());
    return r.objective;
  };
  CpuAsDevice device;
  std::vector<std::vector<float>> host_grads, device_grads, reseeded_grads;
  const double host = step(cpu_backend(), host_grads, 9), on_device = step(device, device_grads, 9);
  step(cpu_backend(), reseeded_grads, 10);  // the recipe's own noise: another stochastic-rounding seed
  CHECK(std::fabs(host - on_device) <= 1e-4 * std::fabs(host), "objective host %.7f vs device %.7f", host, on_device);
  // Per parameter, relative L2 distances. A few quantization decisions flip between the paths (the
  // extra bf16 rounding moves values across e2m1 / e5m2 boundaries and stochastic-rounding
  // thresholds): the device path may differ from the host hook by as much as the host hook differs
  // from itself under another stochastic-rounding seed, or by 8% (a flipped e5m2 element, two mantissa
  // bits, moves by a quarter of its magnitude; the MLP's fp8_e5m2 gradients have no seed to vary), not more.
  auto distance = [](const std::vector<float>& a, const std::vector<float>& b) {
    double diff2 = 0, norm2 = 0;
    for (size_t j = 0; j < a.size(); j++) {
      const double d = static_cast<double>(a[j]) - b[j];
      diff2 += d * d;
      norm2 += static_cast<double>(a[j]) * a[j];
    }
    return norm2 > 0 ? std::sqrt(diff2 / norm2) : std::sqrt(diff2);
  };
  int bad = 0;
  double worst = 0, worst_reseeded = 0;
  for (size_t i = 0; i < host_grads.size(); i++) {
    const double rel = distance(host_grads[i], device_grads[i]), noise = distance(host_grads[i], reseeded_grads[i]);
    worst = std::max(worst, rel);
    worst_reseeded = std::max(worst_reseeded, noise);
    if (!(rel <= std::max(8e-2, noise))) bad++;  // NaN fails
  }
  std::printf("  device path vs host hook: objective %.7f vs %.7f, worst per-parameter relative L2 gradient "
              "distance %.3f (host vs host with another rounding seed: %.3f)\n",
              host, on_device, worst, worst_reseeded);
  CHECK(bad == 0, "%d parameters' gradients differ from the host hook's by more than the recipe's own noise", bad);
  CHECK(device.arithmetic_calls[static_cast<int>(GemmArithmetic::Bf16)] > 0, "bf16 arithmetic used");
  CHECK(device.arithmetic_calls[static_cast<int>(GemmArithmetic::Fp8E4M3)] > 0, "fp8_e4m3 arithmetic used");
  CHECK(device.arithmetic_calls[static_cast<int>(GemmArithmetic::Default)] == 0, "every model GEMM is tagged");
  CHECK(device.quantize_calls > 0, "nvfp4 / mxfp8 / fp8_e5m2 operands quantized by the quantize op");
  CHECK(device.expert_gemms > 1, "mxfp8 experts: one gemm() per expert (%d)", device.expert_gemms);
}

}  // namespace

int main() {
  using strata::test::tiny_document;
  namespace t = strata::test;
  const std::string big_init = R"(,"init_std":0.2)";
  return t::run_tests({
      {"gradcheck_mamba2", [&] { gradient_check(tiny_document(stack({t::kMambaBlock}), 48, 16, big_init), "mamba2"); }},
      {"gradcheck_attention",
       [&] { gradient_check(tiny_document(stack({t::kAttentionBlock}), 48, 16, big_init), "attention"); }},
      {"gradcheck_attention_rope_qknorm",
       [&] { gradient_check(tiny_document(stack({t::kRopeAttentionBlock}), 48, 16, big_init), "attention_rope"); }},
      {"gradcheck_mlp", [&] { gradient_check(tiny_document(stack({t::kMlpBlock}), 48, 16, big_init), "mlp"); }},
      {"gradcheck_moe", [&] { gradient_check(tiny_document(stack({t::kMoeBlock}), 48, 16, big_init), "moe"); }},
      {"gradcheck_latent_moe",
       [&] { gradient_check(tiny_document(stack({t::kLatentMoeBlock}), 48, 16, big_init), "latent_moe"); }},
      {"gradcheck_tied_mtp_shared",
       [&] {
         std::string mtp = std::string(R"(,"init_std":0.2,"tie_embeddings":true,"mtp":{"kind":"mtp","depth":2,"blocks":[)") +
                           t::kAttentionBlock + "," + t::kMlpBlock + "]}";
         gradient_check(tiny_document(stack({t::kMambaBlock}), 48, 16, mtp), "mtp_shared");
       }},
      {"gradcheck_mtp_unshared",
       [&] {
         std::string mtp = std::string(R"(,"init_std":0.2,"mtp":{"kind":"mtp","depth":2,"shared_weights":false,"blocks":[)") +
                           t::kMambaBlock + "]}";
         gradient_check(tiny_document(stack({t::kMlpBlock}), 48, 16, mtp), "mtp_unshared");
       }},
      {"chunked_head_matches_whole_mtp",
       [&] {
         std::string mtp = std::string(R"(,"init_std":0.2,"mtp":{"kind":"mtp","depth":2,"blocks":[)") +
                           t::kMlpBlock + "]}";
         chunked_head_matches_whole(tiny_document(stack({t::kMambaBlock, t::kAttentionBlock}), 48, 16, mtp),
                                    "chunked_head_mtp");
       }},
      {"chunked_head_matches_whole_tied",
       [&] {
         chunked_head_matches_whole(
             tiny_document(stack({t::kMambaBlock, t::kMoeBlock}), 48, 16, R"(,"init_std":0.2,"tie_embeddings":true)"),
             "chunked_head_tied");
       }},
      {"precision_resolution_matches_spec", precision_resolution_matches_spec},
      {"precision_policy_on_a_device_backend", precision_policy_on_a_device_backend},
      {"arena_fill_modes", arena_fill_modes},
      {"parameter_memory_generations", parameter_memory_generations},
      {"params_register_their_values", params_register_their_values},
      {"decode_matches_forward_hybrid",
       [&] {
         decode_matches_forward(
             tiny_document(stack({t::kMambaBlock, t::kAttentionBlock, t::kMoeBlock, t::kRopeAttentionBlock, t::kMlpBlock}),
                           48, 16, R"(,"init_std":0.1)"),
             "hybrid");
       }},
      {"decode_chunk_and_rewind_match_steps",
       [&] {
         chunk_matches_steps(
             tiny_document(stack({t::kMambaBlock, t::kAttentionBlock, t::kMoeBlock, t::kRopeAttentionBlock, t::kMlpBlock}),
                           48, 16, R"(,"init_std":0.1)"),
             "hybrid");
       }},
  });
}
