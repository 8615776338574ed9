// Pointwise activations of MLPs and experts, forward and backward:
//   relu2(x)   = max(x, 0)^2                         (Nemotron MLPs and experts)
//   gelu(x)    = x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2))   (exact erf form, not tanh)
//   silu(x)    = x * sigmoid(x)
//   softplus(x)= log(1 + exp(x))                     (stable: x > 20 -> x)
//   swiglu     : input (M, 2F) laid out [gate | up] per row -> silu(gate) * up, output (M, F)
// This file is not the gated RMSNorm (gated_rmsnorm.h) nor the conv's fused SiLU (conv1d.h).
//
// Shape legend: M rows, F features (output width).
#pragma once

#include "../core/backend.h"
#include "../core/tensor.h"

namespace strata {

enum class ActivationKind { Relu2, Gelu, Silu, Softplus, Swiglu };
const char* activation_name(ActivationKind kind);
// Parses "relu2" | "gelu" | "silu" | "softplus" | "swiglu"; raises on anything else.
ActivationKind parse_activation(const char* name);

struct ActivationFwd {
  ActivationKind kind = ActivationKind::Relu2;
  Tensor y;  // (M,F)
  Tensor x;  // (M,F), or (M,2F) for swiglu
};
struct ActivationBwd {
  ActivationKind kind = ActivationKind::Relu2;
  Tensor dx;  // (M,F), or (M,2F) for swiglu; written
  Tensor dy;  // (M,F)
  Tensor x;   // (M,F), or (M,2F) for swiglu: the forward input
};

void activation_forward(Backend& backend, const ActivationFwd& args);
void activation_backward(Backend& backend, const ActivationBwd& args);

}  // namespace strata
