// The dense feed-forward network used by the `mlp` mixer and by the MoE layer's shared experts:
// out = down_proj(act(up_proj(x))), with its parameters, forward and backward.
// This is not the routed-expert path (moe_layer.cpp uses grouped GEMMs for that).
#pragma once

#include <string>

#include "config.h"
#include "core/arena.h"
#include "core/backend.h"
#include "layer.h"
#include "ops/activation.h"
#include "params.h"
#include "rng.h"

namespace strata::model {

ActivationKind activation_kind(Activation a);

class DenseFfn {
 public:
  /** Registers `prefix`up_proj.weight / down_proj.weight (and biases) and initializes them. */
  DenseFfn(const std::string& prefix, int64_t d_model, int64_t ffn, Activation act, bool bias, double init_std,
           const char* role_fc1, const char* role_fc2, int layer, ParamStore& params, Rng& rng);

  /** x (M, D) -> (M, D); saves inputs for backward. */
  Tensor forward(Backend& backend, Arena& arena, const std::string& label, const Tensor& x);
  /** Writes (or accumulates into) dx (M, D); accumulates parameter gradients. */
  void backward(Backend& backend, Arena& arena, const std::string& label, const Tensor& dout, const Tensor& dx,
                bool accumulate_dx);

 private:
  int64_t d_model_, ffn_;
  Activation act_;
  const char* role_fc1_;
  const char* role_fc2_;
  int layer_;
  Param *up_ = nullptr, *down_ = nullptr, *up_b_ = nullptr, *down_b_ = nullptr;
  Tensor x_, h_, a_;
};

}  // namespace strata::model
