// Training-loop tests: a tiny hybrid model's loss decreases; an interrupted-then-resumed run
// reproduces the uninterrupted run's losses bit for bit (including NVFP4 stochastic rounding);
// corrupt or truncated checkpoints are refused with messages naming the file; a non-finite loss
// stops the run naming the tensor and keeps the last good checkpoint; a new run starts from given
// weights (init_from) and refuses another design's; resume skips a corrupt newest checkpoint; the
// data position does not wrap (a resume over extended task samples continues with the new ones);
// profile rows (decode totals per step, cache bytes per layer, peak memory); schedules;
// safetensors and JSON round trips. Runs in temporary folders under /tmp. Small dims, fast on 2 cores.
#include <cmath>
#include <cstdio>
#include <string>
#include <unistd.h>
#include <vector>

#include "io/files.h"
#include "io/json.h"
#include "io/safetensors.h"
#include "io/tokens.h"
#include "core/backend.h"
#include "model/config.h"
#include "model/model.h"
#include "train/checkpoint.h"
#include "train/data.h"
#include "train/optimizer.h"
#include "train/profile.h"
#include "train/trainer.h"
#include "test_util.h"

using namespace strata;

namespace {

std::string temp_dir(const std::string& name) {
  std::string d = "/tmp/strata-train-test-" + std::to_string(::getpid()) + "/" + name;
  io::remove_tree(d);
  io::make_dirs(d);
  return d;
}

std::string write_pattern_data(const std::string& dir, int64_t n) {
  io::TokenData d;
  d.vocab = 32;
  d.tokenizer = "byte";
  d.bytes_per_token = 1.0;
  for (int64_t i = 0; i < n; i++) d.tokens.push_back(static_cast<uint32_t>((i * 7 + (i / 13) * 3) % 32));
  std::string path = io::join_path(dir, "pattern.stok");
  io::write_stok(path, d);
  return path;
}

std::string hybrid_doc(const std::string& training, const std::string& extra_model = "") {
  return std::string(R"({"format":"strata","version":2,"model":{"name":"t","vocab_size":32,"d_model":32,"stack":[)") +
         R"({"kind":"mamba2","heads":2,"head_dim":16,"d_state":8,"groups":1,"conv_kernel":4,"chunk":8},)" +
         R"({"kind":"attention","heads":2,"kv_heads":1,"head_dim":16},)" +
         R"({"kind":"moe","experts":4,"top_k":2,"expert_ffn":32,"router":{"type":"sigmoid","expert_bias":true}}])" +
         extra_model + R"(},"pipeline":{"training":)" + training + "}}";
}

struct Captured {
  std::vector<std::string> step_losses;  // exact JSON text of each step's loss
  std::vector<double> losses;
  std::vector<std::string> errors;
  std::vector<std::string> types;  // every event type in order
  std::vector<std::string> logs;   // log messages
};

train::TrainOutcome run(const std::string& doc_text, const std::string& run_dir, const std::string& data, bool resume,
                        Captured& cap, int cancel_after = -1, const std::string& init_from = "") {
  model::DocumentConfig doc = model::read_document_text(doc_text, "test document");
  train::EventSink events(
      [&](const std::string& line) {
        json::Value e = json::parse(line);
        const std::string type = e.at("type").as_string();
        cap.types.push_back(type);
        if (type == "step") {
          cap.step_losses.push_back(e.at("loss").number_text());
          cap.losses.push_back(e.at("loss").as_double());
        } else if (type == "error") {
          cap.errors.push_back(e.at("message").as_string());
        } else if (type == "log") {
          cap.logs.push_back(e.at("message").as_string());
        }
      },
      run_dir);
  train::TrainOptions o;
  o.run_dir = run_dir;
  o.train_data = data;
  o.resume = resume;
  o.init_from = init_from;
  int seen = 0;
  if (cancel_after >= 0) o.should_cancel = [&, cancel_after]() { return seen++ >= cancel_after; };
  return train::train(doc, o, events);
}

void test_loss_decreases() {
  std::string dir = temp_dir("loss");
  std::string data = write_pattern_data(dir, 6000);
  Captured cap;
  auto out = run(hybrid_doc(R"({"steps":40,"batch_size":4,"seq_len":32,"lr":0.01,"warmup_steps":4,"eval_every":0,)"
                            R"("checkpoint_every":0})"),
                 io::join_path(dir, "run"), data, false, cap);
  CHECK(out.steps_done == 40, "steps_done %lld", static_cast<long long>(out.steps_done));
  CHECK(cap.losses.size() == 40, "got %zu step events", cap.losses.size());
  if (cap.losses.size() == 40) {
    double first = 0, last = 0;
    for (int i = 0; i < 5; i++) first += cap.losses[static_cast<size_t>(i)] / 5;
    for (int i = 35; i < 40; i++) last += cap.losses[static_cast<size_t>(i)] / 5;
    std::printf("  loss: first 5 steps %.4f, last 5 steps %.4f\n", first, last);
    CHECK(last < 0.6 * first, "loss did not decrease enough: %.4f -> %.4f", first, last);
  }
  CHECK(io::path_exists(io::join_path(dir, "run/events.jsonl")), "events.jsonl missing");
  CHECK(io::path_exists(io::join_path(dir, "run/document.json")), "document.json missing");
  CHECK(!train::latest_checkpoint(io::join_path(dir, "run")).empty(), "final checkpoint missing");
}

void test_resume_bit_identical() {
  std::string dir = temp_dir("resume");
  std::string data = write_pattern_data(dir, 4000);
  // NVFP4 on the MoE experts exercises stochastic rounding across the resume boundary.
  const std::string extra =
      R"(,"precision":{"default":"bf16","rules":[{"select":{"roles":["moe.expert_fc1","moe.expert_fc2"]},"format":"nvfp4"}]})";
  const std::string training =
      R"({"steps":12,"batch_size":2,"seq_len":24,"grad_accum":2,"lr":0.005,"warmup_steps":3,"eval_every":0,"checkpoint_every":0})";
  Captured full;
  run(hybrid_doc(training, extra), io::join_path(dir, "full"), data, false, full);
  Captured part;
  auto first = run(hybrid_doc(training, extra), io::join_path(dir, "split"), data, false, part, 5);
  CHECK(first.cancelled && first.steps_done == 5, "interrupted run: cancelled=%d steps=%lld", first.cancelled,
        static_cast<long long>(first.steps_done));
  auto second = run(hybrid_doc(training, extra), io::join_path(dir, "split"), data, true, part);
  CHECK(second.steps_done == 12, "resumed run ended at %lld", static_cast<long long>(second.steps_done));
  CHECK(full.step_losses.size() == 12 && part.step_losses.size() == 12, "step counts %zu / %zu", full.step_losses.size(),
        part.step_losses.size());
  for (size_t i = 0; i < std::min(full.step_losses.size(), part.step_losses.size()); i++) {
    CHECK(full.step_losses[i] == part.step_losses[i], "step %zu: uninterrupted loss %s, resumed loss %s", i + 1,
          full.step_losses[i].c_str(), part.step_losses[i].c_str());
  }
}

void expect_refused(const std::string& ckpt, const char* what, const std::string& needle) {
  try {
    train::read_checkpoint_state(ckpt);
    CHECK(false, "%s: corrupt checkpoint was accepted", what);
  } catch (const std::runtime_error& e) {
    std::string msg = e.what();
    CHECK(msg.find(needle) != std::string::npos, "%s: message does not name %s: %s", what, needle.c_str(), msg.c_str());
  }
}

void test_corrupt_checkpoint_refused() {
  std::string dir = temp_dir("corrupt");
  std::string data = write_pattern_data(dir, 3000);
  Captured cap;
  const std::string run_dir = io::join_path(dir, "run");
  run(hybrid_doc(R"({"steps":2,"batch_size":2,"seq_len":16,"eval_every":0,"checkpoint_every":0})"), run_dir, data, false,
      cap);
  const std::string ckpt = train::latest_checkpoint(run_dir);
  CHECK(!ckpt.empty(), "no checkpoint written");
  const std::string model_file = io::join_path(ckpt, "model.safetensors");
  const std::string opt_file = io::join_path(ckpt, "optimizer.safetensors");
  const std::string model_bytes = io::read_file(model_file);
  const std::string opt_bytes = io::read_file(opt_file);

  io::write_file_atomic(model_file, model_bytes.substr(0, model_bytes.size() / 2));
  expect_refused(ckpt, "truncated weights", "model.safetensors");
  try {
    io::parse_safetensors(model_bytes.substr(0, model_bytes.size() - 7), "cut.safetensors");
    CHECK(false, "truncated safetensors parsed");
  } catch (const std::runtime_error& e) {
    CHECK(std::string(e.what()).find("cut.safetensors") != std::string::npos, "message lacks the file: %s", e.what());
  }
  io::write_file_atomic(model_file, model_bytes);

  std::string flipped = opt_bytes;
  flipped[flipped.size() - 3] ^= 0x5A;
  io::write_file_atomic(opt_file, flipped);
  expect_refused(ckpt, "flipped optimizer byte", "optimizer.safetensors");
  // Resuming from that run must fail instead of silently continuing.
  Captured resumed;
  bool threw = false;
  try {
    run(hybrid_doc(R"({"steps":4,"batch_size":2,"seq_len":16,"eval_every":0,"checkpoint_every":0})"), run_dir, data, true,
        resumed);
  } catch (const std::runtime_error&) {
    threw = true;
  }
  CHECK(threw, "resume from a corrupt checkpoint did not fail");
  io::write_file_atomic(opt_file, opt_bytes);
  train::read_checkpoint_state(ckpt);  // restored bytes verify again

  io::write_file_atomic(io::join_path(ckpt, "state.json"), "{\"format\":\"strata-checkpoint\",");
  expect_refused(ckpt, "truncated state.json", "state.json");
}

void test_non_finite_stops_run() {
  std::string dir = temp_dir("nan");
  std::string data = write_pattern_data(dir, 3000);
  Captured cap;
  const std::string run_dir = io::join_path(dir, "run");
  // A learning rate this large blows the weights up within a few steps.
  auto out = run(hybrid_doc(R"({"steps":30,"batch_size":2,"seq_len":16,"lr":1e30,"warmup_steps":0,"grad_clip":0,)"
                            R"("eval_every":0,"checkpoint_every":1})",
                            R"(,"init_std":0.5)"),
                 run_dir, data, false, cap);
  CHECK(out.stopped_non_finite, "run with lr 1e30 did not stop on a non-finite value (steps %lld)",
        static_cast<long long>(out.steps_done));
  CHECK(!cap.errors.empty() && cap.errors[0].find("non-finite") != std::string::npos, "error event: %s",
        cap.errors.empty() ? "(none)" : cap.errors[0].c_str());
  if (out.stopped_non_finite) {
    const std::string ckpt = train::latest_checkpoint(run_dir);
    CHECK(!ckpt.empty(), "no good checkpoint kept");
    if (!ckpt.empty()) {
      auto st = train::read_checkpoint_state(ckpt);
      CHECK(st.step == out.steps_done, "kept checkpoint is at step %lld, last good step %lld",
            static_cast<long long>(st.step), static_cast<long long>(out.steps_done));
    }
  }
}

// A new run started from another run's checkpoint begins with exactly those weights (a run
// cancelled before its first step saves its initial weights as step 0).
void test_init_from_checkpoint() {
  std::string dir = temp_dir("init");
  std::string data = write_pattern_data(dir, 3000);
  const std::string training = R"({"steps":3,"batch_size":2,"seq_len":16,"eval_every":0,"checkpoint_every":0})";
  Captured first;
  auto a = run(hybrid_doc(training), io::join_path(dir, "a"), data, false, first);
  CHECK(!a.last_checkpoint.empty(), "first run wrote no checkpoint");
  const std::string trained = io::read_file(io::join_path(a.last_checkpoint, "model.safetensors"));
  for (const std::string& from : {a.last_checkpoint, io::join_path(a.last_checkpoint, "model.safetensors")}) {
    Captured cap;
    auto b = run(hybrid_doc(training), io::join_path(dir, "b"), data, false, cap, 0, from);
    CHECK(b.cancelled && b.steps_done == 0, "fine-tune run: cancelled=%d steps=%lld", b.cancelled,
          static_cast<long long>(b.steps_done));
    const std::string start = io::read_file(io::join_path(b.last_checkpoint, "model.safetensors"));
    CHECK(start == trained, "init_from %s: the new run does not start from the given weights", from.c_str());
    CHECK(!cap.types.empty() && cap.types.front() == "start", "first event is %s", cap.types.empty() ? "-" : cap.types.front().c_str());
  }
  // Weights of another design are refused naming the tensor.
  Captured wrong;
  try {
    std::string wider = hybrid_doc(training);
    wider.replace(wider.find(R"("d_model":32)"), 12, R"("d_model":48)");
    run(wider, io::join_path(dir, "c"), data, false, wrong, 0, a.last_checkpoint);
    CHECK(false, "weights of a d_model 32 model were loaded into a d_model 48 model");
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    CHECK(msg.find("backbone.embeddings.weight") != std::string::npos && msg.find("[32, 32]") != std::string::npos &&
              msg.find("init from") != std::string::npos,
          "message: %s", msg.c_str());
  }
}

// Resume with a corrupt newest checkpoint continues from the newest valid one and says so; the
// start event comes before any log line.
void test_resume_falls_back_to_valid_checkpoint() {
  std::string dir = temp_dir("fallback");
  std::string data = write_pattern_data(dir, 3000);
  const std::string run_dir = io::join_path(dir, "run");
  Captured first;
  run(hybrid_doc(R"({"steps":4,"batch_size":2,"seq_len":16,"eval_every":0,"checkpoint_every":2})"), run_dir, data,
      false, first);
  const std::string newest = train::latest_checkpoint(run_dir);
  CHECK(newest.find("step_000004") != std::string::npos, "newest checkpoint %s", newest.c_str());
  const std::string weights = io::join_path(newest, "model.safetensors");
  std::string bytes = io::read_file(weights);
  bytes[bytes.size() / 2] ^= 0x11;
  io::write_file_atomic(weights, bytes);
  std::vector<std::string> skipped;
  const std::string valid = train::latest_valid_checkpoint(run_dir, &skipped);
  CHECK(valid.find("step_000002") != std::string::npos && skipped.size() == 1, "valid %s, skipped %zu", valid.c_str(),
        skipped.size());
  Captured resumed;
  auto out = run(hybrid_doc(R"({"steps":5,"batch_size":2,"seq_len":16,"eval_every":0,"checkpoint_every":0})"), run_dir,
                 data, true, resumed);
  CHECK(out.steps_done == 5 && resumed.losses.size() == 3, "resumed run did %zu steps to %lld", resumed.losses.size(),
        static_cast<long long>(out.steps_done));
  CHECK(!resumed.types.empty() && resumed.types.front() == "start", "first event %s",
        resumed.types.empty() ? "-" : resumed.types.front().c_str());
  bool noted = false;
  for (const auto& l : resumed.logs) {
    noted = noted || (l.find("step_000004") != std::string::npos && l.find("corrupt") != std::string::npos);
  }
  CHECK(noted, "no log line names the skipped corrupt checkpoint");
}

// The data position in checkpoints does not wrap: a run that used all samples of a synthetic task
// continues with the samples appended for a longer resume, not with the first ones again.
void test_data_position_continues_into_extended_samples() {
  auto samples = [](int count) {
    io::TokenData d;
    d.vocab = 32;
    d.seq_len = 5;
    for (int s = 0; s < count; s++) {
      for (int t = 0; t < 5; t++) d.tokens.push_back(static_cast<uint32_t>(s));  // sample s is all s
    }
    d.mask.assign(d.tokens.size(), 1);
    return d;
  };
  train::BatchStream first(samples(4), 2, 4, 32);
  first.next();
  first.next();
  CHECK(first.cursor() == 4, "after 4 of 4 samples the data position is %lld", static_cast<long long>(first.cursor()));
  train::BatchStream extended(samples(8), 2, 4, 32);
  extended.seek(first.cursor());
  const model::Batch b = extended.next();
  CHECK(b.tokens[0] == 4 && b.tokens[5] == 5, "resumed batch starts with samples %d and %d, expected 4 and 5",
        b.tokens[0], b.tokens[5]);
  train::BatchStream same(samples(4), 2, 4, 32);
  same.seek(first.cursor());
  CHECK(same.next().tokens[0] == 0, "without new samples the pass wraps to sample 0");
}

// Profile rows: decode totals per step like the layer rows (ms agrees with the rate), decode layer
// rows carry their cache bytes, and totals report peak memory (weights + gradients + state + the
// high-water mark of step allocations).
void test_profile_rows() {
  model::DocumentConfig doc = model::read_document_text(hybrid_doc(R"({"steps":1})"), "profile document");
  model::Model m(doc.model, cpu_backend(), 3);
  std::vector<json::Value> rows;
  train::EventSink events([&](const std::string& line) { rows.push_back(json::parse(line)); }, "");
  train::ProfileRequest req;
  req.modes = {"train", "decode"};
  req.contexts = {16};
  req.batch = 2;
  req.decode_steps = 3;
  train::profile_model(m, req, events, nullptr);
  const double params = 2.0 * static_cast<double>(m.params().count()) * sizeof(float);
  int totals = 0;
  for (const auto& r : rows) {
    const std::string mode = r.at("mode").as_string();
    if (r.at("op").as_string() == "total") {
      totals++;
      const double ms = r.at("ms").as_double(), tps = r.at("tokens_per_s").as_double();
      const double tokens_per_step = mode == "decode" ? 2.0 : 2.0 * 16;
      CHECK(std::fabs(ms - 1000.0 * tokens_per_step / tps) <= 1e-6 * ms, "%s total: %g ms per step, rate %g tok/s",
            mode.c_str(), ms, tps);
      CHECK(r.at("param_bytes").as_double() == params && r.at("activation_peak_bytes").as_double() > 0 &&
                r.at("bytes").as_double() >= params + r.at("activation_peak_bytes").as_double(),
            "%s peak memory: %s", mode.c_str(), json::dump(r).c_str());
      if (mode == "decode") {
        CHECK(r.at("steps").as_int64() == 3 && r.at("state_bytes").as_double() > 0, "decode total %s", json::dump(r).c_str());
      }
    } else if (mode == "decode" && r.at("layer").as_int64() == 0) {
      // Mamba-2 layer 0: conv state (B, K-1, Di + 2GN) + SSM state (B, H, P, N), fp32.
      const double expected = (2.0 * 3 * (32 + 2 * 8) + 2.0 * 2 * 16 * 8) * sizeof(float);
      CHECK(r.at("bytes").as_double() == expected, "decode layer 0 bytes %g, expected %g", r.at("bytes").as_double(), expected);
    }
  }
  CHECK(totals == 2, "%d total rows", totals);
}

void test_schedules() {
  model::TrainConfig t;
  t.lr = 1.0;
  t.min_lr_ratio = 0.1;
  t.warmup_steps = 10;
  t.schedule = model::Schedule::Cosine;
  CHECK(std::fabs(train::learning_rate(t, 0, 110) - 0.1) < 1e-12, "warmup start");
  CHECK(std::fabs(train::learning_rate(t, 9, 110) - 1.0) < 1e-12, "warmup end");
  CHECK(std::fabs(train::learning_rate(t, 60, 110) - 0.55) < 1e-12, "cosine midpoint %g", train::learning_rate(t, 60, 110));
  CHECK(std::fabs(train::learning_rate(t, 110, 110) - 0.1) < 1e-12, "cosine end");
  t.schedule = model::Schedule::Wsd;
  t.decay_fraction = 0.2;
  CHECK(train::learning_rate(t, 50, 100) == 1.0, "wsd stable phase");
  CHECK(std::fabs(train::learning_rate(t, 99, 100) - 0.1) < 1e-12, "wsd end %g", train::learning_rate(t, 99, 100));
  CHECK(std::fabs(train::learning_rate(t, 89, 100) - 0.55) < 1e-12, "wsd middle of decay %g", train::learning_rate(t, 89, 100));
  t.schedule = model::Schedule::Constant;
  CHECK(train::learning_rate(t, 99, 100) == 1.0, "constant");
}

void test_io_round_trips() {
  json::Value v = json::parse(R"({"a":[1,2.5,-3e-7,"x\n\u00e9\ud83d\ude00"],"b":{"c":null,"d":true},"big":18446744073709551615})");
  CHECK(json::dump(v) == R"({"a":[1,2.5,-3e-7,"x\né😀"],"b":{"c":null,"d":true},"big":18446744073709551615})",
        "json round trip: %s", json::dump(v).c_str());
  CHECK(v.at("big").as_uint64() == 18446744073709551615ull, "uint64 precision lost");
  try {
    json::parse("{\n  \"a\": [1, 2,]\n}", "bad.json");
    CHECK(false, "trailing comma accepted");
  } catch (const json::ParseError& e) {
    CHECK(e.line == 2 && std::string(e.what()).find("bad.json:2:") == 0, "position: %s", e.what());
  }
  std::vector<float> values = {1.0f, -2.5f, 3.14159f, 1e-3f, 65504.0f, 0.0f};
  io::SafetensorsFile f;
  f.tensors.push_back(io::tensor_from_floats("w.f32", {2, 3}, values.data()));
  f.tensors.push_back(io::tensor_from_floats("w.bf16", {6}, values.data(), io::DType::BF16));
  f.metadata["k"] = "v";
  io::SafetensorsFile g = io::parse_safetensors(io::serialize_safetensors(f), "mem");
  CHECK(g.get("w.f32", "mem").to_float() == values, "f32 values changed");
  std::vector<float> bf = g.get("w.bf16", "mem").to_float();
  CHECK(bf[0] == 1.0f && bf[1] == -2.5f && std::fabs(bf[2] - 3.140625f) < 1e-6f, "bf16 rounding: %g", bf[2]);
  CHECK(g.metadata["k"] == "v", "metadata lost");
}

}  // namespace

int main() {
  return strata::test::run_tests({
      {"io_round_trips", test_io_round_trips},
      {"schedules", test_schedules},
      {"loss_decreases", test_loss_decreases},
      {"resume_bit_identical", test_resume_bit_identical},
      {"corrupt_checkpoint_refused", test_corrupt_checkpoint_refused},
      {"non_finite_stops_run", test_non_finite_stops_run},
      {"init_from_checkpoint", test_init_from_checkpoint},
      {"profile_rows", test_profile_rows},
      {"data_position_continues_into_extended_samples", test_data_position_continues_into_extended_samples},
      {"resume_falls_back_to_valid_checkpoint", test_resume_falls_back_to_valid_checkpoint},
  });
}
