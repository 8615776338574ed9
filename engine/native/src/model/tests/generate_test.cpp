// Tests of MTP self-speculative decoding on a model trained a little (so drafts are accepted):
// the output equals greedy decoding exactly, and seeded sampling, a stop id and a thinking budget
// give the same ids with and without speculation; the acceptance rate is reported and, on this
// periodic data, most drafts are accepted. MTP modules with Mamba-2 and attention blocks (their
// decode caches are rewound past rejected drafts). Not a timing test.
#include <cstdio>
#include <string>
#include <unistd.h>
#include <vector>

#include "core/backend.h"
#include "io/files.h"
#include "io/tokens.h"
#include "model/config.h"
#include "model/generate.h"
#include "model/model.h"
#include "train/checkpoint.h"
#include "train/events.h"
#include "train/trainer.h"
#include "test_util.h"

using namespace strata;

namespace {

std::string document(bool shared) {
  return std::string(R"({"format":"strata","version":2,"model":{"name":"spec","vocab_size":24,"d_model":32,"stack":[)") +
         R"({"kind":"mamba2","heads":2,"head_dim":16,"d_state":8,"groups":1,"conv_kernel":4,"chunk":8},)" +
         R"({"kind":"attention","heads":2,"kv_heads":1,"head_dim":16},{"kind":"mlp","ffn":64}],)" +
         R"("mtp":{"kind":"mtp","depth":3,"shared_weights":)" + (shared ? "true" : "false") + R"(,"blocks":[)" +
         R"({"kind":"mamba2","heads":2,"head_dim":16,"d_state":8,"groups":1,"conv_kernel":4,"chunk":8},)" +
         R"({"kind":"attention","heads":2,"kv_heads":1,"head_dim":16}]}},)" +
         R"("pipeline":{"training":{"steps":150,"batch_size":4,"seq_len":32,"lr":0.01,"warmup_steps":10,)" +
         R"("eval_every":0,"checkpoint_every":0}}})";
}

// A trained model: periodic text whose period varies by segment, so the next tokens are mostly
// predictable and some are not.
model::Model& trained(bool shared) {
  static std::unique_ptr<model::Model> models[2];
  auto& slot = models[shared ? 1 : 0];
  if (slot) return *slot;
  const std::string dir = "/tmp/strata-generate-test-" + std::to_string(::getpid()) + (shared ? "-shared" : "-split");
  io::remove_tree(dir);
  io::make_dirs(dir);
  io::TokenData d;
  d.vocab = 24;
  for (int i = 0; i < 8000; i++) {
    const int period = 5 + (i / 200) % 4;
    d.tokens.push_back(static_cast<uint32_t>(2 + (i % period) * 3 % 20));
  }
  io::write_stok(dir + "/data.stok", d);
  const model::DocumentConfig doc = model::read_document_text(document(shared), "spec document");
  train::EventSink events(nullptr, dir + "/run");
  train::TrainOptions o;
  o.run_dir = dir + "/run";
  o.train_data = dir + "/data.stok";
  train::TrainOutcome out = train::train(doc, o, events);
  slot = std::make_unique<model::Model>(doc.model, cpu_backend(), 1);
  train::load_checkpoint(out.last_checkpoint, *slot, nullptr);
  return *slot;
}

model::GenerateOutput run(model::Model& m, const std::vector<int32_t>& prompt, model::GenerateOptions o, bool speculative) {
  o.speculative = speculative;
  return model::generate(m, prompt, o, nullptr, nullptr);
}

void check_same(model::Model& m, const std::vector<int32_t>& prompt, const model::GenerateOptions& o, const char* what) {
  const model::GenerateOutput plain = run(m, prompt, o, false);
  const model::GenerateOutput spec = run(m, prompt, o, true);
  CHECK(plain.ids == spec.ids, "%s: speculative decoding produced different ids (%zu vs %zu tokens)", what,
        spec.ids.size(), plain.ids.size());
  CHECK(spec.accepted <= spec.drafted, "%s: accepted %lld of %lld drafts", what, static_cast<long long>(spec.accepted),
        static_cast<long long>(spec.drafted));
}

void test_speculative_equals_greedy(bool shared) {
  model::Model& m = trained(shared);
  const std::vector<int32_t> prompt = {2, 5, 8, 11, 14, 2, 5, 8};
  model::GenerateOptions o;
  o.max_new_tokens = 60;
  const model::GenerateOutput plain = run(m, prompt, o, false);
  const model::GenerateOutput spec = run(m, prompt, o, true);
  CHECK(plain.ids == spec.ids, "speculative greedy output differs from greedy");
  const double rate = spec.drafted > 0 ? double(spec.accepted) / double(spec.drafted) : 0.0;
  std::printf("  %s MTP: drafted %lld, accepted %lld (rate %.2f); greedy %.0f tok/s, speculative %.0f tok/s\n",
              shared ? "shared" : "unshared", static_cast<long long>(spec.drafted),
              static_cast<long long>(spec.accepted), rate, plain.tokens_per_s, spec.tokens_per_s);
  CHECK(spec.drafted >= 20 && rate > 0.5, "drafts are rarely accepted on periodic data: %lld of %lld",
        static_cast<long long>(spec.accepted), static_cast<long long>(spec.drafted));

  o.temperature = 0.8;
  o.top_p = 0.95;
  o.seed = 7;
  check_same(m, prompt, o, "sampling");
  o = model::GenerateOptions();
  o.max_new_tokens = 40;
  o.stop_id = plain.ids.size() > 9 ? plain.ids[9] : 2;
  check_same(m, prompt, o, "stop id");
  o = model::GenerateOptions();
  o.max_new_tokens = 30;
  o.think_open_id = 5;
  o.think_close_id = 23;
  o.think_budget = 4;
  check_same(m, prompt, o, "thinking budget");
  o.max_new_tokens = 1;
  check_same(m, {3}, o, "one token from a one-token prompt");
}

}  // namespace

int main() {
  return strata::test::run_tests({
      {"speculative_equals_greedy_shared_mtp", [] { test_speculative_equals_greedy(true); }},
      {"speculative_equals_greedy_unshared_mtp", [] { test_speculative_equals_greedy(false); }},
  });
}
