// Mamba-2 SSD (state space duality) selective scan: the chunked forward with state passing between
// chunks, its exact backward, and the single-token recurrent step for decode.
//
// Per head h (group g = h / (H/G) supplies B and C), per time t:
//   dt_t = softplus(dt_raw_t + dt_bias)         then clamped to [dt_min, dt_max] when dt_limit set
//   A    = -exp(A_log)                           (one scalar decay rate per head)
//   h_t  = exp(dt_t A) h_{t-1} + dt_t * x_t B_t^T                 h_t is (P,N)
//   y_t  = h_t C_t + D x_t                                         y_t is (P)
// Forward (chunk length L): within a chunk the output is the quadratic "attention-like" form
//   y_t = sum_{s<=t} (C_t.B_s) exp(cum_t - cum_s) dt_s x_s + exp(cum_t) h0 C_t + D x_t,
// cum the inclusive cumulative sum of dt*A inside the chunk, h0 the state entering the chunk;
// chunk states are passed sequentially. The state entering every chunk is saved for backward, which
// differentiates exactly this computation chunk by chunk in reverse.
// This file is not the conv, the gate/norm or the projections around the scan.
//
// Shape legend: B batch, T time, H heads, P head dim, N state size, G groups (H % G == 0),
//               L chunk length, C = ceil(T / L) chunks.
#pragma once

#include "../core/backend.h"
#include "../core/tensor.h"

namespace strata {

struct SsdParams {
  int64_t chunk = 64;      // L
  bool dt_limit = false;   // clamp softplus(dt) into [dt_min, dt_max]
  float dt_min = 0.0f;
  float dt_max = 0.0f;
};

struct SsdFwd {
  Tensor y;              // (B,T,H,P)
  Tensor dt;             // (B,T,H)       saved: softplus(dt_raw + dt_bias), clamped
  Tensor chunk_states;   // (B,C,H,P,N) as (B*C,H,P,N): state entering each chunk, saved
  Tensor final_state;    // (B,H,P,N)     optional: state after the last token (for decode)
  Tensor x;              // (B,T,H,P)
  Tensor dt_raw;         // (B,T,H)
  Tensor dt_bias;        // (H)
  Tensor a_log;          // (H)
  Tensor b;              // (B,T,G,N)
  Tensor c;              // (B,T,G,N)
  Tensor d;              // (H)           optional skip
  Tensor initial_state;  // (B,H,P,N)     optional (zeros when undefined)
  SsdParams params;
};

struct SsdBwd {
  // gradients (dx, ddt_raw, db, dc written; ddt_bias, da_log, dd accumulated)
  Tensor dx;              // (B,T,H,P)
  Tensor ddt_raw;         // (B,T,H)
  Tensor ddt_bias;        // (H)
  Tensor da_log;          // (H)
  Tensor db;              // (B,T,G,N)
  Tensor dc;              // (B,T,G,N)
  Tensor dd;              // (H)          optional (when d is given)
  Tensor dinitial_state;  // (B,H,P,N)    optional: written
  // upstream
  Tensor dy;              // (B,T,H,P)
  Tensor dfinal_state;    // (B,H,P,N)    optional
  // forward inputs and saved tensors
  Tensor x;               // (B,T,H,P)
  Tensor dt_raw;          // (B,T,H)
  Tensor dt_bias;         // (H)
  Tensor a_log;           // (H)
  Tensor b;               // (B,T,G,N)
  Tensor c;               // (B,T,G,N)
  Tensor d;               // (H)          optional
  Tensor dt;              // (B,T,H)      from forward
  Tensor chunk_states;    // (B*C,H,P,N)  from forward
  SsdParams params;
};

// Decode: one token per sequence, recurrent form, state updated in place.
struct SsdStep {
  Tensor y;        // (B,H,P)
  Tensor state;    // (B,H,P,N) in/out
  Tensor x;        // (B,H,P)
  Tensor dt_raw;   // (B,H)
  Tensor dt_bias;  // (H)
  Tensor a_log;    // (H)
  Tensor b;        // (B,G,N)
  Tensor c;        // (B,G,N)
  Tensor d;        // (H) optional
  SsdParams params;
};

int64_t ssd_num_chunks(int64_t time, int64_t chunk);

void ssd_forward(Backend& backend, const SsdFwd& args);
void ssd_backward(Backend& backend, const SsdBwd& args);
void ssd_step(Backend& backend, const SsdStep& args);

}  // namespace strata
