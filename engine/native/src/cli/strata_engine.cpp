// strata-engine: the native command line for machines without Node (GPU boxes, CI). It runs the
// same jobs as the Node binding (train/jobs.h) and writes the same run folders (run.json,
// document.json, precision.json, events.jsonl, log.txt, checkpoints/), so a run made here opens in
// the app. DOC is a document file, a template name (looked up in --templates DIR, $STRATA_TEMPLATES,
// or the repository's templates/ next to the executable: ../../templates, ../templates) or, where
// noted, a run folder (its document.json and its newest valid checkpoint). Commands:
//   train DOC|RUN --data FILE.stok|FILE.txt [--heldout FILE] [--steps N] [--run-dir DIR] [--seed S]
//                  [--init-from CKPT_DIR|W.safetensors|RUN] [--backend cpu|cuda] [--json]
//   resume RUN_DIR [--steps N] [--checkpoint CKPT_DIR] [--backend cpu|cuda] [--json]
//   eval DOC|RUN [--data FILE] [--checkpoint PATH] [--batches N] [--run-dir DIR] [--backend cpu|cuda] [--json]
//   generate DOC|RUN (--prompt TEXT | --prompt-ids 1,2,3) [--checkpoint PATH] [--max-new N]
//                  [--temperature T] [--top-p P] [--seed S] [--stop-id ID] [--speculative]
//                  [--think-open ID --think-close ID --think-budget N] [--backend cpu|cuda] [--json]
//   profile DOC|RUN [--mode train|prefill|decode[,..]] [--context 1024,4096] [--batch B]
//                  [--checkpoint PATH] [--run-dir DIR] [--backend cpu|cuda] [--json]
// --backend overrides the document's pipeline.training.device (cuda needs an engine built with the
// CUDA backend and a GPU; on the GPU, GEMMs run in BF16 unless STRATA_CUDA_GEMM=fp32|fp8).
// --checkpoint takes a checkpoint folder, a .safetensors file or a run folder; a run folder's newest
// checkpoint that fails verification is skipped with a warning in favour of the newest valid one.
//   grads DOC --weights W.safetensors --data F.stok --out G.safetensors
//   logits DOC --weights W.safetensors --data F.stok --out L.safetensors   (raw main-head logits, F32 (B,T,V))
//   init DOC --out W.safetensors [--seed S]
//   info                                     (engine version, backends, jobs, OpenMP settings as JSON)
// OpenMP: unless OMP_WAIT_POLICY is set, the CLI runs with OMP_WAIT_POLICY=PASSIVE (idle threads
// sleep instead of spinning; spinning collapses throughput when other work shares the cores). The
// OpenMP runtime reads it only when it is loaded, before main(), so main() sets it and re-executes
// itself once (same process, same arguments). Threads: OMP_NUM_THREADS or the document's
// pipeline.training.threads, else the OpenMP default (every CPU this process may use).
// Human output: a progress bar on a TTY (loss, tokens/s, ETA), plain lines otherwise; --json
// prints exactly the engine's JSON events, one per line (start ... done, whose "result" field holds
// the job's result; or error).
// Ctrl-C cancels cleanly (training saves a checkpoint); a second Ctrl-C exits at once.
// Exit codes: 0 done, 1 error, 2 usage, 130 cancelled. Not the TypeScript CLI (engine/cli).
#include <atomic>
#include <cctype>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <cstdlib>
#include <map>
#include <string>
#include <unistd.h>
#include <vector>

#include "io/files.h"
#include "io/json.h"
#include "io/tokens.h"
#include "model/config.h"
#include "train/checkpoint.h"
#include "train/jobs.h"
#include "train/run_folder.h"

namespace {

using strata::json::Value;

std::atomic<int> g_interrupts{0};

void on_sigint(int) {
  if (g_interrupts.fetch_add(1) >= 1) {
    std::signal(SIGINT, SIG_DFL);
    std::raise(SIGINT);
  }
}

const char* kUsage =
    "usage: strata-engine <command> [options]\n"
    "  train DOC|RUN --data FILE.stok|FILE.txt [--heldout FILE] [--steps N] [--run-dir DIR] [--seed S]\n"
    "                [--init-from CKPT_DIR|W.safetensors|RUN] [--backend cpu|cuda] [--json]\n"
    "  resume RUN_DIR [--steps N] [--checkpoint CKPT_DIR] [--backend cpu|cuda] [--json]\n"
    "  eval DOC|RUN [--data FILE] [--checkpoint PATH] [--batches N] [--run-dir DIR] [--backend cpu|cuda] [--json]\n"
    "  generate DOC|RUN (--prompt TEXT | --prompt-ids 1,2,3) [--checkpoint PATH] [--max-new N]\n"
    "                [--temperature T] [--top-p P] [--seed S] [--stop-id ID] [--speculative]\n"
    "                [--think-open ID --think-close ID --think-budget N] [--backend cpu|cuda] [--json]\n"
    "  profile DOC|RUN [--mode train,prefill,decode] [--context 1024,4096] [--batch B] [--checkpoint PATH]\n"
    "                [--run-dir DIR] [--backend cpu|cuda] [--json]\n"
    "  grads DOC --weights W.safetensors --data F.stok --out G.safetensors\n"
    "  logits DOC --weights W.safetensors --data F.stok --out L.safetensors\n"
    "                (the main head's raw logits of the first batch: one F32 tensor \"logits\" (B,T,V))\n"
    "  init DOC --out W.safetensors [--seed S]\n"
    "  info          (engine version, backends, jobs and OpenMP settings as JSON)\n"
    "DOC: a document .json file or a template name (tiny-hybrid, ...) found in --templates DIR,\n"
    "$STRATA_TEMPLATES or the repository's templates/ folder next to this executable.\n"
    "RUN: a run folder (its document.json; its newest valid checkpoint for the weights).\n"
    "Environment: OMP_WAIT_POLICY defaults to PASSIVE (set it to ACTIVE for spinning threads on a\n"
    "dedicated machine); OMP_NUM_THREADS, else pipeline.training.threads, else every available CPU;\n"
    "STRATA_CPU_SIMD=scalar selects the scalar reference kernels.\n";

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Args {
  std::string command;
  std::vector<std::string> positional;
  std::map<std::string, std::string> options;
  bool has(const std::string& k) const { return options.count(k) > 0; }
  std::string get(const std::string& k, const std::string& def = "") const {
    auto it = options.find(k);
    return it == options.end() ? def : it->second;
  }
  long long integer(const std::string& k, long long def) const {
    if (!has(k)) return def;
    try {
      size_t used = 0;
      long long v = std::stoll(get(k), &used);
      if (used != get(k).size()) throw std::invalid_argument("");
      return v;
    } catch (const std::exception&) {
      throw UsageError("--" + k + ": expected an integer, got \"" + get(k) + "\"");
    }
  }
  double number(const std::string& k, double def) const {
    if (!has(k)) return def;
    try {
      return std::stod(get(k));
    } catch (const std::exception&) {
      throw UsageError("--" + k + ": expected a number, got \"" + get(k) + "\"");
    }
  }
};

Args parse_args(int argc, char** argv) {
  static const char* flags[] = {"json", "speculative", "help"};
  Args a;
  if (argc < 2) throw UsageError("missing command");
  a.command = argv[1];
  for (int i = 2; i < argc; i++) {
    std::string s = argv[i];
    if (s.rfind("--", 0) == 0) {
      std::string key = s.substr(2);
      std::string value;
      size_t eq = key.find('=');
      bool is_flag = false;
      for (const char* f : flags) is_flag = is_flag || key == f;
      if (eq != std::string::npos) {
        value = key.substr(eq + 1);
        key = key.substr(0, eq);
      } else if (!is_flag) {
        if (i + 1 >= argc) throw UsageError("--" + key + " needs a value");
        value = argv[++i];
      }
      a.options[key] = value;
    } else {
      a.positional.push_back(s);
    }
  }
  return a;
}

Value read_json_file(const std::string& path) {
  try {
    return strata::json::parse(strata::io::read_file(path), path);
  } catch (const strata::json::ParseError& e) {
    throw std::runtime_error(e.what());
  }
}

Value int_list(const std::string& text, const char* option) {
  Value arr = Value::array();
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t comma = text.find(',', pos);
    std::string item = text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    try {
      arr.push_back(Value(static_cast<int64_t>(std::stoll(item))));
    } catch (const std::exception&) {
      throw UsageError(std::string("--") + option + ": expected comma-separated integers, got \"" + text + "\"");
    }
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return arr;
}

std::string format_eta(double seconds) {
  if (!(seconds >= 0) || seconds > 360000) return "--:--";
  int s = static_cast<int>(seconds + 0.5);
  char buf[32];
  if (s >= 3600) std::snprintf(buf, sizeof buf, "%d:%02d:%02d", s / 3600, (s / 60) % 60, s % 60);
  else std::snprintf(buf, sizeof buf, "%d:%02d", s / 60, s % 60);
  return buf;
}

// One event line of the job's stream as JSON; false for a line that is not (ignored by the printers).
bool parse_event(const std::string& line, Value* event) {
  try {
    *event = strata::json::parse(line);
  } catch (const std::exception&) {
    return false;
  }
  return true;
}

// The "start" event's job name, parameter count and backend, with the defaults both printers use.
struct StartSummary {
  std::string job, params, backend;
  explicit StartSummary(const Value& e)
      : job(e.find("job") ? e.at("job").as_string() : "job"),
        params(e.find("params") ? e.at("params").number_text() : "?"),
        backend(e.find("backend") ? e.at("backend").as_string() : "cpu") {}
};

// Human-readable rendering of the event stream (progress bar on a TTY).
class HumanPrinter {
 public:
  HumanPrinter() : tty_(::isatty(STDERR_FILENO) != 0) {}

  bool printed_error() const { return printed_error_; }

  void operator()(const std::string& line) {
    Value e;
    if (!parse_event(line, &e)) return;
    const std::string type = e.at("type").as_string();
    if (type == "start") {
      if (const Value* steps = e.find("steps")) total_ = steps->as_int64();
      if (const Value* s0 = e.find("start_step")) start_step_ = s0->as_int64();
      const StartSummary start(e);
      std::fprintf(stderr, "%s: %s parameters on %s\n", start.job.c_str(), start.params.c_str(), start.backend.c_str());
    } else if (type == "step") {
      const int64_t step = e.at("step").as_int64();
      const double loss = e.at("loss").as_double(), tps = e.at("tokens_per_s").as_double();
      const double t = e.at("t").as_double();
      const double per_step = step > start_step_ ? t / static_cast<double>(step - start_step_) : 0;
      const double eta = per_step * static_cast<double>(total_ - step);
      if (tty_) {
        const int width = 24;
        int filled = total_ > 0 ? static_cast<int>(width * step / total_) : 0;
        std::string bar(static_cast<size_t>(filled), '#');
        bar.resize(width, '.');
        std::fprintf(stderr, "\r[%s] step %lld/%lld  loss %.4f  %.0f tok/s  ETA %s   ", bar.c_str(),
                     static_cast<long long>(step), static_cast<long long>(total_), loss, tps, format_eta(eta).c_str());
        std::fflush(stderr);
        open_line_ = true;
      } else if (step == 1 || step % 10 == 0 || step == total_) {
        std::fprintf(stderr, "step %lld/%lld loss %.4f %.0f tok/s ETA %s\n", static_cast<long long>(step),
                     static_cast<long long>(total_), loss, tps, format_eta(eta).c_str());
      }
    } else if (type == "eval") {
      end_line();
      std::fprintf(stderr, "eval%s: loss %.4f  ppl %.3f%s%s\n",
                   e.find("step") ? (" @ step " + e.at("step").number_text()).c_str() : "", e.at("loss").as_double(),
                   e.at("ppl").as_double(),
                   e.at("bpb").is_null() ? "" : ("  bpb " + strata::json::format_double(e.at("bpb").as_double())).c_str(),
                   e.at("accuracy").is_null()
                       ? ""
                       : ("  accuracy " + strata::json::format_double(e.at("accuracy").as_double())).c_str());
    } else if (type == "checkpoint") {
      end_line();
      std::fprintf(stderr, "checkpoint: %s\n", e.at("path").as_string().c_str());
    } else if (type == "profile") {
      end_line();
      if (e.at("op").as_string() == "total") {
        std::fprintf(stderr, "%-8s ctx %-6s total %.2f ms  %.0f tok/s  %s %.1f MiB\n", e.at("mode").as_string().c_str(),
                     e.at("context").number_text().c_str(), e.at("ms").as_double(), e.at("tokens_per_s").as_double(),
                     e.at("bytes_meaning").as_string().c_str(), e.at("bytes").as_double() / 1048576.0);
      } else {
        std::fprintf(stderr, "%-8s ctx %-6s %-24s fwd %8.3f ms  bwd %8.3f ms  %.3g flop\n",
                     e.at("mode").as_string().c_str(), e.at("context").number_text().c_str(),
                     e.at("label").as_string().c_str(), e.at("fwd_ms").as_double(), e.at("bwd_ms").as_double(),
                     e.at("flops").as_double());
      }
    } else if (type == "log") {
      end_line();
      std::fprintf(stderr, "%s\n", e.at("message").as_string().c_str());
    } else if (type == "error") {
      end_line();
      printed_error_ = true;
      std::fprintf(stderr, "error: %s\n", e.at("message").as_string().c_str());
    } else if (type == "done") {
      end_line();
    }
  }

 private:
  void end_line() {
    if (open_line_) std::fprintf(stderr, "\n");
    open_line_ = false;
  }
  bool tty_;
  bool open_line_ = false;
  bool printed_error_ = false;
  int64_t total_ = 0, start_step_ = 0;
};

// The human lines of a run folder's log.txt, "[t s] text" as the TypeScript CLI writes them: start,
// every 10th step and the last, evaluations, checkpoints and the end (the engine adds its own log
// and error events).
class RunLog {
 public:
  explicit RunLog(std::string run_dir) : path_(run_dir.empty() ? "" : strata::io::join_path(run_dir, "log.txt")) {}

  void operator()(const std::string& line) {
    if (path_.empty()) return;
    Value e;
    if (!parse_event(line, &e)) return;
    const std::string type = e.at("type").as_string();
    std::string text;
    auto field = [&](const char* key) { return e.find(key) ? strata::json::dump(e.at(key)) : std::string("?"); };
    if (type == "start") {
      if (const Value* s = e.find("steps")) total_ = s->as_int64();
      const StartSummary start(e);
      text = "start " + start.job + " (" + start.params + " parameters on " + start.backend + ")";
    } else if (type == "step") {
      const int64_t step = e.at("step").as_int64();
      if (step % 10 != 0 && step != total_ && !first_step_) return;
      first_step_ = false;
      char buf[128];
      std::snprintf(buf, sizeof buf, "step %lld loss %.4f lr %.2e %.0f tok/s", static_cast<long long>(step),
                    e.at("loss").as_double(), e.at("lr").as_double(), e.at("tokens_per_s").as_double());
      text = buf;
    } else if (type == "eval") {
      text = "eval loss " + field("loss") + " ppl " + field("ppl");
    } else if (type == "checkpoint") {
      text = "checkpoint at step " + field("step") + ": " + e.at("path").as_string();
    } else if (type == "done") {
      text = "done" + (e.find("reason") && e.at("reason").as_string() != "finished" ? " (" + e.at("reason").as_string() + ")"
                                                                                    : std::string());
    } else {
      return;
    }
    strata::io::append_line(path_, "[" + strata::json::format_double(e.at("t").as_double()) + "s] " + text);
  }

 private:
  std::string path_;
  int64_t total_ = 0;
  bool first_step_ = true;
};

std::string default_run_dir(const Value& doc) {
  std::string name = "run";
  if (const Value* m = doc.find("model")) {
    if (const Value* n = m->find("name"); n && n->is_string()) name = n->as_string();
  }
  for (char& c : name) if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') c = '-';
  char stamp[32];
  std::time_t now = std::time(nullptr);
  std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", std::localtime(&now));
  return "runs/" + name + "-" + stamp;
}

std::string executable_dir() {
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return "";
  std::string path(buf, static_cast<size_t>(n));
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? "" : path.substr(0, slash);
}

bool is_run_folder(const std::string& path) {
  return strata::io::path_exists(strata::io::join_path(path, "document.json")) &&
         strata::io::path_exists(strata::io::join_path(path, "checkpoints"));
}

std::string folder_name(std::string dir) {
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  const size_t slash = dir.find_last_of('/');
  return slash == std::string::npos ? dir : dir.substr(slash + 1);
}

// A template name (no slash, no extension): the first <dir>/<name>.json among --templates DIR,
// $STRATA_TEMPLATES and the repository's templates/ folder seen from the executable.
std::string find_template(const Args& a, const std::string& name) {
  std::vector<std::string> dirs;
  if (a.has("templates")) dirs.push_back(a.get("templates"));
  if (const char* env = std::getenv("STRATA_TEMPLATES"); env && *env) dirs.push_back(env);
  const std::string exe = executable_dir();
  if (!exe.empty()) {
    dirs.push_back(exe + "/../../templates");  // build/native/strata-engine in a checkout
    dirs.push_back(exe + "/../templates");
  }
  for (const auto& d : dirs) {
    const std::string path = strata::io::join_path(d, name + ".json");
    if (strata::io::path_exists(path)) return path;
  }
  std::string looked;
  for (const auto& d : dirs) looked += (looked.empty() ? "" : ", ") + d;
  throw std::runtime_error(name + ": no such document file, and no template " + name + ".json in " +
                           (looked.empty() ? std::string("(no template folder)") : looked) +
                           "; give a document path or --templates DIR");
}

// The DOC argument: a run folder (document.json; `run` receives its path), a document file, or a
// template name. The document is checked (errors name the file, layer and field).
Value document_arg(const Args& a, std::string* run) {
  if (a.positional.empty()) throw UsageError(a.command + ": missing DOC (a document file, template name or run folder)");
  const std::string& arg = a.positional[0];
  std::string path = arg;
  if (run && is_run_folder(arg)) {
    *run = arg;
    path = strata::io::join_path(arg, "document.json");
  } else if (!strata::io::path_exists(arg) && arg.find('/') == std::string::npos &&
             strata::io::extension(arg).empty()) {
    path = find_template(a, arg);
  }
  Value doc = read_json_file(path);
  strata::model::read_document(doc, path);
  return doc;
}

void require(const Args& a, const char* option) {
  if (!a.has(option)) throw UsageError(a.command + ": --" + option + " is required");
}

// --backend cpu|cuda: sets the document's pipeline.training.device (the jobs pick the backend from it).
void apply_backend_option(const Args& a, Value& doc) {
  if (!a.has("backend")) return;
  const std::string backend = a.get("backend");
  if (a.command == "grads" || a.command == "logits" || a.command == "init") {
    throw UsageError(a.command + ": --backend is not an option of this command (it runs on the cpu)");
  }
  if (backend != "cpu" && backend != "cuda") throw UsageError("--backend: expected cpu or cuda, got \"" + backend + "\"");
  Value* pipeline = doc.find("pipeline");
  if (!pipeline) pipeline = &doc.set("pipeline", Value::object());
  Value* training = pipeline->find("training");
  if (!training) training = &pipeline->set("training", Value::object());
  training->set("device", backend);
}

// The newest valid checkpoint of a run (the job logs which corrupt ones it skipped).
std::string newest_valid_checkpoint(const std::string& run) {
  std::vector<std::string> skipped;
  const std::string ckpt = strata::train::latest_valid_checkpoint(run, &skipped);
  if (ckpt.empty()) {
    throw std::runtime_error(run + ": no valid checkpoint" + (skipped.empty() ? "" : " (" + skipped.front() + ")"));
  }
  return ckpt;
}

// What the CLI writes into a run folder before the job starts (run.json, precision.json).
struct RunFolderPlan {
  std::string dir;
  strata::train::RunMetaFields fields;
};

// Builds the job request for a command; returns the job kind.
std::string build_request(const Args& a, Value& req, RunFolderPlan& plan) {
  req = Value::object();
  const std::string& c = a.command;
  if (c == "resume") {
    if (a.positional.empty()) throw UsageError("resume: missing RUN_DIR");
    const std::string run = a.positional[0];
    const std::string ckpt = a.has("checkpoint") ? a.get("checkpoint") : newest_valid_checkpoint(run);
    strata::train::CheckpointState st = strata::train::read_checkpoint_state(ckpt);
    if (!st.job.is_object() || !st.job.has("train_data")) {
      throw std::runtime_error(ckpt + ": the checkpoint does not record its training data; rerun train with --run-dir");
    }
    Value doc = read_json_file(strata::io::join_path(run, "document.json"));
    apply_backend_option(a, doc);
    req.set("document", doc);
    req.set("run_dir", run);
    req.set("train_data", st.job.at("train_data"));
    req.set("heldout_data", st.job.at("heldout_data"));
    const int64_t steps = a.integer("steps", st.job.at("steps").as_int64());
    req.set("steps", Value(steps));
    req.set("resume", Value(true));
    if (a.has("checkpoint")) req.set("checkpoint", ckpt);
    plan.dir = run;
    plan.fields.kind = "train";
    plan.fields.data = st.job.at("train_data").as_string();
    plan.fields.steps = steps;
    return "train";
  }
  std::string run;  // set when DOC is a run folder
  Value doc = document_arg(a, c == "grads" || c == "logits" || c == "init" ? nullptr : &run);
  if (a.has("seed")) {
    Value* pipeline = doc.find("pipeline");
    if (!pipeline) pipeline = &doc.set("pipeline", Value::object());
    Value* training = pipeline->find("training");
    if (!training) training = &pipeline->set("training", Value::object());
    training->set("seed", Value(static_cast<int64_t>(a.integer("seed", 0))));
  }
  apply_backend_option(a, doc);
  req.set("document", doc);
  // The weights of eval/generate/profile: --checkpoint, else a run folder's newest valid checkpoint.
  auto set_checkpoint = [&] {
    if (a.has("checkpoint")) req.set("checkpoint", a.get("checkpoint"));
    else if (!run.empty()) req.set("checkpoint", run);
  };
  if (c == "train") {
    require(a, "data");
    if (a.has("init-from") && !run.empty()) {
      throw UsageError("train: give the weights either as a run folder DOC or with --init-from, not both");
    }
    const std::string run_dir = a.get("run-dir", default_run_dir(doc));
    req.set("run_dir", run_dir);
    req.set("train_data", a.get("data"));
    if (a.has("heldout")) req.set("heldout_data", a.get("heldout"));
    if (a.has("steps")) req.set("steps", Value(static_cast<int64_t>(a.integer("steps", 0))));
    std::string init = a.get("init-from", run);
    if (!init.empty() && is_run_folder(init)) init = newest_valid_checkpoint(init);
    if (!init.empty()) req.set("init_from", init);
    plan.dir = run_dir;
    plan.fields.kind = "train";
    plan.fields.data = a.get("data");
    plan.fields.steps = a.has("steps") ? a.integer("steps", 0) : strata::model::read_document(doc, "document").pipeline.training.steps;
    if (!run.empty()) plan.fields.parent = folder_name(run);
    return "train";
  }
  if (c == "eval") {
    std::string data = a.get("data");
    if (data.empty() && !run.empty()) {
      // A run's own held-out data, when its checkpoint records a separate file.
      const auto st = strata::train::read_checkpoint_state(newest_valid_checkpoint(run));
      if (const Value* h = st.job.find("heldout_data"); h && h->is_string()) data = h->as_string();
    }
    if (data.empty()) throw UsageError("eval: --data is required (the run records no separate held-out file)");
    req.set("data", data);
    set_checkpoint();
    if (a.has("batches")) req.set("batches", Value(static_cast<int64_t>(a.integer("batches", 8))));
    if (a.has("run-dir")) {
      req.set("run_dir", a.get("run-dir"));
      plan.dir = a.get("run-dir");
      plan.fields.kind = "eval";
      plan.fields.data = data;
      if (!run.empty()) plan.fields.parent = folder_name(run);
    }
    return "eval";
  }
  if (c == "generate") {
    Value ids = Value::array();
    if (a.has("prompt-ids")) {
      ids = int_list(a.get("prompt-ids"), "prompt-ids");
    } else if (a.has("prompt")) {
      for (uint32_t id : strata::io::byte_encode(a.get("prompt"))) ids.push_back(Value(static_cast<int64_t>(id)));
    } else {
      throw UsageError("generate: give --prompt TEXT (byte tokenizer) or --prompt-ids 1,2,3");
    }
    req.set("prompt_ids", ids);
    set_checkpoint();
    req.set("max_new_tokens", Value(static_cast<int64_t>(a.integer("max-new", 64))));
    req.set("temperature", Value(a.number("temperature", 0)));
    req.set("top_p", Value(a.number("top-p", 1)));
    req.set("seed", Value(static_cast<int64_t>(a.integer("seed", 0))));
    if (a.has("stop-id")) req.set("stop_id", Value(static_cast<int64_t>(a.integer("stop-id", -1))));
    if (a.has("speculative")) req.set("speculative", Value(true));
    if (a.has("think-open")) req.set("think_open_id", Value(static_cast<int64_t>(a.integer("think-open", -1))));
    if (a.has("think-close")) req.set("think_close_id", Value(static_cast<int64_t>(a.integer("think-close", -1))));
    if (a.has("think-budget")) req.set("think_budget", Value(static_cast<int64_t>(a.integer("think-budget", -1))));
    return "generate";
  }
  if (c == "profile") {
    if (a.has("mode")) {
      Value modes = Value::array();
      std::string m = a.get("mode");
      size_t pos = 0;
      while (true) {
        size_t comma = m.find(',', pos);
        modes.push_back(m.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos));
        if (comma == std::string::npos) break;
        pos = comma + 1;
      }
      req.set("modes", modes);
    }
    if (a.has("context")) req.set("contexts", int_list(a.get("context"), "context"));
    if (a.has("batch")) req.set("batch", Value(static_cast<int64_t>(a.integer("batch", 1))));
    set_checkpoint();
    if (a.has("run-dir")) {
      req.set("run_dir", a.get("run-dir"));
      plan.dir = a.get("run-dir");
      plan.fields.kind = "profile";
      if (!run.empty()) plan.fields.parent = folder_name(run);
    }
    return "profile";
  }
  if (c == "grads" || c == "logits") {
    require(a, "weights");
    require(a, "data");
    require(a, "out");
    req.set("weights", a.get("weights"));
    req.set("data", a.get("data"));
    req.set("out", a.get("out"));
    return c;
  }
  if (c == "init") {
    require(a, "out");
    req.set("out", a.get("out"));
    if (a.has("seed")) req.set("seed", Value(static_cast<int64_t>(a.integer("seed", 0))));
    return "init";
  }
  throw UsageError("unknown command \"" + c + "\"");
}

// OMP_WAIT_POLICY=PASSIVE unless the user set it. The OpenMP runtime (libgomp) parsed the
// environment when it was loaded, before main(), so after setting it the CLI re-executes itself once
// (execv keeps the process id; the second start finds the variable set). Where re-execution is not
// possible the run continues with the runtime's own default.
void apply_openmp_defaults(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY")) return;
  if (::setenv("OMP_WAIT_POLICY", "PASSIVE", 1) != 0) return;
  char exe[4096];
  const ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return;
  exe[n] = '\0';
  ::execv(exe, argv);  // returns only on failure
}

}  // namespace

int main(int argc, char** argv) {
  apply_openmp_defaults(argv);
  Args args;
  Value request;
  std::string kind;
  RunFolderPlan plan;
  try {
    args = parse_args(argc, argv);
    if (args.command == "--help" || args.command == "help" || args.has("help")) {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (args.command == "info") {
      std::printf("%s\n", strata::json::dump(strata::train::engine_info(), 2).c_str());
      return 0;
    }
    kind = build_request(args, request, plan);
    if (!plan.dir.empty()) {
      strata::train::write_run_metadata(plan.dir, strata::model::read_document(request.at("document"), "document"),
                                        plan.fields);
    }
  } catch (const UsageError& e) {
    std::fprintf(stderr, "strata-engine: %s\n%s", e.what(), kUsage);
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "strata-engine: %s\n", e.what());
    return 1;
  }
  const bool json_out = args.has("json");
  std::signal(SIGINT, on_sigint);
  HumanPrinter printer;
  RunLog run_log(plan.dir);
  auto on_event = [&](const std::string& line) {
    run_log(line);
    if (json_out) {
      std::fputs(line.c_str(), stdout);
      std::fputc('\n', stdout);
      std::fflush(stdout);
    } else {
      printer(line);
    }
  };
  auto cancel = []() { return g_interrupts.load() > 0; };
  try {
    Value result = strata::train::run_job(kind, request, on_event, cancel);
    if (json_out) return g_interrupts.load() > 0 ? 130 : 0;  // the done event carried the result
    if (kind == "generate") {
      std::vector<uint32_t> ids;
      for (const auto& v : result.at("ids").items()) ids.push_back(static_cast<uint32_t>(v.as_int64()));
      std::printf("%s\n", strata::io::byte_decode(ids).c_str());
      std::fprintf(stderr, "%s\n", strata::json::dump(result).c_str());
    } else {
      std::printf("%s\n", strata::json::dump(result, 2).c_str());
    }
    return g_interrupts.load() > 0 ? 130 : 0;
  } catch (const std::exception& e) {
    if (!json_out && !printer.printed_error()) std::fprintf(stderr, "strata-engine: %s\n", e.what());
    return 1;
  }
}
