// Checkpoint folders (see checkpoint.h): atomic save, pruning, verified load.
#include "checkpoint.h"

#include <cstdio>
#include <stdexcept>
#include <unistd.h>

#include "io/files.h"
#include "io/safetensors.h"

namespace strata::train {

namespace {
constexpr const char* kModelFile = "model.safetensors";
constexpr const char* kOptimizerFile = "optimizer.safetensors";
constexpr const char* kStateFile = "state.json";

std::string step_name(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "step_%06lld", static_cast<long long>(step));
  return buf;
}

bool is_checkpoint_name(const std::string& name) {
  return name.size() > 5 && name.rfind("step_", 0) == 0 && name.find(".tmp") == std::string::npos;
}
}  // namespace

std::string fnv1a64_hex(const std::string& bytes) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

std::string save_checkpoint(const std::string& run_dir, model::Model& model, const AdamW* optimizer,
                            const CheckpointState& state, int keep) {
  const std::string root = io::join_path(run_dir, "checkpoints");
  io::make_dirs(root);
  const std::string final_dir = io::join_path(root, step_name(state.step));
  const std::string tmp_dir = final_dir + ".tmp-" + std::to_string(::getpid());
  io::remove_tree(tmp_dir);
  io::make_dirs(tmp_dir);

  json::Value files = json::Value::object();
  auto write = [&](const char* name, const std::string& bytes) {
    io::write_file_atomic(io::join_path(tmp_dir, name), bytes);
    json::Value f = json::Value::object();
    f.set("bytes", json::Value(static_cast<int64_t>(bytes.size())));
    f.set("fnv1a64", fnv1a64_hex(bytes));
    files.set(name, f);
  };
  io::SafetensorsFile weights = model.params().to_safetensors(false);
  weights.metadata["format"] = "pt";
  write(kModelFile, io::serialize_safetensors(weights));
  if (optimizer) write(kOptimizerFile, io::serialize_safetensors(optimizer->state()));

  json::Value s = json::Value::object();
  s.set("format", "strata-checkpoint");
  s.set("version", 1);
  s.set("step", json::Value(state.step));
  s.set("data_position", json::Value(state.data_position));
  json::Value rng = json::Value::object();
  rng.set("seed", json::Value(state.rng_seed));
  rng.set("counter", json::Value(state.rng_counter));
  s.set("rng", rng);
  s.set("loss", json::Value(state.loss));
  s.set("files", files);
  s.set("job", state.job);
  s.set("document", state.document);
  io::write_file_atomic(io::join_path(tmp_dir, kStateFile), json::dump(s, 1));

  io::remove_tree(final_dir);
  if (std::rename(tmp_dir.c_str(), final_dir.c_str()) != 0) {
    throw std::runtime_error(final_dir + ": cannot rename the checkpoint folder into place");
  }
  if (keep > 0) {
    std::vector<std::string> names;
    for (const auto& n : io::list_dir(root)) if (is_checkpoint_name(n)) names.push_back(n);
    for (size_t i = 0; i + static_cast<size_t>(keep) < names.size(); i++) io::remove_tree(io::join_path(root, names[i]));
  }
  return final_dir;
}

std::vector<std::string> list_checkpoints(const std::string& run_dir) {
  const std::string root = io::join_path(run_dir, "checkpoints");
  std::vector<std::string> out;
  if (!io::path_exists(root)) return out;
  for (const auto& n : io::list_dir(root)) {  // sorted by name: step_NNNNNN is zero-padded
    const std::string dir = io::join_path(root, n);
    if (is_checkpoint_name(n) && io::path_exists(io::join_path(dir, kStateFile))) out.push_back(dir);
  }
  return out;
}

std::string latest_checkpoint(const std::string& run_dir) {
  std::vector<std::string> all = list_checkpoints(run_dir);
  return all.empty() ? "" : all.back();
}

std::string latest_valid_checkpoint(const std::string& run_dir, std::vector<std::string>* skipped) {
  std::vector<std::string> all = list_checkpoints(run_dir);
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    try {
      read_checkpoint_state(*it);
      return *it;
    } catch (const std::runtime_error& e) {
      if (skipped) skipped->push_back(e.what());
    }
  }
  return "";
}

CheckpointState read_checkpoint_state(const std::string& dir) {
  const std::string path = io::join_path(dir, kStateFile);
  json::Value s;
  try {
    s = json::parse(io::read_file(path), path);
  } catch (const json::ParseError& e) {
    throw std::runtime_error(std::string(e.what()) + " (corrupt checkpoint state)");
  }
  CheckpointState out;
  try {
    if (!s.is_object() || !s.has("format") || s.at("format").as_string() != "strata-checkpoint") {
      throw std::runtime_error("not a Strata checkpoint state");
    }
    out.step = s.at("step").as_int64();
    out.data_position = s.at("data_position").as_int64();
    out.rng_seed = s.at("rng").at("seed").as_uint64();
    out.rng_counter = s.at("rng").at("counter").as_uint64();
    const json::Value& loss = s.at("loss");
    out.loss = loss.is_number() ? loss.as_double() : 0.0;
    out.document = s.at("document");
    if (const json::Value* job = s.find("job")) out.job = *job;
    for (const auto& [name, info] : s.at("files").members()) {
      const std::string file = io::join_path(dir, name);
      if (!io::path_exists(file)) throw std::runtime_error("missing file " + name);
      std::string bytes = io::read_file(file);
      if (static_cast<int64_t>(bytes.size()) != info.at("bytes").as_int64()) {
        throw std::runtime_error(name + " is truncated or altered (" + std::to_string(bytes.size()) + " bytes, expected " +
                                 info.at("bytes").number_text() + ")");
      }
      if (fnv1a64_hex(bytes) != info.at("fnv1a64").as_string()) {
        throw std::runtime_error(name + " is corrupt (content hash mismatch)");
      }
    }
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(path + ": " + e.what() + "; refusing to use this checkpoint");
  }
  return out;
}

void load_checkpoint(const std::string& path, model::Model& model, AdamW* optimizer) {
  if (io::extension(path) == ".safetensors") {
    model.params().load_safetensors(io::read_safetensors(path), path, {"mtp."});
    if (optimizer) throw std::runtime_error(path + ": a plain weights file has no optimizer state to resume from");
    return;
  }
  read_checkpoint_state(path);  // verifies sizes and hashes first
  const std::string weights = io::join_path(path, kModelFile);
  model.params().load_safetensors(io::read_safetensors(weights), weights);
  if (optimizer) {
    const std::string opt = io::join_path(path, kOptimizerFile);
    optimizer->load_state(io::read_safetensors(opt), opt);
  }
}

}  // namespace strata::train
