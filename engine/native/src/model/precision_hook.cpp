// GEMM precision hook (see precision_hook.h).
#include "precision_hook.h"

#include <cstdlib>

#include <set>
#include <stdexcept>

#include "ops/gemm.h"
#include "ops/quant.h"

namespace strata::model {

namespace {

const char* pass_text(GemmPass p) {
  switch (p) {
    case GemmPass::Fprop: return "fprop";
    case GemmPass::Dgrad: return "dgrad";
    case GemmPass::Wgrad: return "wgrad";
    default: return "";
  }
}

bool is_policy_role(const std::string& role) {
  static const char* roles[] = {"embedding",       "head",           "mamba.in_proj",   "mamba.out_proj",
                                "attention.qkv",   "attention.o",    "mlp.fc1",         "mlp.fc2",
                                "moe.router",      "moe.expert_fc1", "moe.expert_fc2",  "moe.latent_down",
                                "moe.latent_up",   "moe.shared_fc1", "moe.shared_fc2",  "mtp"};
  for (const char* r : roles) if (role == r) return true;
  return false;
}

}  // namespace

std::vector<std::string> roles_of(BlockKind kind, const BlockConfig& block) {
  switch (kind) {
    case BlockKind::Mamba2: return {"mamba.in_proj", "mamba.out_proj"};
    case BlockKind::Attention: return {"attention.qkv", "attention.o"};
    case BlockKind::Mlp: return {"mlp.fc1", "mlp.fc2"};
    case BlockKind::Moe: {
      std::vector<std::string> r = {"moe.router", "moe.expert_fc1", "moe.expert_fc2"};
      if (block.moe.latent > 0) {
        r.push_back("moe.latent_down");
        r.push_back("moe.latent_up");
      }
      if (block.moe.shared_experts > 0) {
        r.push_back("moe.shared_fc1");
        r.push_back("moe.shared_fc2");
      }
      return r;
    }
  }
  return {};
}

PrecisionHook::PrecisionHook(const ModelConfig& model, uint64_t seed, bool host_tensors)
    : model_(model), host_tensors_(host_tensors) {
  const int n = model.n_layers();
  const char* passes[] = {"fprop", "dgrad", "wgrad"};
  std::set<std::string> formats;
  for (int i = 0; i < n; i++) {
    const BlockConfig& b = model.layers[static_cast<size_t>(i)];
    for (const auto& role : roles_of(b.kind, b)) {
      for (const char* p : passes) formats.insert(model.precision.resolve(i, b.kind, role, p, n));
    }
  }
  for (const char* role : {"head", "mtp"}) {
    for (const char* p : passes) formats.insert(model.precision.resolve(-1, BlockKind::Mlp, role, p, n));
  }
  formats_.assign(formats.begin(), formats.end());
  active_ = formats.size() > 1 || (formats.size() == 1 && *formats.begin() != "fp32");
  // STRATA_CUDA_GEMM is the device backends' A/B switch: set, the device multiplies every GEMM in
  // that mode and the policy is not applied there (what train/device.cpp tells the user).
  device_mode_forced_ = !host_tensors && std::getenv("STRATA_CUDA_GEMM") != nullptr;
  if (!active_ || device_mode_forced_) return;
  const ModelConfig* cfg = &model_;
  quant::FormatResolver resolver = [cfg](const GemmTag& tag) {
    const std::string role = tag.role ? tag.role : "";
    const char* pass = pass_text(tag.pass);
    if (!*pass || !is_policy_role(role)) return quant::Format::Fp32;
    const int n_layers = cfg->n_layers();
    const int layer = tag.layer;
    const BlockKind kind = layer >= 0 && layer < n_layers ? cfg->layers[static_cast<size_t>(layer)].kind : BlockKind::Mlp;
    const std::string name = cfg->precision.resolve(layer, kind, role, pass, n_layers);
    auto format = quant::parse_format(name);
    if (!format) throw std::runtime_error("precision: unknown format " + name);
    return *format;
  };
  gemm_ = std::make_unique<quant::GemmPrecision>(resolver, seed);
  gemm_->install();
}

PrecisionHook::~PrecisionHook() {
  if (gemm_) gemm_->uninstall();
}

void PrecisionHook::begin_step(int64_t step, bool inspect) {
  if (gemm_) gemm_->begin_step(step, inspect);
}

std::vector<json::Value> PrecisionHook::take_inspection_events(double t_seconds) {
  std::vector<json::Value> out;
  if (!gemm_) return out;
  for (const auto& record : gemm_->take_inspections()) {
    out.push_back(json::parse(quant::inspection_event_json(record, t_seconds), "precision inspection event"));
  }
  return out;
}

json::Value PrecisionHook::table_event(json::Value event) const {
  const int n = model_.n_layers();
  json::Value layers = json::Value::array();
  auto row_for = [&](int layer, BlockKind kind, const std::vector<std::string>& roles, const char* kind_name) {
    json::Value row = json::Value::object();
    row.set("layer", json::Value(layer));
    row.set("kind", kind_name);
    json::Value r = json::Value::object();
    for (const auto& role : roles) {
      json::Value passes = json::Value::object();
      for (const char* p : {"fprop", "dgrad", "wgrad"}) passes.set(p, model_.precision.resolve(layer, kind, role, p, n));
      r.set(role, passes);
    }
    row.set("roles", r);
    return row;
  };
  for (int i = 0; i < n; i++) {
    const BlockConfig& b = model_.layers[static_cast<size_t>(i)];
    layers.push_back(row_for(i, b.kind, roles_of(b.kind, b), block_kind_name(b.kind)));
  }
  layers.push_back(row_for(-1, BlockKind::Mlp, {"head"}, "head"));
  if (model_.mtp.depth > 0) layers.push_back(row_for(-1, BlockKind::Mlp, {"mtp"}, "mtp"));
  event.set("table", layers);
  // true: every format is quantize-dequantize around fp32 GEMMs on the host (CPU engine); false: a
  // device backend, which multiplies bf16 and fp8_e4m3 cells natively and quantize-dequantizes the
  // others on the device before a bf16 GEMM (ops/quant_gemm.h)
  event.set("emulated", json::Value(host_tensors_));
  return event;
}

}  // namespace strata::model
