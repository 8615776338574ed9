// JSON-request engine jobs (see jobs.h).
#include "jobs.h"

#include <cmath>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <vector>

#include "checkpoint.h"
#include "core/backend.h"
#include "device.h"
#include "data.h"
#include "evaluate.h"
#include "io/files.h"
#include "io/safetensors.h"
#include "io/tokens.h"
#include "model/config.h"
#include "model/generate.h"
#include "model/model.h"
#include "model/precision_hook.h"
#include "model/tensor_util.h"
#include "profile.h"
#include "trainer.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace strata::train {

namespace {

class Request {
 public:
  Request(const json::Value& v, std::string kind) : v_(v), where_(kind + " request") {
    if (!v.is_object()) throw std::runtime_error(where_ + ": expected a JSON object");
  }
  const json::Value* find(const char* key) const {
    const json::Value* x = v_.find(key);
    return x && !x->is_null() ? x : nullptr;
  }
  std::string str(const char* key, bool required, const std::string& def = "") const {
    const json::Value* x = find(key);
    if (!x) {
      if (required) fail(key, "is required");
      return def;
    }
    if (!x->is_string()) fail(key, "expected a string");
    return x->as_string();
  }
  int64_t integer(const char* key, int64_t def) const {
    const json::Value* x = find(key);
    if (!x) return def;
    try {
      return x->as_int64();
    } catch (const std::exception&) {
      fail(key, "expected an integer");
    }
  }
  double number(const char* key, double def) const {
    const json::Value* x = find(key);
    if (!x) return def;
    if (!x->is_number()) fail(key, "expected a number");
    return x->as_double();
  }
  bool boolean(const char* key, bool def) const {
    const json::Value* x = find(key);
    if (!x) return def;
    if (!x->is_bool()) fail(key, "expected a boolean");
    return x->as_bool();
  }
  model::DocumentConfig document() const {
    const json::Value* d = find("document");
    if (!d) fail("document", "is required");
    return model::read_document(*d, where_ + ".document");
  }
  [[noreturn]] void fail(const char* key, const std::string& what) const {
    throw std::runtime_error(where_ + ": field " + key + ": " + what);
  }

 private:
  const json::Value& v_;
  std::string where_;
};

// The weights a request names in "checkpoint": a checkpoint folder or .safetensors file as given,
// or a run folder, whose newest checkpoint that verifies is used; corrupt newer ones are skipped
// with a warning in `notes` (logged after the start event).
std::string resolve_checkpoint(const std::string& path, std::vector<std::string>& notes) {
  const bool run_folder = !path.empty() && io::path_exists(io::join_path(path, "checkpoints")) &&
                          !io::path_exists(io::join_path(path, "state.json"));
  if (!run_folder) return path;
  std::vector<std::string> skipped;
  std::string ckpt = latest_valid_checkpoint(path, &skipped);
  if (ckpt.empty()) {
    throw std::runtime_error(path + ": the run has no valid checkpoint" + (skipped.empty() ? "" : " (" + skipped.front() + ")"));
  }
  for (const auto& s : skipped) notes.push_back("skipped a corrupt checkpoint: " + s);
  if (!skipped.empty()) notes.push_back("using the newest valid checkpoint " + ckpt);
  return ckpt;
}

std::unique_ptr<model::Model> build_model(const model::DocumentConfig& doc, const std::string& checkpoint,
                                          uint64_t seed) {
  Backend& backend = select_backend(doc.pipeline.training.device, "pipeline.training.device");
  auto m = std::make_unique<model::Model>(doc.model, backend, seed);
  if (!checkpoint.empty()) load_checkpoint(checkpoint, *m, nullptr);
  return m;
}

void emit_start(EventSink& events, json::Value start, const std::vector<std::string>& notes) {
  events.emit(start);
  for (const auto& n : notes) events.log(n, "warning");
}

json::Value job_train(const Request& r, EventSink& events, const CancelFn& cancel) {
  model::DocumentConfig doc = r.document();
  TrainOptions o;
  o.run_dir = r.str("run_dir", true);
  o.train_data = r.str("train_data", true);
  o.heldout_data = r.str("heldout_data", false);
  o.steps = r.integer("steps", 0);
  o.resume = r.boolean("resume", false);
  o.init_from = r.str("init_from", false);
  o.resume_checkpoint = r.str("checkpoint", false);
  if (o.resume && !o.init_from.empty()) r.fail("init_from", "cannot be combined with resume (resume loads its checkpoint)");
  if (!o.resume && !o.resume_checkpoint.empty()) {
    r.fail("checkpoint", "names the checkpoint to resume from; use init_from to start a new run from weights");
  }
  o.should_cancel = cancel;
  return train(doc, o, events).to_json();
}

json::Value job_eval(const Request& r, EventSink& events) {
  model::DocumentConfig doc = r.document();
  apply_thread_setting(doc.pipeline.training.threads);
  std::vector<std::string> notes;
  const std::string checkpoint = resolve_checkpoint(r.str("checkpoint", false), notes);
  auto m = build_model(doc, checkpoint, doc.pipeline.training.seed);
  model::PrecisionHook precision(doc.model, doc.pipeline.training.seed, m->backend().host_accessible());
  int64_t batches = 8;
  for (const auto& e : doc.pipeline.evaluations) if (e.kind == "heldout") batches = e.batches;
  batches = r.integer("batches", batches);
  BatchStream stream(io::read_tokens(r.str("data", true)), doc.pipeline.training.batch_size,
                     doc.pipeline.training.seq_len, doc.model.vocab_size);
  json::Value start = events.make("start");
  start.set("job", "eval");
  start.set("params", json::Value(m->params().count()));
  start.set("backend", m->backend().name());
  if (!checkpoint.empty()) start.set("checkpoint", checkpoint);
  emit_start(events, start, notes);
  EvalResult e = evaluate(*m, stream, batches);
  json::Value ev = events.make("eval");
  json::Value body = e.to_json(true);
  for (const auto& [k, v] : body.members()) ev.set(k, v);
  events.emit(ev);
  return body;
}

json::Value job_generate(const Request& r, EventSink& events, const CancelFn& cancel) {
  model::DocumentConfig doc = r.document();
  apply_thread_setting(doc.pipeline.training.threads);
  std::vector<std::string> notes;
  const std::string checkpoint = resolve_checkpoint(r.str("checkpoint", false), notes);
  auto m = build_model(doc, checkpoint, doc.pipeline.training.seed);
  model::PrecisionHook precision(doc.model, doc.pipeline.training.seed, m->backend().host_accessible());
  model::GenerateOptions o;
  const json::Value* ids = r.find("prompt_ids");
  if (!ids || !ids->is_array()) r.fail("prompt_ids", "expected an array of token ids");
  std::vector<int32_t> prompt;
  for (const auto& v : ids->items()) prompt.push_back(static_cast<int32_t>(v.as_int64()));
  o.max_new_tokens = static_cast<int>(r.integer("max_new_tokens", 64));
  o.temperature = r.number("temperature", 0.0);
  o.top_p = r.number("top_p", 1.0);
  o.seed = static_cast<uint64_t>(r.integer("seed", 0));
  o.stop_id = static_cast<int32_t>(r.integer("stop_id", -1));
  o.speculative = r.boolean("speculative", false);
  o.think_open_id = static_cast<int32_t>(r.integer("think_open_id", -1));
  o.think_close_id = static_cast<int32_t>(r.integer("think_close_id", -1));
  o.think_budget = static_cast<int>(r.integer("think_budget", -1));
  json::Value start = events.make("start");
  start.set("job", "generate");
  start.set("params", json::Value(m->params().count()));
  start.set("backend", m->backend().name());
  start.set("prompt_tokens", json::Value(static_cast<int64_t>(prompt.size())));
  if (!checkpoint.empty()) start.set("checkpoint", checkpoint);
  emit_start(events, start, notes);
  model::GenerateOutput g = model::generate(*m, prompt, o, cancel, nullptr);
  json::Value res = json::Value::object();
  json::Value out_ids = json::Value::array();
  for (int32_t id : g.ids) out_ids.push_back(json::Value(static_cast<int64_t>(id)));
  res.set("ids", out_ids);
  res.set("tokens_per_s", json::Value(g.tokens_per_s));
  res.set("prefill_ms", json::Value(g.prefill_ms));
  res.set("decode_ms", json::Value(g.decode_ms));
  res.set("cancelled", json::Value(g.cancelled));
  if (o.speculative) {
    res.set("drafted", json::Value(g.drafted));
    res.set("accepted", json::Value(g.accepted));
    res.set("acceptance_rate", json::Value(g.drafted > 0 ? double(g.accepted) / double(g.drafted) : 0.0));
  }
  if (g.forced_think_close) res.set("forced_think_close", json::Value(true));
  return res;
}

json::Value job_profile(const Request& r, EventSink& events, const CancelFn& cancel) {
  model::DocumentConfig doc = r.document();
  apply_thread_setting(doc.pipeline.training.threads);
  std::vector<std::string> notes;
  const std::string checkpoint = resolve_checkpoint(r.str("checkpoint", false), notes);
  auto m = build_model(doc, checkpoint, doc.pipeline.training.seed);
  model::PrecisionHook precision(doc.model, doc.pipeline.training.seed, m->backend().host_accessible());
  ProfileRequest p;
  p.modes = doc.pipeline.profiling.modes;
  p.contexts = doc.pipeline.profiling.contexts;
  p.batch = doc.pipeline.profiling.batch;
  if (const json::Value* modes = r.find("modes")) {
    p.modes.clear();
    for (const auto& v : modes->items()) p.modes.push_back(v.as_string());
  }
  if (const json::Value* ctx = r.find("contexts")) {
    p.contexts.clear();
    for (const auto& v : ctx->items()) p.contexts.push_back(static_cast<int>(v.as_int64()));
  }
  p.batch = static_cast<int>(r.integer("batch", p.batch));
  p.decode_steps = static_cast<int>(r.integer("decode_steps", p.decode_steps));
  if (p.batch < 1 || p.decode_steps < 1) r.fail("batch", "batch and decode_steps must be positive");
  json::Value start = events.make("start");
  start.set("job", "profile");
  start.set("params", json::Value(m->params().count()));
  start.set("backend", m->backend().name());
  if (!checkpoint.empty()) start.set("checkpoint", checkpoint);
  emit_start(events, start, notes);
  int64_t rows = profile_model(*m, p, events, cancel);
  json::Value res = json::Value::object();
  res.set("rows", json::Value(rows));
  return res;
}

json::Value job_init(const Request& r) {
  model::DocumentConfig doc = r.document();
  const uint64_t seed = static_cast<uint64_t>(r.integer("seed", static_cast<int64_t>(doc.pipeline.training.seed)));
  model::Model m(doc.model, cpu_backend(), seed);
  const std::string out = r.str("out", true);
  io::SafetensorsFile f = m.params().to_safetensors(false);
  f.metadata["format"] = "pt";
  io::write_safetensors(out, f);
  json::Value res = json::Value::object();
  res.set("params", json::Value(m.params().count()));
  res.set("out", out);
  return res;
}

// What the oracle jobs (grads, logits) start from: the document's model on the CPU with the weights
// file loaded, and the first batch of the data file.
struct OracleInput {
  model::DocumentConfig doc;
  std::unique_ptr<model::Model> model;
  model::Batch batch;
};

OracleInput oracle_input(const Request& r) {
  OracleInput in;
  in.doc = r.document();
  const model::DocumentConfig& doc = in.doc;
  apply_thread_setting(doc.pipeline.training.threads);
  in.model = std::make_unique<model::Model>(doc.model, cpu_backend(), doc.pipeline.training.seed);
  const std::string weights = r.str("weights", true);
  in.model->params().load_safetensors(io::read_safetensors(weights), weights);
  BatchStream stream(io::read_tokens(r.str("data", true)), doc.pipeline.training.batch_size,
                     doc.pipeline.training.seq_len, doc.model.vocab_size);
  in.batch = stream.next();
  return in;
}

// The result fields both oracle jobs report about their batch.
json::Value oracle_result(const model::ForwardResult& fr, const model::Batch& batch, const std::string& out) {
  json::Value res = json::Value::object();
  res.set("loss", json::Value(fr.main_loss));
  res.set("tokens", json::Value(fr.main_tokens));
  res.set("batch", json::Value(batch.batch));
  res.set("seq_len", json::Value(batch.time));
  res.set("out", out);
  return res;
}

json::Value job_grads(const Request& r) {
  OracleInput in = oracle_input(r);
  model::Model& m = *in.model;
  m.params().zero_grads();
  Arena acts(m.backend());
  model::ForwardResult fr = m.forward(acts, in.batch, false, true);
  m.backward(acts, 1.0f);
  const std::string out = r.str("out", true);
  io::SafetensorsFile f = m.params().to_safetensors(true);
  f.metadata["loss"] = json::format_double(fr.main_loss);
  io::write_safetensors(out, f);
  json::Value res = oracle_result(fr, in.batch, out);
  res.set("objective", json::Value(fr.objective));
  return res;
}

json::Value job_logits(const Request& r, EventSink& events) {
  OracleInput in = oracle_input(r);
  const model::DocumentConfig& doc = in.doc;
  const model::Batch& batch = in.batch;
  model::Model& m = *in.model;
  model::PrecisionHook precision(doc.model, doc.pipeline.training.seed, m.backend().host_accessible());
  json::Value start = events.make("start");
  start.set("job", "logits");
  start.set("params", json::Value(m.params().count()));
  start.set("backend", m.backend().name());
  events.emit(start);
  Arena acts(m.backend());
  model::ForwardResult fr = m.forward(acts, batch, false, false);
  const std::vector<float> logits = model::download_values(m.backend(), fr.logits);
  const std::string out = r.str("out", true);
  io::SafetensorsFile f;
  f.tensors.push_back(io::tensor_from_floats("logits", {batch.batch, batch.time, int64_t{doc.model.vocab_size}},
                                             logits.data()));
  f.metadata["loss"] = json::format_double(fr.main_loss);
  io::write_safetensors(out, f);
  json::Value res = oracle_result(fr, batch, out);
  res.set("vocab", json::Value(int64_t{doc.model.vocab_size}));
  return res;
}

}  // namespace

json::Value engine_info() {
  json::Value info = json::Value::object();
  info.set("version", "0.1.0");
  json::Value backends = json::Value::array();
  for (Backend* b : available_backends()) backends.push_back(b->name());
  info.set("backends", backends);
  json::Value jobs = json::Value::array();
  for (const char* j : {"train", "eval", "generate", "profile", "init", "grads", "logits"}) jobs.push_back(j);
  info.set("jobs", jobs);
  json::Value formats = json::Value::array();
  for (const char* f : {"fp32", "bf16", "fp8_e4m3", "fp8_e5m2", "mxfp8", "nvfp4"}) formats.push_back(f);
  info.set("formats", formats);
  info.set("precision_emulated", json::Value(true));
  // What the OpenMP runtime was started with (it read the environment when it was loaded).
  json::Value openmp = json::Value::object();
  const char* wait_policy = std::getenv("OMP_WAIT_POLICY");
  openmp.set("wait_policy", wait_policy ? json::Value(std::string(wait_policy)) : json::Value());
#ifdef _OPENMP
  openmp.set("max_threads", json::Value(static_cast<int64_t>(omp_get_max_threads())));
#else
  openmp.set("max_threads", json::Value(int64_t{1}));
#endif
  info.set("openmp", openmp);
  return info;
}

json::Value run_job(const std::string& kind, const json::Value& request, const EventSink::Callback& callback,
                    const CancelFn& should_cancel) {
  Request r(request, kind);
  const std::string run_dir = (kind == "train" || kind == "eval" || kind == "profile") ? r.str("run_dir", kind == "train") : "";
  EventSink events(callback, run_dir);
  try {
    json::Value result;
    if (kind == "train") {
      result = job_train(r, events, should_cancel);
    } else if (kind == "eval") {
      result = job_eval(r, events);
    } else if (kind == "generate") {
      result = job_generate(r, events, should_cancel);
    } else if (kind == "profile") {
      result = job_profile(r, events, should_cancel);
    } else if (kind == "init") {
      result = job_init(r);
    } else if (kind == "grads") {
      result = job_grads(r);
    } else if (kind == "logits") {
      result = job_logits(r, events);
    } else {
      throw std::runtime_error("unknown job kind \"" + kind + "\" (train, eval, generate, profile, init, grads, logits)");
    }
    if (kind != "train") {  // the trainer emits its own done event (with its result)
      json::Value done = events.make("done");
      const json::Value* cancelled = result.find("cancelled");
      done.set("reason", cancelled && cancelled->is_bool() && cancelled->as_bool() ? "stopped" : "finished");
      done.set("result", result);
      events.emit(done);
    }
    return result;
  } catch (const std::exception& e) {
    events.error(e.what());
    throw;
  }
}

}  // namespace strata::train
