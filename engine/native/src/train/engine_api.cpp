// Implementation of the public C interface (include/strata/engine.h) over the C++ jobs, trainer,
// evaluation, generation and profiling. Converts exceptions to STRATA_ERROR with a message; never
// lets a C++ exception cross the C boundary. Not the Node binding.
#include "strata/engine.h"

#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>

#include "checkpoint.h"
#include "core/backend.h"
#include "device.h"
#include "data.h"
#include "evaluate.h"
#include "io/safetensors.h"
#include "io/tokens.h"
#include "jobs.h"
#include "model/generate.h"
#include "model/model.h"
#include "model/precision_hook.h"
#include "profile.h"
#include "trainer.h"

struct strata_session {
  strata::model::DocumentConfig doc;
  uint64_t seed = 0;
  std::unique_ptr<strata::model::Model> model;
};

namespace {

using strata::json::Value;

char* dup_string(const std::string& s) {
  char* out = static_cast<char*>(std::malloc(s.size() + 1));
  if (out) std::memcpy(out, s.c_str(), s.size() + 1);
  return out;
}

void set_out(char** out, const std::string& s) {
  if (out) *out = dup_string(s);
}

strata::train::EventSink::Callback callback_of(strata_event_fn fn, void* user) {
  if (!fn) return nullptr;
  return [fn, user](const std::string& line) { fn(line.c_str(), user); };
}

strata::train::CancelFn cancel_of(strata_cancel_fn fn, void* user) {
  if (!fn) return nullptr;
  return [fn, user]() { return fn(user) != 0; };
}

template <typename Body>
int guarded(char** error_out, Body&& body) {
  try {
    return body();
  } catch (const std::exception& e) {
    set_out(error_out, e.what());
  } catch (...) {
    set_out(error_out, "unknown native error");
  }
  return STRATA_ERROR;
}

Value parse_request(const char* text, const char* label) {
  if (!text) throw std::runtime_error(std::string(label) + ": missing JSON");
  try {
    return strata::json::parse(text, label);
  } catch (const strata::json::ParseError& e) {
    throw std::runtime_error(e.what());
  }
}

}  // namespace

extern "C" {

char* strata_engine_info(void) { return dup_string(strata::json::dump(strata::train::engine_info())); }

void strata_free(char* text) { std::free(text); }

int strata_run_job(const char* kind, const char* request_json, strata_event_fn on_event, strata_cancel_fn should_cancel,
                   void* user, char** result_json, char** error_out) {
  return guarded(error_out, [&] {
    Value request = parse_request(request_json, "request");
    bool cancelled = false;
    auto cancel_fn = cancel_of(should_cancel, user);
    auto tracking = cancel_fn ? strata::train::CancelFn([&] { return cancelled = cancelled || cancel_fn(); })
                              : strata::train::CancelFn();
    Value result = strata::train::run_job(kind ? kind : "", request, callback_of(on_event, user), tracking);
    set_out(result_json, strata::json::dump(result));
    return cancelled ? STRATA_CANCELLED : STRATA_OK;
  });
}

strata_session* strata_session_create(const char* document_json, const char* options_json, char** error_out) {
  strata_session* out = nullptr;
  guarded(error_out, [&] {
    auto s = std::make_unique<strata_session>();
    s->doc = strata::model::read_document(parse_request(document_json, "document"), "document");
    s->seed = s->doc.pipeline.training.seed;
    std::string checkpoint;
    std::string device = s->doc.pipeline.training.device, device_field = "document.pipeline.training.device";
    if (options_json && *options_json) {
      Value o = parse_request(options_json, "options");
      if (const Value* seed = o.find("seed")) s->seed = seed->as_uint64();
      if (const Value* threads = o.find("threads")) strata::train::apply_thread_setting(static_cast<int>(threads->as_int64()));
      if (const Value* backend = o.find("backend")) {
        device = backend->as_string();
        device_field = "options.backend";
      }
      if (const Value* ck = o.find("checkpoint")) checkpoint = ck->as_string();
    }
    strata::Backend& backend = strata::train::select_backend(device, device_field);
    s->model = std::make_unique<strata::model::Model>(s->doc.model, backend, s->seed);
    if (!checkpoint.empty()) strata::train::load_checkpoint(checkpoint, *s->model, nullptr);
    out = s.release();
    return STRATA_OK;
  });
  return out;
}

void strata_session_destroy(strata_session* session) { delete session; }

int strata_session_train(strata_session* session, const char* run_dir, const char* train_data, const char* heldout_data,
                         int64_t steps, int resume, strata_event_fn on_event, strata_cancel_fn should_cancel, void* user,
                         char** result_json, char** error_out) {
  return guarded(error_out, [&] {
    if (!session) throw std::runtime_error("strata_session_train: null session");
    strata::train::TrainOptions o;
    o.run_dir = run_dir ? run_dir : "";
    o.train_data = train_data ? train_data : "";
    o.heldout_data = heldout_data ? heldout_data : "";
    o.steps = steps;
    o.resume = resume != 0;
    o.should_cancel = cancel_of(should_cancel, user);
    strata::train::EventSink events(callback_of(on_event, user), o.run_dir);
    strata::model::DocumentConfig doc = session->doc;
    doc.pipeline.training.seed = session->seed;
    // A new run starts from the session's weights (fresh from the seed, or loaded from a checkpoint).
    strata::io::SafetensorsFile session_weights;
    if (!o.resume) {
      session_weights = session->model->params().to_safetensors(false);
      o.init_weights = &session_weights;
    }
    strata::train::TrainOutcome out;
    try {
      out = strata::train::train(doc, o, events);
    } catch (const std::exception& e) {
      events.error(e.what());
      throw;
    }
    if (!out.last_checkpoint.empty()) strata::train::load_checkpoint(out.last_checkpoint, *session->model, nullptr);
    Value r = Value::object();
    r.set("steps_done", Value(out.steps_done));
    r.set("final_loss", Value(out.final_loss));
    r.set("cancelled", Value(out.cancelled));
    r.set("checkpoint", out.last_checkpoint);
    set_out(result_json, strata::json::dump(r));
    if (out.stopped_non_finite) throw std::runtime_error("training stopped on a non-finite gradient (see the error event)");
    return out.cancelled ? STRATA_CANCELLED : STRATA_OK;
  });
}

int strata_session_eval(strata_session* session, const char* data_path, int64_t batches, strata_event_fn on_event,
                        void* user, char** result_json, char** error_out) {
  return guarded(error_out, [&] {
    if (!session) throw std::runtime_error("strata_session_eval: null session");
    const auto& tc = session->doc.pipeline.training;
    strata::model::PrecisionHook precision(session->doc.model, session->seed,
                                             session->model->backend().host_accessible());
    strata::train::BatchStream stream(strata::io::read_tokens(data_path ? data_path : ""), tc.batch_size, tc.seq_len,
                                      session->doc.model.vocab_size);
    strata::train::EventSink events(callback_of(on_event, user), "");
    strata::train::EvalResult e = strata::train::evaluate(*session->model, stream, batches > 0 ? batches : 8);
    Value body = e.to_json(true);
    Value ev = events.make("eval");
    for (const auto& [k, v] : body.members()) ev.set(k, v);
    events.emit(ev);
    set_out(result_json, strata::json::dump(body));
    return STRATA_OK;
  });
}

int strata_session_generate(strata_session* session, const char* request_json, strata_event_fn on_event,
                            strata_cancel_fn should_cancel, void* user, char** result_json, char** error_out) {
  return guarded(error_out, [&] {
    if (!session) throw std::runtime_error("strata_session_generate: null session");
    Value r = parse_request(request_json, "generate request");
    strata::model::GenerateOptions o;
    std::vector<int32_t> prompt;
    const Value* ids = r.find("prompt_ids");
    if (!ids || !ids->is_array()) throw std::runtime_error("generate request: field prompt_ids: expected an array");
    for (const auto& v : ids->items()) prompt.push_back(static_cast<int32_t>(v.as_int64()));
    auto num = [&](const char* k, double d) { const Value* v = r.find(k); return v && v->is_number() ? v->as_double() : d; };
    o.max_new_tokens = static_cast<int>(num("max_new_tokens", 64));
    o.temperature = num("temperature", 0);
    o.top_p = num("top_p", 1);
    o.seed = static_cast<uint64_t>(num("seed", 0));
    o.stop_id = static_cast<int32_t>(num("stop_id", -1));
    o.think_open_id = static_cast<int32_t>(num("think_open_id", -1));
    o.think_close_id = static_cast<int32_t>(num("think_close_id", -1));
    o.think_budget = static_cast<int>(num("think_budget", -1));
    const Value* spec = r.find("speculative");
    o.speculative = spec && spec->is_bool() && spec->as_bool();
    strata::model::PrecisionHook precision(session->doc.model, session->seed,
                                             session->model->backend().host_accessible());
    strata::train::EventSink events(callback_of(on_event, user), "");
    strata::model::GenerateOutput g =
        strata::model::generate(*session->model, prompt, o, cancel_of(should_cancel, user), nullptr);
    Value res = Value::object();
    Value arr = Value::array();
    for (int32_t id : g.ids) arr.push_back(Value(static_cast<int64_t>(id)));
    res.set("ids", arr);
    res.set("tokens_per_s", Value(g.tokens_per_s));
    if (o.speculative) {
      res.set("drafted", Value(g.drafted));
      res.set("accepted", Value(g.accepted));
      res.set("acceptance_rate", Value(g.drafted > 0 ? double(g.accepted) / double(g.drafted) : 0.0));
    }
    Value done = events.make("done");
    done.set("reason", g.cancelled ? "stopped" : "finished");
    events.emit(done);
    set_out(result_json, strata::json::dump(res));
    return g.cancelled ? STRATA_CANCELLED : STRATA_OK;
  });
}

int strata_session_profile(strata_session* session, const char* request_json, strata_event_fn on_event,
                           strata_cancel_fn should_cancel, void* user, char** result_json, char** error_out) {
  return guarded(error_out, [&] {
    if (!session) throw std::runtime_error("strata_session_profile: null session");
    strata::train::ProfileRequest p;
    p.modes = session->doc.pipeline.profiling.modes;
    p.contexts = session->doc.pipeline.profiling.contexts;
    p.batch = session->doc.pipeline.profiling.batch;
    if (request_json && *request_json) {
      Value r = parse_request(request_json, "profile request");
      if (const Value* m = r.find("modes")) {
        p.modes.clear();
        for (const auto& v : m->items()) p.modes.push_back(v.as_string());
      }
      if (const Value* c = r.find("contexts")) {
        p.contexts.clear();
        for (const auto& v : c->items()) p.contexts.push_back(static_cast<int>(v.as_int64()));
      }
      if (const Value* b = r.find("batch")) p.batch = static_cast<int>(b->as_int64());
      if (const Value* d = r.find("decode_steps")) p.decode_steps = static_cast<int>(d->as_int64());
    }
    strata::model::PrecisionHook precision(session->doc.model, session->seed,
                                             session->model->backend().host_accessible());
    strata::train::EventSink events(callback_of(on_event, user), "");
    int64_t rows = strata::train::profile_model(*session->model, p, events, cancel_of(should_cancel, user));
    Value res = Value::object();
    res.set("rows", Value(rows));
    set_out(result_json, strata::json::dump(res));
    return STRATA_OK;
  });
}

int strata_session_save(strata_session* session, const char* path, char** error_out) {
  return guarded(error_out, [&] {
    if (!session || !path) throw std::runtime_error("strata_session_save: null session or path");
    strata::io::SafetensorsFile f = session->model->params().to_safetensors(false);
    f.metadata["format"] = "pt";
    strata::io::write_safetensors(path, f);
    return STRATA_OK;
  });
}

int strata_session_load(strata_session* session, const char* path, char** error_out) {
  return guarded(error_out, [&] {
    if (!session || !path) throw std::runtime_error("strata_session_load: null session or path");
    strata::train::load_checkpoint(path, *session->model, nullptr);
    return STRATA_OK;
  });
}

int strata_session_grads(strata_session* session, const char* data_path, const char* out_path, char** result_json,
                         char** error_out) {
  return guarded(error_out, [&] {
    if (!session || !data_path || !out_path) throw std::runtime_error("strata_session_grads: null argument");
    const auto& tc = session->doc.pipeline.training;
    strata::train::BatchStream stream(strata::io::read_tokens(data_path), tc.batch_size, tc.seq_len,
                                      session->doc.model.vocab_size);
    strata::model::Batch batch = stream.next();
    strata::model::Model& m = *session->model;
    m.params().zero_grads();
    strata::Arena acts(m.backend());
    strata::model::ForwardResult fr = m.forward(acts, batch, false, true);
    m.backward(acts, 1.0f);
    strata::io::SafetensorsFile f = m.params().to_safetensors(true);
    f.metadata["loss"] = strata::json::format_double(fr.main_loss);
    strata::io::write_safetensors(out_path, f);
    Value res = Value::object();
    res.set("loss", Value(fr.main_loss));
    res.set("tokens", Value(fr.main_tokens));
    set_out(result_json, strata::json::dump(res));
    return STRATA_OK;
  });
}

}  // extern "C"
