// Schedules, gradient norm/NaN checks and AdamW state (see optimizer.h).
#include "optimizer.h"

#include <cmath>
#include <stdexcept>

#include "model/tensor_util.h"
#include "ops/adamw.h"
#include "ops/quant_gemm.h"

namespace strata::train {

double learning_rate(const model::TrainConfig& t, int64_t step, int64_t total) {
  const double peak = t.lr, floor = t.lr * t.min_lr_ratio;
  if (step < t.warmup_steps) return peak * static_cast<double>(step + 1) / static_cast<double>(t.warmup_steps);
  switch (t.schedule) {
    case model::Schedule::Constant: return peak;
    case model::Schedule::Cosine: {
      const double span = std::max<double>(1.0, static_cast<double>(total - t.warmup_steps));
      const double progress = std::min(1.0, static_cast<double>(step - t.warmup_steps) / span);
      return floor + (peak - floor) * 0.5 * (1.0 + std::cos(M_PI * progress));
    }
    case model::Schedule::Wsd: {
      const double decay_steps = std::max(1.0, std::round(t.decay_fraction * static_cast<double>(total)));
      const double decay_start = static_cast<double>(total) - decay_steps;
      if (static_cast<double>(step) < decay_start) return peak;
      const double progress = std::min(1.0, (static_cast<double>(step) - decay_start + 1.0) / decay_steps);
      return peak + (floor - peak) * progress;
    }
  }
  return peak;
}

double global_grad_norm(Backend& backend, model::ParamStore& params) {
  SumSquaresArgs a;
  for (model::Param* p : params.all()) {
    if (p->trainable) a.xs.push_back(model::view(p->grad, {p->numel()}));
  }
  double total = 0;
  a.result = &total;
  sum_squares(backend, a);
  return std::sqrt(total);
}

const model::Param* first_non_finite_grad(model::ParamStore& params) {
  for (model::Param* p : params.all()) {
    if (!p->trainable) continue;
    for (float g : model::download_values(*p->backend, p->grad)) {
      if (!std::isfinite(g)) return p;
    }
  }
  return nullptr;
}

AdamW::AdamW(model::ParamStore& params, Backend& backend) : params_(params), backend_(backend), arena_(backend) {
  for (model::Param* p : params.all()) {
    if (!p->trainable) continue;
    Slot s;
    s.param = p;
    s.m = model::alloc(arena_, "adam.m." + p->name, {p->numel()});
    s.v = model::alloc(arena_, "adam.v." + p->name, {p->numel()});
    slots_.push_back(s);
  }
}

void AdamW::step(const model::TrainConfig& t, double lr, double grad_scale) {
  step_++;
  std::vector<AdamWStep> steps;
  for (Slot& s : slots_) {
    AdamWStep a;
    a.param = model::view(s.param->value, {s.param->numel()});
    a.grad = model::view(s.param->grad, {s.param->numel()});
    a.m = s.m;
    a.v = s.v;
    a.lr = static_cast<float>(lr);
    a.beta1 = static_cast<float>(t.beta1);
    a.beta2 = static_cast<float>(t.beta2);
    a.eps = static_cast<float>(t.adam_eps);
    a.weight_decay = s.param->decay ? static_cast<float>(t.weight_decay) : 0.0f;
    a.grad_scale = static_cast<float>(grad_scale);
    a.step = step_;
    steps.push_back(a);
  }
  adamw_steps(backend_, steps);  // one op: a backend may update many tensors per launch
  quant::note_weights_changed();  // quantized weight copies of the precision hook are stale
}

io::SafetensorsFile AdamW::state() const {
  io::SafetensorsFile f;
  for (const Slot& s : slots_) {
    const std::vector<float> m = model::download_values(backend_, s.m), v = model::download_values(backend_, s.v);
    f.tensors.push_back(io::tensor_from_floats("adam.m." + s.param->name, {s.param->numel()}, m.data()));
    f.tensors.push_back(io::tensor_from_floats("adam.v." + s.param->name, {s.param->numel()}, v.data()));
  }
  f.metadata["step"] = std::to_string(step_);
  return f;
}

void AdamW::load_state(const io::SafetensorsFile& file, const std::string& label) {
  auto it = file.metadata.find("step");
  if (it == file.metadata.end()) throw std::runtime_error(label + ": missing __metadata__.step");
  try {
    step_ = std::stoll(it->second);
  } catch (const std::exception&) {
    throw std::runtime_error(label + ": __metadata__.step is not an integer");
  }
  size_t expected = 0;
  for (Slot& s : slots_) {
    for (int which = 0; which < 2; which++) {
      const std::string name = (which == 0 ? "adam.m." : "adam.v.") + s.param->name;
      const io::StoredTensor& t = file.get(name, label);
      if (t.numel() != s.param->numel() || t.dtype != io::DType::F32) {
        throw std::runtime_error(label + ": tensor " + name + " has the wrong size or dtype for this model");
      }
      backend_.upload((which == 0 ? s.m : s.v).data, t.bytes.data(), t.bytes.size());
      expected++;
    }
  }
  if (file.tensors.size() != expected) {
    throw std::runtime_error(label + ": " + std::to_string(file.tensors.size() - expected) +
                             " optimizer tensors do not belong to this model");
  }
}

}  // namespace strata::train
