// The Node binding of the native engine (node-addon-api), glue only: it exposes
//   info() -> JSON string                      engine version and build facts
//   startJob(kind, requestJson, onEvent) -> { cancel(), done: Promise<resultJson> }
// Each job (train, eval, generate, profile, init, grads, logits) runs on its own std::thread through the
// engine's C API (include/strata/engine.h). Events travel to JS through a Napi::ThreadSafeFunction
// (one call per JSON line, in order); cancel() sets an atomic flag the engine polls between steps.
// No JS value is touched off the main thread: the worker only queues strings, and the promise is
// settled by the last thread-safe call, on the main thread.
//
// Not here: what jobs do (the engine), the typed TS API (engine/runtime/engine.ts).
#include <napi.h>

#include <atomic>
#include <exception>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "strata/engine.h"

namespace {

/** One running job: shared by the worker thread, the JS handle (cancel) and the TSFN finalizer. */
struct Job {
  std::string kind;
  std::string request;
  std::atomic<bool> cancel_requested{false};
  // Written by the worker before its final thread-safe call, read by that call on the main thread.
  bool failed = false;
  std::string outcome;  // result JSON, or the error message when failed
  Napi::ThreadSafeFunction events;
  Napi::Promise::Deferred deferred;
  std::thread worker;

  explicit Job(Napi::Env env) : deferred(Napi::Promise::Deferred::New(env)) {}
};

/** A queued message for the main thread: an event line, or (final) the job's end. */
struct Message {
  std::string line;
  bool final = false;
};

void deliver(Napi::Env env, Napi::Function on_event, Job* job, Message* message) {
  std::unique_ptr<Message> owned(message);
  if (env == nullptr) return;  // the environment is shutting down: nothing to call
  if (!owned->final) {
    on_event.Call({Napi::String::New(env, owned->line)});
    return;
  }
  if (job->failed)
    job->deferred.Reject(Napi::Error::New(env, job->outcome).Value());
  else
    job->deferred.Resolve(Napi::String::New(env, job->outcome));
}

/** Queues a message; returns false when JS can no longer receive (environment closing). */
bool post(Job* job, Message* message) {
  napi_status status = job->events.BlockingCall(message, [job](Napi::Env env, Napi::Function fn, Message* m) { deliver(env, fn, job, m); });
  if (status != napi_ok) {
    delete message;
    job->cancel_requested = true;
    return false;
  }
  return true;
}

// C callbacks handed to the engine.
void on_engine_event(const char* json_line, void* user) {
  auto* job = static_cast<Job*>(user);
  post(job, new Message{json_line ? std::string(json_line) : std::string(), false});
}

int should_cancel(void* user) { return static_cast<Job*>(user)->cancel_requested.load() ? 1 : 0; }

void run_job(Job* job) {
  try {
    char* result_json = nullptr;
    char* error_out = nullptr;
    int status = strata_run_job(job->kind.c_str(), job->request.c_str(), &on_engine_event, &should_cancel, job,
                                &result_json, &error_out);
    // STRATA_CANCELLED still carries a result (e.g. the steps done before the stop).
    job->failed = status == STRATA_ERROR;
    if (job->failed)
      job->outcome = error_out ? std::string(error_out) : std::string("engine job '" + job->kind + "' failed");
    else
      job->outcome = result_json ? std::string(result_json) : std::string("{}");
    strata_free(result_json);
    strata_free(error_out);
  } catch (const std::exception& error) {
    job->failed = true;
    job->outcome = error.what();
  } catch (...) {
    job->failed = true;
    job->outcome = "unknown native error";
  }
  post(job, new Message{std::string(), true});
  job->events.Release();
}

Napi::Value Info(const Napi::CallbackInfo& info) {
  char* json = strata_engine_info();
  Napi::String text = Napi::String::New(info.Env(), json ? json : "{}");
  strata_free(json);
  return text;
}

Napi::Value StartJob(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 3 || !info[0].IsString() || !info[1].IsString() || !info[2].IsFunction())
    throw Napi::TypeError::New(env, "startJob(kind: string, requestJson: string, onEvent: function)");
  auto job = std::make_shared<Job>(env);
  job->kind = info[0].As<Napi::String>().Utf8Value();
  job->request = info[1].As<Napi::String>().Utf8Value();
  // The finalizer runs on the main thread once the worker has released the function; it owns the
  // last reference to the job and joins the (already finishing) worker thread.
  auto* keep = new std::shared_ptr<Job>(job);
  job->events = Napi::ThreadSafeFunction::New(
      env, info[2].As<Napi::Function>(), "strata-engine-job", 0, 1, keep,
      [](Napi::Env, std::shared_ptr<Job>* finished) {
        if ((*finished)->worker.joinable()) (*finished)->worker.join();
        delete finished;
      });
  job->worker = std::thread(run_job, job.get());

  Napi::Object handle = Napi::Object::New(env);
  std::weak_ptr<Job> weak = job;
  handle.Set("cancel", Napi::Function::New(env, [weak](const Napi::CallbackInfo& call) {
               if (auto alive = weak.lock()) alive->cancel_requested = true;
               return call.Env().Undefined();
             }));
  handle.Set("done", job->deferred.Promise());
  return handle;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("info", Napi::Function::New(env, Info, "info"));
  exports.Set("startJob", Napi::Function::New(env, StartJob, "startJob"));
  return exports;
}

}  // namespace

NODE_API_MODULE(strata_node, Init)
