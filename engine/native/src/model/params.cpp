// Parameter store (see params.h): allocation, lookup, HF-named safetensors import/export with
// per-expert splitting. Not the optimizer and not initialization.
#include "params.h"

#include <set>
#include <stdexcept>

#include "core/error.h"
#include "ops/quant_gemm.h"
#include "tensor_util.h"

namespace strata::model {

namespace {
// "backbone.layers.3.mixer.experts.up_proj" -> ("backbone.layers.3.mixer.experts", "up_proj")
std::pair<std::string, std::string> split_expert_name(const std::string& name) {
  size_t dot = name.find_last_of('.');
  return {name.substr(0, dot), name.substr(dot + 1)};
}

std::string shape_text(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); i++) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}
}  // namespace

int64_t Param::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::vector<std::string> Param::disk_names() const {
  if (!split_experts) return {name};
  auto [prefix, suffix] = split_expert_name(name);
  std::vector<std::string> out;
  for (int64_t e = 0; e < shape[0]; e++) out.push_back(prefix + "." + std::to_string(e) + "." + suffix + ".weight");
  return out;
}

Param& ParamStore::add(const std::string& name, const std::vector<int64_t>& shape, const std::string& role, int layer,
                       bool decay, bool trainable) {
  STRATA_CHECK(find(name) == nullptr, "parameter ", name, " defined twice");
  Param p;
  p.name = name;
  p.shape = shape;
  p.role = role;
  p.layer = layer;
  p.decay = decay;
  p.trainable = trainable;
  std::vector<int64_t> flat_shape = shape;
  if (flat_shape.size() > 4) throw Error("parameter " + name + ": rank above 4");
  p.backend = &arena_.backend();
  p.value = alloc(arena_, name, flat_shape);
  p.backend->note_parameter_memory(p.value.data, sizeof(float) * static_cast<size_t>(p.value.numel()));
  p.grad = alloc(arena_, name + ".grad", flat_shape);
  params_.push_back(std::move(p));
  quant::note_weights_changed();  // new memory may reuse an address a precision hook has cached
  return params_.back();
}

Param* ParamStore::find(const std::string& name) {
  for (auto& p : params_) if (p.name == name) return &p;
  return nullptr;
}
const Param* ParamStore::find(const std::string& name) const {
  for (const auto& p : params_) if (p.name == name) return &p;
  return nullptr;
}
Param& ParamStore::get(const std::string& name) {
  Param* p = find(name);
  if (!p) throw Error("no parameter named " + name);
  return *p;
}

std::vector<Param*> ParamStore::all() {
  std::vector<Param*> out;
  for (auto& p : params_) out.push_back(&p);
  return out;
}
std::vector<const Param*> ParamStore::all() const {
  std::vector<const Param*> out;
  for (const auto& p : params_) out.push_back(&p);
  return out;
}

int64_t ParamStore::count() const {
  int64_t n = 0;
  for (const auto& p : params_) n += p.numel();
  return n;
}
int64_t ParamStore::trainable_count() const {
  int64_t n = 0;
  for (const auto& p : params_) if (p.trainable) n += p.numel();
  return n;
}

void ParamStore::zero_grads() {
  std::vector<std::pair<void*, std::size_t>> ranges;
  for (auto& p : params_) ranges.emplace_back(p.grad.data, sizeof(float) * static_cast<size_t>(p.numel()));
  arena_.backend().fill_zero_ranges(ranges);  // one op for the whole list where the backend can
}

io::SafetensorsFile ParamStore::to_safetensors(bool gradients, io::DType dtype) const {
  io::SafetensorsFile file;
  for (const auto& p : params_) {
    const std::vector<float> host = download_values(arena_.backend(), gradients ? p.grad : p.value);
    const float* data = host.data();
    if (!p.split_experts) {
      file.tensors.push_back(io::tensor_from_floats(p.name, p.shape, data, dtype));
      continue;
    }
    std::vector<int64_t> one(p.shape.begin() + 1, p.shape.end());
    int64_t per = p.numel() / p.shape[0];
    auto names = p.disk_names();
    for (int64_t e = 0; e < p.shape[0]; e++) {
      file.tensors.push_back(io::tensor_from_floats(names[static_cast<size_t>(e)], one, data + e * per, dtype));
    }
  }
  return file;
}

namespace {
// HF transformers >= 5 saves "model." where checkpoints on the Hub say "backbone.".
const io::StoredTensor* find_alias(const io::SafetensorsFile& file, const std::string& name) {
  if (const io::StoredTensor* t = file.find(name)) return t;
  if (name.rfind("backbone.", 0) == 0) return file.find("model." + name.substr(9));
  return nullptr;
}
}  // namespace

void ParamStore::load_safetensors(const io::SafetensorsFile& file, const std::string& label,
                                  const std::vector<std::string>& ignore_prefixes) {
  quant::note_weights_changed();  // also when a bad tensor below stops the load half way
  std::set<std::string> used;
  Backend& backend = arena_.backend();
  auto take = [&](const io::StoredTensor& t, const std::vector<int64_t>& want, float* dst) {
    if (t.shape != want) {
      throw std::runtime_error(label + ": tensor " + t.name + " has shape " + shape_text(t.shape) + ", expected " +
                               shape_text(want));
    }
    std::vector<float> values = t.to_float();
    backend.upload(dst, values.data(), sizeof(float) * values.size());
    used.insert(t.name);
  };
  for (auto& p : params_) {
    if (p.split_experts) {
      // One merged (E, O, I) tensor (transformers' in-memory layout) or E per-expert tensors.
      if (const io::StoredTensor* merged = find_alias(file, p.name)) {
        take(*merged, p.shape, p.value.data);
        continue;
      }
      std::vector<int64_t> want(p.shape.begin() + 1, p.shape.end());
      const int64_t per = p.numel() / p.shape[0];
      auto names = p.disk_names();
      for (size_t e = 0; e < names.size(); e++) {
        const io::StoredTensor* t = find_alias(file, names[e]);
        if (!t) throw std::runtime_error(label + ": missing tensor " + names[e]);
        take(*t, want, p.value.data + static_cast<int64_t>(e) * per);
      }
      continue;
    }
    const io::StoredTensor* t = find_alias(file, p.name);
    if (!t) throw std::runtime_error(label + ": missing tensor " + p.name);
    take(*t, p.shape, p.value.data);
  }
  for (const auto& t : file.tensors) {
    if (used.count(t.name)) continue;
    bool ignored = false;
    for (const auto& prefix : ignore_prefixes) ignored = ignored || t.name.rfind(prefix, 0) == 0;
    if (!ignored) throw std::runtime_error(label + ": unexpected tensor " + t.name + " (not a parameter of this model)");
  }
  quant::note_weights_changed();
}

}  // namespace strata::model
