// Tests of the native CLI `strata-engine` as a GPU box uses it, run as a child process from the
// build folder: a template name found with --templates; a complete run folder (run.json with the
// app's fields, document.json, precision.json, events.jsonl, log.txt, checkpoints/); a --json
// stream of contract event types only, the result inside the done event; eval of a run folder
// (no "refusing to resume"); eval and resume falling back from a corrupt newest checkpoint with a
// warning after the start event; train --init-from a run; the OpenMP wait policy default (PASSIVE
// unless set, seen through `info`); the logits job's file. Not a test of the jobs' numerics
// (tests/python/test_hf_oracle.py compares the logits with transformers).
#include <array>
#include <cmath>
#include <cstdio>
#include <set>
#include <string>
#include <unistd.h>
#include <vector>

#include "io/files.h"
#include "io/json.h"
#include "io/safetensors.h"
#include "io/tokens.h"
#include "test_util.h"

using namespace strata;

namespace {

struct Outcome {
  int rc = -1;
  std::vector<json::Value> events;  // parsed stdout lines
  std::string stdout_text, stderr_text;
};

std::string engine_path() {
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  std::string self(buf, n > 0 ? static_cast<size_t>(n) : 0);
  return self.substr(0, self.find_last_of('/')) + "/strata-engine";
}

std::string work_dir() {
  static const std::string d = [] {
    std::string dir = "/tmp/strata-cli-test-" + std::to_string(::getpid());
    io::remove_tree(dir);
    io::make_dirs(dir);
    return dir;
  }();
  return d;
}

// `launcher` goes between the environment and the executable (e.g. "env -u OMP_WAIT_POLICY").
Outcome run_cli(const std::string& args, const std::string& launcher = "") {
  const std::string err = work_dir() + "/stderr.txt";
  const std::string cmd =
      "cd " + work_dir() + " && OMP_NUM_THREADS=1 " + launcher + " " + engine_path() + " " + args + " 2>" + err;
  Outcome o;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return o;
  std::array<char, 4096> buf{};
  while (size_t got = std::fread(buf.data(), 1, buf.size(), p)) o.stdout_text.append(buf.data(), got);
  const int status = ::pclose(p);
  o.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  o.stderr_text = io::path_exists(err) ? io::read_file(err) : "";
  size_t pos = 0;
  while (pos < o.stdout_text.size()) {
    size_t nl = o.stdout_text.find('\n', pos);
    std::string line = o.stdout_text.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    if (!line.empty()) {
      try {
        o.events.push_back(json::parse(line));
      } catch (const std::exception&) {
        o.events.push_back(json::Value("unparsable: " + line));
      }
    }
    if (nl == std::string::npos) break;
    pos = nl + 1;
  }
  return o;
}

// Every stdout line is a contract event; the first is start, the last done (or error).
void check_stream(const Outcome& o, const char* what) {
  static const std::set<std::string> contract = {"start", "step", "eval", "profile", "precision",
                                                 "checkpoint", "log", "done", "error"};
  CHECK(!o.events.empty(), "%s: no events (rc %d, stderr %s)", what, o.rc, o.stderr_text.c_str());
  for (const auto& e : o.events) {
    const bool ok = e.is_object() && e.find("type") && contract.count(e.at("type").as_string()) > 0;
    CHECK(ok, "%s: not a contract event: %s", what, json::dump(e).c_str());
  }
  if (!o.events.empty() && o.events.front().is_object()) {
    CHECK(o.events.front().at("type").as_string() == "start", "%s: first event %s", what,
          json::dump(o.events.front()).c_str());
  }
}

const json::Value* last_of(const Outcome& o, const char* type) {
  const json::Value* found = nullptr;
  for (const auto& e : o.events) {
    if (e.is_object() && e.at("type").as_string() == type) found = &e;
  }
  return found;
}

bool logged(const Outcome& o, const std::vector<std::string>& needles) {
  for (const auto& e : o.events) {
    if (!e.is_object() || e.at("type").as_string() != "log") continue;
    bool all = true;
    for (const auto& n : needles) all = all && e.at("message").as_string().find(n) != std::string::npos;
    if (all) return true;
  }
  return false;
}

void setup_inputs() {
  const std::string dir = work_dir();
  io::make_dirs(dir + "/templates");
  io::write_file_atomic(
      dir + "/templates/tiny-cli.json",
      R"({"format":"strata","version":2,"model":{"name":"Tiny CLI","vocab_size":32,"d_model":16,"stack":[)"
      R"({"kind":"mamba2","heads":2,"head_dim":8,"d_state":8,"groups":1,"conv_kernel":4,"chunk":8},)"
      R"({"kind":"moe","experts":4,"top_k":2,"expert_ffn":16,"latent":8,"shared_experts":1,"shared_ffn":16,)"
      R"("router":{"type":"softmax"}}],)"
      R"("mtp":{"kind":"mtp","depth":1,"blocks":[{"kind":"attention","heads":2,"kv_heads":1,"head_dim":8}]}},)"
      R"("pipeline":{"training":{"steps":2,"batch_size":2,"seq_len":16,"eval_every":0,"checkpoint_every":1}}})");
  io::TokenData d;
  d.vocab = 32;
  for (int i = 0; i < 3000; i++) d.tokens.push_back(static_cast<uint32_t>((i * 5 + i / 11) % 32));
  io::write_stok(dir + "/data.stok", d);
}

void test_train_writes_a_complete_run_folder() {
  Outcome o = run_cli("train tiny-cli --templates templates --data data.stok --run-dir runs/r1 --json");
  CHECK(o.rc == 0, "train rc %d: %s", o.rc, o.stderr_text.c_str());
  check_stream(o, "train");
  const json::Value* done = last_of(o, "done");
  CHECK(done && o.events.back().at("type").as_string() == "done", "train: the last event is not done");
  if (done) {
    CHECK(done->find("result") && done->at("result").at("steps_done").as_int64() == 2, "done: %s", json::dump(*done).c_str());
  }
  const std::string run = work_dir() + "/runs/r1";
  for (const char* f : {"run.json", "document.json", "precision.json", "events.jsonl", "log.txt", "checkpoints"}) {
    CHECK(io::path_exists(run + "/" + f), "run folder lacks %s", f);
  }
  json::Value meta = json::parse(io::read_file(run + "/run.json"));
  CHECK(meta.at("runId").as_string() == "r1" && meta.at("kind").as_string() == "train" &&
            meta.at("name").as_string() == "Tiny CLI" && meta.at("model").as_string() == "Tiny CLI" &&
            meta.at("device").as_string() == "cpu" && meta.at("steps").as_int64() == 2,
        "run.json: %s", json::dump(meta).c_str());
  const std::string created = meta.at("createdAt").as_string();
  CHECK(created.size() == 24 && created[10] == 'T' && created.back() == 'Z', "createdAt %s", created.c_str());
  json::Value table = json::parse(io::read_file(run + "/precision.json"));
  const json::Value& rows = table.at("rows");
  std::vector<std::string> roles;
  for (const auto& r : rows.items()) roles.push_back(r.at("scope").as_string() + ":" + r.at("role").as_string());
  const std::vector<std::string> expected = {
      "global:embedding",     "layer:mamba.in_proj",   "layer:mamba.out_proj",  "layer:moe.router",
      "layer:moe.latent_down", "layer:moe.expert_fc1", "layer:moe.expert_fc2", "layer:moe.latent_up",
      "layer:moe.shared_fc1", "layer:moe.shared_fc2",  "mtp:attention.qkv",     "mtp:attention.o",
      "global:head"};
  CHECK(roles == expected && table.at("layers").as_int64() == 2, "precision.json rows: %s", json::dump(rows).c_str());
  CHECK(rows[0].at("kind").is_null() && rows[0].at("fprop").as_string() == "bf16", "embedding row %s",
        json::dump(rows[0]).c_str());
  CHECK(io::read_file(run + "/log.txt").find("start") != std::string::npos, "log.txt lacks the start line");
}

void test_eval_and_resume_of_a_run_folder() {
  Outcome eval = run_cli("eval runs/r1 --data data.stok --batches 2 --json");
  CHECK(eval.rc == 0, "eval rc %d: %s", eval.rc, eval.stderr_text.c_str());
  check_stream(eval, "eval");
  CHECK(eval.stdout_text.find("refusing") == std::string::npos && eval.stderr_text.find("refusing") == std::string::npos,
        "eval of a run folder speaks of refusing");
  const json::Value* done = last_of(eval, "done");
  CHECK(done && done->at("result").at("loss").as_double() > 0, "eval done: %s", done ? json::dump(*done).c_str() : "-");

  // Corrupt the newest checkpoint: eval and resume use step 1 and say why.
  const std::string weights = work_dir() + "/runs/r1/checkpoints/step_000002/model.safetensors";
  std::string bytes = io::read_file(weights);
  bytes[bytes.size() - 5] ^= 0x21;
  io::write_file_atomic(weights, bytes);
  Outcome fallback = run_cli("eval runs/r1 --data data.stok --batches 2 --run-dir runs/e1 --json");
  CHECK(fallback.rc == 0, "eval after corruption rc %d: %s", fallback.rc, fallback.stderr_text.c_str());
  check_stream(fallback, "eval fallback");
  CHECK(logged(fallback, {"step_000002", "corrupt"}) && logged(fallback, {"step_000001"}),
        "eval did not say it skipped step 2 for step 1: %s", fallback.stdout_text.c_str());
  const json::Value* start = last_of(fallback, "start");
  CHECK(start && start->at("checkpoint").as_string().find("step_000001") != std::string::npos, "eval start: %s",
        start ? json::dump(*start).c_str() : "-");

  for (const char* f : {"run.json", "document.json", "precision.json", "events.jsonl", "log.txt"}) {
    CHECK(io::path_exists(work_dir() + "/runs/e1/" + f), "eval run folder lacks %s", f);
  }
  json::Value eval_meta = json::parse(io::read_file(work_dir() + "/runs/e1/run.json"));
  CHECK(eval_meta.at("kind").as_string() == "eval" && eval_meta.at("parent").as_string() == "r1" &&
            eval_meta.at("steps").is_null(),
        "eval run.json: %s", json::dump(eval_meta).c_str());

  Outcome resumed = run_cli("resume runs/r1 --steps 3 --json");
  CHECK(resumed.rc == 0, "resume rc %d: %s", resumed.rc, resumed.stderr_text.c_str());
  check_stream(resumed, "resume");
  CHECK(logged(resumed, {"step_000002", "corrupt"}), "resume did not name the corrupt checkpoint");
  const json::Value* rdone = last_of(resumed, "done");
  CHECK(rdone && rdone->at("result").at("steps_done").as_int64() == 3, "resume done: %s",
        rdone ? json::dump(*rdone).c_str() : "-");
  CHECK(json::parse(io::read_file(work_dir() + "/runs/r1/run.json")).at("steps").as_int64() == 3,
        "run.json steps not raised to 3");
}

void test_train_init_from_and_errors() {
  Outcome o = run_cli("train tiny-cli --templates templates --data data.stok --run-dir runs/r2 --init-from runs/r1 --json");
  CHECK(o.rc == 0, "train --init-from rc %d: %s", o.rc, o.stderr_text.c_str());
  check_stream(o, "train --init-from");
  const json::Value* start = last_of(o, "start");
  CHECK(start && start->find("init_from") && start->at("init_from").as_string().find("runs/r1/checkpoints/step_") == 0,
        "start: %s", start ? json::dump(*start).c_str() : "-");
  Outcome missing = run_cli("train no-such-template --templates templates --data data.stok");
  CHECK(missing.rc == 1 && missing.stderr_text.find("no template no-such-template.json") != std::string::npos,
        "missing template: rc %d, %s", missing.rc, missing.stderr_text.c_str());
}

void test_openmp_wait_policy_default() {
  const auto policy = [](const Outcome& o) -> std::string {
    try {
      const json::Value info = json::parse(o.stdout_text);
      const json::Value& p = info.at("openmp").at("wait_policy");
      return p.is_string() ? p.as_string() : "null";
    } catch (const std::exception& e) {
      return std::string("unparsable info: ") + e.what();
    }
  };
  Outcome unset = run_cli("info", "env -u OMP_WAIT_POLICY");
  CHECK(unset.rc == 0 && policy(unset) == "PASSIVE", "info without OMP_WAIT_POLICY: rc %d, policy %s", unset.rc,
        policy(unset).c_str());
  Outcome chosen = run_cli("info", "env OMP_WAIT_POLICY=active");
  CHECK(chosen.rc == 0 && policy(chosen) == "active", "info with OMP_WAIT_POLICY=active: policy %s",
        policy(chosen).c_str());
  CHECK(run_cli("--help").stdout_text.find("OMP_WAIT_POLICY") != std::string::npos, "--help does not mention OMP_WAIT_POLICY");
}

void test_logits_job_writes_the_logits() {
  Outcome init = run_cli("init tiny-cli --templates templates --out w.safetensors --json");
  CHECK(init.rc == 0, "init rc %d: %s", init.rc, init.stderr_text.c_str());
  Outcome o = run_cli("logits tiny-cli --templates templates --weights w.safetensors --data data.stok --out l.safetensors --json");
  CHECK(o.rc == 0, "logits rc %d: %s", o.rc, o.stderr_text.c_str());
  check_stream(o, "logits");
  const json::Value* done = last_of(o, "done");
  CHECK(done && done->at("result").at("vocab").as_int64() == 32 && done->at("result").at("loss").as_double() > 0,
        "logits done: %s", done ? json::dump(*done).c_str() : "-");
  if (o.rc != 0) return;
  const io::SafetensorsFile f = io::read_safetensors(work_dir() + "/l.safetensors");
  CHECK(f.tensors.size() == 1 && f.tensors[0].name == "logits" && f.tensors[0].shape == std::vector<int64_t>({2, 16, 32}),
        "logits file: %zu tensors", f.tensors.size());
  if (f.tensors.empty()) return;
  const std::vector<float> v = f.tensors[0].to_float();
  bool finite = v.size() == 2 * 16 * 32;
  for (float x : v) finite = finite && std::isfinite(x);
  CHECK(finite, "logits are not %d finite values", 2 * 16 * 32);
  Outcome bad = run_cli("logits tiny-cli --templates templates --weights w.safetensors --data data.stok --out l2.safetensors --backend cuda");
  CHECK(bad.rc == 2, "logits --backend: rc %d (usage error expected)", bad.rc);
}

}  // namespace

int main() {
  setup_inputs();
  return strata::test::run_tests({
      {"train_writes_a_complete_run_folder", test_train_writes_a_complete_run_folder},
      {"eval_and_resume_of_a_run_folder", test_eval_and_resume_of_a_run_folder},
      {"train_init_from_and_errors", test_train_init_from_and_errors},
      {"openmp_wait_policy_default", test_openmp_wait_policy_default},
      {"logits_job_writes_the_logits", test_logits_job_writes_the_logits},
  });
}
