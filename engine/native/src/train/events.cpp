// JSON-line event sink (see events.h).
#include "events.h"

#include <cmath>

#include "io/files.h"

namespace strata::train {

EventSink::EventSink(Callback callback, std::string run_dir)
    : callback_(std::move(callback)), run_dir_(std::move(run_dir)), start_(std::chrono::steady_clock::now()) {
  if (!run_dir_.empty()) io::make_dirs(run_dir_);
}

double EventSink::seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

json::Value EventSink::make(const char* type) const {
  json::Value e = json::Value::object();
  e.set("type", type);
  e.set("t", json::Value(std::round(seconds() * 1000.0) / 1000.0));
  return e;
}

void EventSink::emit(const json::Value& event) {
  const std::string line = json::dump(event);
  if (!run_dir_.empty()) io::append_line(io::join_path(run_dir_, "events.jsonl"), line);
  if (callback_) callback_(line);
}

void EventSink::log(const std::string& message, const char* level) {
  json::Value e = make("log");
  e.set("level", level);
  e.set("message", message);
  if (!run_dir_.empty()) {
    io::append_line(io::join_path(run_dir_, "log.txt"), "[" + json::format_double(e.at("t").as_double()) + "s] " + message);
  }
  emit(e);
}

void EventSink::error(const std::string& message) {
  json::Value e = make("error");
  e.set("message", message);
  if (!run_dir_.empty()) io::append_line(io::join_path(run_dir_, "log.txt"), "error: " + message);
  emit(e);
}

}  // namespace strata::train
