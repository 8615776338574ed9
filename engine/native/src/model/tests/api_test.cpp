// Tests of the public C API (include/strata/engine.h) as the Node binding uses it: engine info,
// train/eval/generate/init jobs with event callbacks, cancellation, error messages; sessions;
// generation features: MTP speculative decoding returns exactly the greedy output and reports an
// acceptance rate, the thinking budget forces </think>, seeded sampling is reproducible; a session
// made from saved weights trains from them.
#include <cstdio>
#include <string>
#include <unistd.h>
#include <vector>

#include "io/files.h"
#include "io/json.h"
#include "io/tokens.h"
#include "strata/engine.h"
#include "test_util.h"

using namespace strata;

namespace {

const char* kDoc =
    R"({"format":"strata","version":2,"model":{"name":"api","vocab_size":40,"d_model":24,"init_std":0.3,"stack":[)"
    R"({"kind":"mamba2","heads":2,"head_dim":12,"d_state":8,"groups":1,"conv_kernel":4,"chunk":8},)"
    R"({"kind":"attention","heads":2,"kv_heads":2,"head_dim":12}],)"
    R"("mtp":{"kind":"mtp","depth":2,"blocks":[{"kind":"mlp","ffn":32}]}},)"
    R"("pipeline":{"training":{"steps":3,"batch_size":2,"seq_len":16,"eval_every":0,"checkpoint_every":0}}})";

struct Events {
  std::vector<std::string> types;
};

void collect(const char* line, void* user) {
  json::Value e = json::parse(line);
  static_cast<Events*>(user)->types.push_back(e.at("type").as_string());
}
int never_cancel(void*) { return 0; }
int always_cancel(void*) { return 1; }

std::string dir_for(const std::string& name) {
  std::string d = "/tmp/strata-api-test-" + std::to_string(::getpid()) + "/" + name;
  io::remove_tree(d);
  io::make_dirs(d);
  return d;
}

std::string data_file(const std::string& dir) {
  io::TokenData d;
  d.vocab = 40;
  for (int i = 0; i < 2000; i++) d.tokens.push_back(static_cast<uint32_t>((i * 5 + i / 7) % 40));
  std::string path = io::join_path(dir, "data.stok");
  io::write_stok(path, d);
  return path;
}

json::Value take_json(char* text) {
  json::Value v = json::parse(text ? text : "null");
  strata_free(text);
  return v;
}

std::vector<int64_t> ids_of(const json::Value& r) {
  std::vector<int64_t> out;
  for (const auto& v : r.at("ids").items()) out.push_back(v.as_int64());
  return out;
}

void test_jobs() {
  json::Value info = take_json(strata_engine_info());
  CHECK(info.at("backends")[0].as_string() == "cpu", "backends: %s", json::dump(info).c_str());

  std::string dir = dir_for("jobs");
  std::string data = data_file(dir);
  json::Value req = json::Value::object();
  req.set("document", json::parse(kDoc));
  req.set("run_dir", io::join_path(dir, "run"));
  req.set("train_data", data);
  Events ev;
  char* result = nullptr;
  char* error = nullptr;
  int rc = strata_run_job("train", json::dump(req).c_str(), collect, never_cancel, &ev, &result, &error);
  CHECK(rc == STRATA_OK, "train rc %d: %s", rc, error ? error : "");
  json::Value r = take_json(result);
  CHECK(r.at("steps_done").as_int64() == 3, "steps_done %s", json::dump(r).c_str());
  int steps = 0;
  for (const auto& t : ev.types) steps += t == "step";
  CHECK(steps == 3 && ev.types.front() == "start" && ev.types.back() == "done", "events: %d steps", steps);

  Events cancelled_events;
  req.set("run_dir", io::join_path(dir, "cancelled"));
  rc = strata_run_job("train", json::dump(req).c_str(), collect, always_cancel, &cancelled_events, &result, &error);
  CHECK(rc == STRATA_CANCELLED, "cancelled train rc %d", rc);
  CHECK(take_json(result).at("steps_done").as_int64() == 0, "cancelled run did steps");

  json::Value eval = json::Value::object();
  eval.set("document", json::parse(kDoc));
  eval.set("data", data);
  eval.set("checkpoint", r.at("checkpoint").as_string());
  eval.set("batches", json::Value(2));
  rc = strata_run_job("eval", json::dump(eval).c_str(), nullptr, nullptr, nullptr, &result, &error);
  CHECK(rc == STRATA_OK, "eval rc %d: %s", rc, error ? error : "");
  json::Value er = take_json(result);
  CHECK(er.at("loss").as_double() > 0 && er.at("nll_by_position").size() == 16, "eval result %s", json::dump(er).c_str());

  rc = strata_run_job("train", R"({"document":{"format":"strata","version":2}})", nullptr, nullptr, nullptr, &result,
                      &error);
  CHECK(rc == STRATA_ERROR && error && std::string(error).find("run_dir") != std::string::npos, "bad request: %s",
        error ? error : "(no message)");
  strata_free(error);
  error = nullptr;
  rc = strata_run_job("init", R"({"document":{"format":"strata","version":2,"model":{"name":"x","vocab_size":8,"d_model":4,)"
                              R"("stack":[{"kind":"mlp","ffn":0}]}},"out":"/tmp/x.safetensors"})",
                      nullptr, nullptr, nullptr, &result, &error);
  CHECK(rc == STRATA_ERROR && error && std::string(error).find("layer 0 (mlp): field ffn") != std::string::npos,
        "bad document: %s", error ? error : "(no message)");
  strata_free(error);
}

void test_session_generation() {
  char* error = nullptr;
  strata_session* s = strata_session_create(kDoc, R"({"seed":5})", &error);
  CHECK(s != nullptr, "session: %s", error ? error : "");
  if (!s) return;
  char* result = nullptr;
  const char* greedy_req = R"({"prompt_ids":[1,2,3,4,5],"max_new_tokens":12})";
  int rc = strata_session_generate(s, greedy_req, nullptr, nullptr, nullptr, &result, &error);
  CHECK(rc == STRATA_OK, "generate: %s", error ? error : "");
  std::vector<int64_t> greedy = ids_of(take_json(result));
  CHECK(greedy.size() == 12, "generated %zu ids", greedy.size());

  rc = strata_session_generate(s, R"({"prompt_ids":[1,2,3,4,5],"max_new_tokens":12,"speculative":true})", nullptr,
                               nullptr, nullptr, &result, &error);
  json::Value spec = take_json(result);
  CHECK(rc == STRATA_OK && ids_of(spec) == greedy, "speculative output differs from greedy");
  const double rate = spec.at("acceptance_rate").as_double();
  std::printf("  MTP speculative: drafted %s accepted %s (rate %.2f, untrained model)\n",
              spec.at("drafted").number_text().c_str(), spec.at("accepted").number_text().c_str(), rate);
  CHECK(spec.at("drafted").as_int64() > 0 && rate >= 0 && rate <= 1, "acceptance %s", json::dump(spec).c_str());

  const char* sampled = R"({"prompt_ids":[1,2,3],"max_new_tokens":10,"temperature":1.0,"top_p":0.9,"seed":42})";
  strata_session_generate(s, sampled, nullptr, nullptr, nullptr, &result, &error);
  std::vector<int64_t> a = ids_of(take_json(result));
  strata_session_generate(s, sampled, nullptr, nullptr, nullptr, &result, &error);
  std::vector<int64_t> b = ids_of(take_json(result));
  CHECK(a == b, "seeded sampling is not reproducible");

  // Prompt ends inside <think> (id 38); after 3 tokens </think> (id 39) must appear.
  rc = strata_session_generate(
      s, R"({"prompt_ids":[1,2,38],"max_new_tokens":8,"think_open_id":38,"think_close_id":39,"think_budget":3})",
      nullptr, nullptr, nullptr, &result, &error);
  std::vector<int64_t> t = ids_of(take_json(result));
  size_t close = 0;
  while (close < t.size() && t[close] != 39) close++;
  CHECK(rc == STRATA_OK && close <= 3, "</think> came at %zu (budget 3)", close);

  const std::string out = "/tmp/strata-api-test-" + std::to_string(::getpid()) + "/session.safetensors";
  CHECK(strata_session_save(s, out.c_str(), &error) == STRATA_OK, "save: %s", error ? error : "");
  CHECK(strata_session_load(s, out.c_str(), &error) == STRATA_OK, "load: %s", error ? error : "");
  CHECK(strata_session_load(s, "/nonexistent/w.safetensors", &error) == STRATA_ERROR && error &&
            std::string(error).find("/nonexistent/w.safetensors") != std::string::npos,
        "missing file message: %s", error ? error : "");
  strata_free(error);
  strata_session_destroy(s);
}

// A session created from saved weights trains from them (not from its seed's initialization): a
// run cancelled before its first step checkpoints exactly the loaded weights.
void test_session_trains_from_its_weights() {
  char* error = nullptr;
  const std::string dir = dir_for("session-train");
  const std::string weights = io::join_path(dir, "w.safetensors");
  strata_session* source = strata_session_create(kDoc, R"({"seed":5})", &error);
  CHECK(source && strata_session_save(source, weights.c_str(), &error) == STRATA_OK, "save: %s", error ? error : "");
  strata_session_destroy(source);
  const std::string options = R"({"seed":9,"checkpoint":")" + weights + R"("})";
  strata_session* s = strata_session_create(kDoc, options.c_str(), &error);
  CHECK(s != nullptr, "session from weights: %s", error ? error : "");
  if (!s) return;
  char* result = nullptr;
  const std::string run = io::join_path(dir, "run");
  int rc = strata_session_train(s, run.c_str(), data_file(dir).c_str(), "", 3, 0, nullptr, always_cancel, nullptr,
                                &result, &error);
  CHECK(rc == STRATA_CANCELLED, "train rc %d: %s", rc, error ? error : "");
  json::Value r = take_json(result);
  CHECK(r.at("steps_done").as_int64() == 0, "steps_done %s", json::dump(r).c_str());
  const std::string saved = io::read_file(io::join_path(r.at("checkpoint").as_string(), "model.safetensors"));
  CHECK(saved == io::read_file(weights), "the run did not start from the session's weights");
  strata_session_destroy(s);
}

}  // namespace

int main() {
  return strata::test::run_tests({
      {"c_api_jobs", test_jobs},
      {"c_api_session_generation", test_session_generation},
      {"c_api_session_trains_from_its_weights", test_session_trains_from_its_weights},
  });
}
