// run.json and precision.json of a run folder (see run_folder.h).
#include "run_folder.h"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <stdexcept>

#include "io/files.h"

namespace strata::train {

namespace {

// GEMM roles of a block in engine/spec/precision.ts rolesOfBlock order.
std::vector<std::string> gemm_roles(const model::BlockConfig& b) {
  switch (b.kind) {
    case model::BlockKind::Mamba2: return {"mamba.in_proj", "mamba.out_proj"};
    case model::BlockKind::Attention: return {"attention.qkv", "attention.o"};
    case model::BlockKind::Mlp: return {"mlp.fc1", "mlp.fc2"};
    case model::BlockKind::Moe: {
      std::vector<std::string> r = {"moe.router"};
      if (b.moe.latent > 0) r.push_back("moe.latent_down");
      r.push_back("moe.expert_fc1");
      r.push_back("moe.expert_fc2");
      if (b.moe.latent > 0) r.push_back("moe.latent_up");
      if (b.moe.shared_experts > 0) {
        r.push_back("moe.shared_fc1");
        r.push_back("moe.shared_fc2");
      }
      return r;
    }
  }
  return {};
}

std::string iso_utc_now() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t secs = std::chrono::system_clock::to_time_t(now);
  const int64_t ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03lldZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<long long>(ms));
  return buf;
}

std::string folder_name(const std::string& dir) {
  std::string d = dir;
  while (d.size() > 1 && d.back() == '/') d.pop_back();
  const size_t slash = d.find_last_of('/');
  return slash == std::string::npos ? d : d.substr(slash + 1);
}

void write_json(const std::string& path, const json::Value& v) { io::write_file_atomic(path, json::dump(v, 2) + "\n"); }

}  // namespace

json::Value precision_table_json(const model::DocumentConfig& doc) {
  const model::ModelConfig& m = doc.model;
  const int n = m.n_layers();
  json::Value rows = json::Value::array();
  auto add_row = [&](const char* scope, int layer, const std::string& kind, const std::string& role,
                     const std::string& resolve_role, int resolve_layer, model::BlockKind resolve_kind) {
    json::Value row = json::Value::object();
    row.set("scope", scope);
    row.set("layer", json::Value(layer));
    row.set("kind", kind.empty() ? json::Value() : json::Value(kind));
    row.set("role", role);
    for (const char* pass : {"fprop", "dgrad", "wgrad"}) {
      row.set(pass, m.precision.resolve(resolve_layer, resolve_kind, resolve_role, pass, n));
    }
    rows.push_back(row);
  };
  add_row("global", -1, "", "embedding", "embedding", -1, model::BlockKind::Mlp);
  for (int i = 0; i < n; i++) {
    const model::BlockConfig& b = m.layers[static_cast<size_t>(i)];
    for (const auto& role : gemm_roles(b)) add_row("layer", i, model::block_kind_name(b.kind), role, role, i, b.kind);
  }
  if (m.mtp.depth > 0) {
    // MTP modules are selected as a whole (role "mtp"), so every row of a module has one format per pass.
    for (size_t j = 0; j < m.mtp.blocks.size(); j++) {
      const model::BlockConfig& b = m.mtp.blocks[j];
      for (const auto& role : gemm_roles(b)) {
        add_row("mtp", static_cast<int>(j), model::block_kind_name(b.kind), role, "mtp", -1, b.kind);
      }
    }
  }
  add_row("global", -1, "", "head", "head", -1, model::BlockKind::Mlp);

  json::Value policy;
  if (const json::Value* model_json = doc.document.find("model")) {
    if (const json::Value* p = model_json->find("precision")) policy = *p;
  }
  if (policy.is_null()) {
    policy = json::Value::object();
    policy.set("default", m.precision.default_format);
    policy.set("rules", json::Value::array());
  }
  json::Value out = json::Value::object();
  out.set("policy", policy);
  out.set("layers", json::Value(n));
  out.set("rows", rows);
  return out;
}

void write_run_metadata(const std::string& run_dir, const model::DocumentConfig& doc, const RunMetaFields& f) {
  io::make_dirs(run_dir);
  const std::string meta_path = io::join_path(run_dir, "run.json");
  json::Value meta;
  if (io::path_exists(meta_path)) {
    try {
      meta = json::parse(io::read_file(meta_path), meta_path);
    } catch (const json::ParseError& e) {
      throw std::runtime_error(std::string(e.what()) + " (a damaged run.json; remove it to let the engine write a new one)");
    }
    if (!meta.is_object()) throw std::runtime_error(meta_path + ": expected a JSON object");
    if (f.steps >= 0) meta.set("steps", json::Value(f.steps));
  } else {
    meta = json::Value::object();
    meta.set("runId", folder_name(run_dir));
    meta.set("kind", f.kind);
    meta.set("name", doc.model.name);
    meta.set("model", doc.model.name);
    meta.set("device", doc.pipeline.training.device);
    meta.set("createdAt", iso_utc_now());
    meta.set("steps", f.steps >= 0 ? json::Value(f.steps) : json::Value());
    if (!f.data.empty()) meta.set("data", f.data);
    if (!f.parent.empty()) meta.set("parent", f.parent);
    meta.set("engine", "strata-engine");
  }
  write_json(meta_path, meta);
  write_json(io::join_path(run_dir, "document.json"), doc.document);
  write_json(io::join_path(run_dir, "precision.json"), precision_table_json(doc));
}

}  // namespace strata::train
