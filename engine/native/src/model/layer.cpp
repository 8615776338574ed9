// Shared layer plumbing (see layer.h): the profiler and its GEMM FLOP observer, initialization
// helpers and the mixer factory. The mixers themselves live in one file per kind.
#include "layer.h"

#include "core/error.h"
#include "ops/gemm.h"
#include "tensor_util.h"

namespace strata::model {

std::unique_ptr<Mixer> make_mamba2_mixer(const BlockConfig&, const ModelConfig&, const LayerPlace&, ParamStore&, Rng&);
std::unique_ptr<Mixer> make_attention_mixer(const BlockConfig&, const ModelConfig&, const LayerPlace&, ParamStore&,
                                            Rng&);
std::unique_ptr<Mixer> make_moe_mixer(const BlockConfig&, const ModelConfig&, const LayerPlace&, ParamStore&, Rng&);
std::unique_ptr<Mixer> make_mlp_mixer(const BlockConfig&, const ModelConfig&, const LayerPlace&, ParamStore&, Rng&);

std::unique_ptr<Mixer> make_mixer(const BlockConfig& block, const ModelConfig& model, const LayerPlace& place,
                                  ParamStore& params, Rng& rng) {
  switch (block.kind) {
    case BlockKind::Mamba2: return make_mamba2_mixer(block, model, place, params, rng);
    case BlockKind::Attention: return make_attention_mixer(block, model, place, params, rng);
    case BlockKind::Moe: return make_moe_mixer(block, model, place, params, rng);
    case BlockKind::Mlp: return make_mlp_mixer(block, model, place, params, rng);
  }
  throw Error("unknown block kind");
}

// Initial values are drawn on the host (one Rng stream, identical on every backend) and uploaded.
// The generator is counter-based, so element i's draw depends only on (seed, counter + i draws): the
// elements are drawn in parallel and the stream ends where a sequential loop would leave it (a ~1B
// model draws ~1e9 normals; one thread takes ~40 s).
void init_normal(const Param& p, Rng& rng, double std) {
  const int64_t n = p.numel();
  std::vector<float> values(static_cast<size_t>(n));
  const uint64_t seed = rng.seed(), first = rng.counter();
#pragma omp parallel for schedule(static) if (n > (int64_t{1} << 16))
  for (int64_t i = 0; i < n; ++i) {
    Rng at(seed, first + 2 * static_cast<uint64_t>(i));  // normal() consumes two counters
    values[static_cast<size_t>(i)] = static_cast<float>(at.normal() * std);
  }
  rng.restore(seed, first + 2 * static_cast<uint64_t>(n));
  init_values(p, values);
}

void init_uniform(const Param& p, Rng& rng, double lo, double hi) {
  const int64_t n = p.numel();
  std::vector<float> values(static_cast<size_t>(n));
  const uint64_t seed = rng.seed(), first = rng.counter();
#pragma omp parallel for schedule(static) if (n > (int64_t{1} << 16))
  for (int64_t i = 0; i < n; ++i) {
    Rng at(seed, first + static_cast<uint64_t>(i));  // uniform() consumes one counter
    values[static_cast<size_t>(i)] = static_cast<float>(at.uniform(lo, hi));
  }
  rng.restore(seed, first + static_cast<uint64_t>(n));
  init_values(p, values);
}

void init_constant(const Param& p, float value) { init_values(p, std::vector<float>(static_cast<size_t>(p.numel()), value)); }

void init_values(const Param& p, const std::vector<float>& values) {
  STRATA_CHECK(p.backend != nullptr, "parameter ", p.name, " has no backend");
  upload_values(*p.backend, p.value, values);
}

Profiler::Profiler() {
  set_gemm_observer([this](const GemmCall& call) { add_gemm_flops(2.0 * double(call.m) * double(call.n) * double(call.k)); });
}

Profiler::~Profiler() { set_gemm_observer(nullptr); }

LayerProfile& Profiler::row(const std::string& label, int layer, const std::string& kind) {
  for (auto& r : rows_) if (r->label == label) return *r;
  auto r = std::make_unique<LayerProfile>();
  r->label = label;
  r->layer = layer;
  r->kind = kind;
  rows_.push_back(std::move(r));
  return *rows_.back();
}

void Profiler::add_gemm_flops(double flops) {
  if (!active_) return;
  (backward_ ? active_->bwd_flops : active_->fwd_flops) += flops;
}

}  // namespace strata::model
