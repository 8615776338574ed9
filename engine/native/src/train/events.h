// The JSON-line event stream every engine job produces: {"type": ..., "t": seconds since the job
// started, ...}. Each event goes to the caller's callback (binding, CLI) and, when the job has a
// run folder, is appended to RUN/events.jsonl; log messages and errors also go to RUN/log.txt (the
// hosts add their human lines there). The done event carries the job's result.
// Types: start, step, eval, profile, precision, checkpoint, log, done, error.
// This is not a logger for debugging and does no buffering (each line is flushed).
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include "io/json.h"

namespace strata::train {

class EventSink {
 public:
  using Callback = std::function<void(const std::string& json_line)>;
  EventSink(Callback callback, std::string run_dir);

  /** Starts an event object of the given type with "t" filled in. */
  json::Value make(const char* type) const;
  void emit(const json::Value& event);
  void log(const std::string& message, const char* level = "info");
  void error(const std::string& message);
  double seconds() const;
  const std::string& run_dir() const { return run_dir_; }

 private:
  Callback callback_;
  std::string run_dir_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace strata::train
