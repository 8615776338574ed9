// Causal self-attention with grouped-query heads (GQA), flash-style tiled: the forward streams key
// tiles with an online softmax and never materializes a T x T matrix; it saves the per-row
// log-sum-exp, from which the backward recomputes probabilities tile by tile. Optional sliding
// window. Also: the decode step against a KV cache, and rotary position embedding (RoPE).
// QK-norm (Qwen3) is the plain RMSNorm op applied per head: view q as (B*T*H, P), weight (P).
// This file is not the QKV / output projections (those are linear layers through gemm).
//
// Shape legend: B batch, T time, H query heads, Hkv key/value heads (H % Hkv == 0),
//               P head dim, S KV-cache capacity (positions).
//   out[b,t,h] = sum_{s<=t, t-s<window} softmax_s(scale * q[b,t,h].k[b,s,h/(H/Hkv)]) v[b,s,...]
#pragma once

#include "../core/backend.h"
#include "../core/tensor.h"

namespace strata {

struct AttentionFwd {
  Tensor out;  // (B,T,H,P)
  Tensor lse;  // (B,H,T)  saved: log-sum-exp of the scaled scores per query row
  Tensor q;    // (B,T,H,P)
  Tensor k;    // (B,T,Hkv,P)
  Tensor v;    // (B,T,Hkv,P)
  float scale = 0.0f;   // 0 -> 1/sqrt(P)
  int64_t window = 0;   // 0 -> full causal; w -> keys s with t - w < s <= t
};
struct AttentionBwd {
  Tensor dq;   // (B,T,H,P)   written
  Tensor dk;   // (B,T,Hkv,P) written
  Tensor dv;   // (B,T,Hkv,P) written
  Tensor dout; // (B,T,H,P)
  Tensor q;    // (B,T,H,P)
  Tensor k;    // (B,T,Hkv,P)
  Tensor v;    // (B,T,Hkv,P)
  Tensor out;  // (B,T,H,P)
  Tensor lse;  // (B,H,T)
  float scale = 0.0f;
  int64_t window = 0;
};
// Decode one token per sequence at absolute position `position` (same for the whole batch):
// writes k_new / v_new into the cache at that position, then attends over positions 0..position.
struct AttentionDecode {
  Tensor out;      // (B,H,P)
  Tensor q;        // (B,H,P)
  Tensor k_new;    // (B,Hkv,P)
  Tensor v_new;    // (B,Hkv,P)
  Tensor k_cache;  // (B,S,Hkv,P) updated at [:, position]
  Tensor v_cache;  // (B,S,Hkv,P)
  int64_t position = 0;
  float scale = 0.0f;
  int64_t window = 0;
};

// RoPE, in place, "rotate half" convention (HF Llama/Qwen): over the first R = P*fraction dims
// (rounded down to even), pairs (i, i + R/2) rotate by angle pos * theta^(-2i/R),
// pos = position_offset + t. inverse = true rotates by -angle: that is the backward.
struct RopeArgs {
  Tensor x;  // (B,T,Hx,P) in place (q with Hx = H, or k with Hx = Hkv)
  float theta = 10000.0f;
  float fraction = 1.0f;
  int64_t position_offset = 0;
  bool inverse = false;
};

void attention_forward(Backend& backend, const AttentionFwd& args);
void attention_backward(Backend& backend, const AttentionBwd& args);
void attention_decode(Backend& backend, const AttentionDecode& args);
void rope(Backend& backend, const RopeArgs& args);

}  // namespace strata
