// The whole language model: token embedding, the flattened stack of residual blocks, final
// RMSNorm, LM head (tied or untied), cross-entropy, and the MTP modules (DeepSeek-V3 / Megatron
// style). Forward + backward of one micro-batch, forward-only evaluation, and decoding (prefill,
// constant-size Mamba state + KV-cache steps, multi-token verification chunks that can be rewound,
// MTP drafting with its own caches).
//
// MTP module k (1..depth; one shared module when shared_weights) at position t:
//   h_k = blocks(eh_proj([RMSNorm_e(emb(x_{t+k})) ; RMSNorm_h(h_{k-1})]))   (Megatron order: emb first)
//   logits_k = head(final_layernorm(h_k)) predicts x_{t+1+k};  h_0 = main stack output before norm_f.
// Objective = CE_main + loss_weight / depth * sum_k CE_k + sum of MoE aux losses.
// Parameter names: backbone.embeddings.weight, backbone.layers.{i}.*, backbone.norm_f.weight,
// lm_head.weight (absent when tied), mtp.layers.{m}.{enorm,hnorm,eh_proj,final_layernorm}.weight,
// mtp.layers.{m}.blocks.{j}.* (HF transformers ignores mtp.* on load).
// This is not the optimizer, the data loader or the run loop (train/).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "block.h"
#include "config.h"
#include "core/arena.h"
#include "core/backend.h"
#include "params.h"

namespace strata::model {

constexpr int32_t kIgnoreIndex = -100;

/** B sequences of T+1 tokens: inputs are tokens[0..T), targets tokens[1..T]. */
struct Batch {
  int64_t batch = 0;  // B
  int64_t time = 0;   // T
  std::vector<int32_t> tokens;  // B * (T + 1)
  std::vector<uint8_t> mask;    // B * (T + 1) or empty; mask[i] = 1: token i counts as a target
};

struct ForwardResult {
  double objective = 0;   // what gradients are of (for this micro-batch)
  double main_loss = 0;   // mean CE of the main head over counted targets
  int64_t main_tokens = 0;
  std::vector<double> mtp_losses;  // mean CE per depth
  double aux_loss = 0;
  Tensor logits;        // (B*T, V) main-head logits (live until the arena is cleared)
  Tensor token_losses;  // (B*T) per-position CE (0 where not counted)
  std::vector<int32_t> targets;  // (B*T) target ids or kIgnoreIndex
};

struct DecodeGraph;  // a recorded greedy decode step (model.cpp)

/** Decode state for B sequences: one cache per main-stack layer. */
struct DecodeState {
  explicit DecodeState(Backend& backend);
  ~DecodeState();
  Arena arena;
  std::vector<MixerCache> caches;
  int64_t batch = 0, capacity = 0, position = 0;
  int64_t history_tokens = 0;   // most tokens one decode_chunk() may take (0: none)
  int64_t chunk_start = -1;     // position of the last decode_chunk() while it can be rewound
  int64_t chunk_tokens = 0;
  // Greedy decoding on the device (Model::decode_greedy): the next step's input ids, which the
  // last step's argmax wrote, their host copy, and the step recorded as a CUDA graph.
  TensorI32 greedy_ids;  // (B)
  std::vector<int32_t> greedy_host;
  std::unique_ptr<DecodeGraph> graph;
  int64_t greedy_steps = 0;
  bool graph_refused = false;  // recording failed once: op by op from then on
};

/**
 * State of MTP drafting during decoding: per MTP depth k, decode caches of its module's blocks
 * holding the positions whose input token x_{t+k} is decided ("committed"), and the committed
 * outputs h_k that depth k+1 reads. Positions whose inputs are still drafts are run on top and
 * rewound each round.
 */
struct MtpDecodeState {
  explicit MtpDecodeState(Backend& backend) : arena(backend) {}
  Arena arena;
  std::vector<std::vector<MixerCache>> caches;  // [depth - 1][block]
  std::vector<int64_t> committed;                // [depth - 1]: positions 0..committed-1 are in the caches
  std::vector<std::vector<float>> outputs;       // [depth - 1]: committed h_k rows (committed x D)
};

class Model {
 public:
  Model(const ModelConfig& config, Backend& backend, uint64_t seed);

  const ModelConfig& config() const { return config_; }
  ParamStore& params() { return params_; }
  const ParamStore& params() const { return params_; }
  Backend& backend() { return *backend_; }
  Profiler* profiler() { return profiler_; }
  void set_profiler(Profiler* p) { profiler_ = p; }

  /**
   * Forward of one micro-batch. Activations stay saved (in `acts`) for backward(); `for_backward`
   * marks a training forward, whose MoE expert loads count toward the next bias update.
   */
  ForwardResult forward(Arena& acts, const Batch& batch, bool with_mtp, bool for_backward);
  /** Backward of the last forward(for_backward = true); gradients are scaled by loss_scale. */
  void backward(Arena& acts, float loss_scale);
  /** MoE aux-loss-free bias updates (call once per optimizer step). */
  void update_expert_biases();
  /**
   * Rows per chunk of the LM head in a training forward: 0 (the default) chunks only when one
   * head's logits (B*T x V floats) would pass kHeadChunkBytes; a positive count always chunks (tests).
   * A chunked head never holds all logits: each chunk's logits, CE and gradient are done in forward
   * (ForwardResult::logits is then undefined), and backward() scales them by its loss_scale.
   */
  void set_head_chunk_rows(int64_t rows) { head_chunk_rows_ = rows; }
  /** Rows per head chunk for a training forward of M rows (0: the whole head at once). */
  int64_t head_chunk_rows(int64_t M) const;
  static constexpr int64_t kHeadChunkBytes = int64_t{4} << 30;  // 4 GiB: e.g. 8k tokens of a 131k vocabulary

  // ---- decoding ----
  /** Empty caches for `batch` sequences of `capacity` positions; chunks of up to `history_tokens` can be rewound. */
  std::unique_ptr<DecodeState> start_decode(int64_t batch, int64_t capacity, int64_t history_tokens = 0);
  /**
   * Runs `tokens` (B x T, from position 0) through the stack, filling the caches. Writes the
   * logits of every position (B*T*V) and, when asked, the final hidden states before norm_f.
   */
  void prefill(DecodeState& state, Arena& scratch, const std::vector<int32_t>& tokens, int64_t T,
               std::vector<float>& logits, std::vector<float>* hidden);
  /** One token per sequence at state.position: writes logits (B*V) and optionally hidden (B*D). */
  void decode_step(DecodeState& state, Arena& scratch, const std::vector<int32_t>& tokens, std::vector<float>& logits,
                   std::vector<float>* hidden);
  /**
   * `n` tokens per sequence (tokens[b*n + t]) from state.position in one pass: every layer runs its
   * projections over all B*n rows and its recurrence (Mamba state, KV cache) token by token, so row
   * t's logits equal those of t+1 single decode_step() calls bit for bit. Writes logits (B*n*V) and
   * optionally the hidden states before norm_f (B*n*D); advances the position by n and keeps what
   * rewind_decode() needs (n <= state.history_tokens).
   */
  void decode_chunk(DecodeState& state, Arena& scratch, const std::vector<int32_t>& tokens, int64_t n,
                    std::vector<float>& logits, std::vector<float>* hidden);
  /** Keeps the first `keep` tokens (0..n) of the last decode_chunk(): Mamba states restored, KV positions dropped. */
  void rewind_decode(DecodeState& state, int64_t keep);
  /**
   * One greedy step for B sequences: tokens (B ids at state.position) in, each row's argmax out.
   * The logits never leave the device; only the B ids do (the one wait of the step), and ids equal
   * to the last step's output are not uploaded again. With decode graphs on (the default), the
   * state's second greedy step is recorded as a CUDA graph and later steps replay it, running the
   * position-dependent attention work between the recorded pieces; where recording is not
   * possible the steps run op by op (said once per process on stderr). A recording keeps the
   * backend settings it was made with (e.g. the CUDA GEMM mode): start a new state after changing them.
   */
  std::vector<int32_t> decode_greedy(DecodeState& state, const std::vector<int32_t>& tokens);
  void set_decode_graphs(bool on) { decode_graphs_ = on; }

  /** MTP drafting caches for one sequence of up to `capacity` positions. */
  std::unique_ptr<MtpDecodeState> start_mtp_decode(int64_t capacity);
  /**
   * MTP greedy drafts for one sequence: seq = x_0..x_P (x_P is decided, not yet run by the main
   * stack), hidden = main-stack outputs for positions 0..P-1 (P x D). Advances each depth's caches
   * over the positions decided since the last call and returns `depth` drafts for x_{P+1}..x_{P+depth}.
   */
  std::vector<int32_t> mtp_draft(MtpDecodeState& state, Arena& scratch, const std::vector<int32_t>& seq,
                                 const std::vector<float>& hidden);
  bool has_mtp() const { return config_.mtp.depth > 0; }

 private:
  struct MtpModule {
    Param *enorm = nullptr, *hnorm = nullptr, *eh_proj = nullptr, *final_norm = nullptr;
    std::vector<std::unique_ptr<Block>> blocks;
  };
  struct MtpSaved {
    TensorI32 ids, targets;
    Tensor e, en, e_rstd, hprev, hn, h_rstd, cat, x, h_out, hf, hf_rstd, logits, lse;
    Tensor dhf;  // chunked head: d(loss)/d(hf) with loss_scale 1 (logits undefined)
    int64_t valid = 0;
  };
  struct MainSaved {
    TensorI32 ids, targets;
    Tensor h_final, hf, hf_rstd, logits, lse;
    Tensor dhf;  // chunked head: d(loss)/d(hf) with loss_scale 1 (logits undefined)
    int64_t valid = 0;
    int64_t batch = 0, time = 0;
  };

  Param& head_weight() { return lm_head_ ? *lm_head_ : *embed_; }
  MtpModule& module_for_depth(int k) { return mtp_modules_[config_.mtp.shared_weights ? 0 : k - 1]; }
  Tensor run_mtp_blocks(StepContext& ctx, MtpModule& module, const Tensor& x, bool profile);
  /** eh_proj([enorm(emb(ids)); hnorm(hprev)]) of MTP depth k into s.x (and what backward needs). */
  void mtp_input(StepContext& ctx, int k, const Tensor& hprev, const TensorI32& ids, MtpSaved& s);
  /** MTP depth k up to its final norm (s.hf), then its logits unless a chunked head makes them. */
  void mtp_forward_depth(StepContext& ctx, int k, const Tensor& hprev, const TensorI32& ids, MtpSaved& s,
                         bool with_logits);
  void decode_tokens(DecodeState& state, Arena& scratch, const std::vector<int32_t>& tokens, int64_t n, bool record,
                     std::vector<float>& logits, std::vector<float>* hidden);
  Tensor head_logits(StepContext& ctx, const Tensor& hf, const std::string& label);
  /**
   * A training head in row chunks (see set_head_chunk_rows): per chunk the logits (rows x V), their CE
   * into losses / lse, and at once their gradient at `weight` / valid into dhf (M, D) and into
   * head_dw_; returns the sum of the losses. `valid` counts host_targets that are not ignored.
   */
  double chunked_head(StepContext& ctx, const std::string& label, const Tensor& hf, const TensorI32& targets,
                      const std::vector<int32_t>& host_targets, float weight, int64_t rows, Tensor& losses,
                      Tensor& lse, int64_t& valid, Tensor& dhf);
  /** Checks the ids against the vocabulary, uploads them and embeds them: (M, D) named `<prefix>.embedding`. */
  Tensor embed_tokens(Arena& scratch, const std::vector<int32_t>& tokens, const std::string& prefix);
  /** Embeds ids already on the backend (checked by the caller): (M, D). */
  Tensor embed_ids(Arena& scratch, const TensorI32& ids, const std::string& prefix);
  /** The body of a greedy step: state.greedy_ids -> stack -> norm_f -> head -> argmax into state.greedy_ids. */
  void greedy_body(StepContext& ctx, DecodeState& state);
  /** Records the greedy step and runs it; false (state untouched) when recording failed. */
  bool record_greedy_step(DecodeState& state);
  /** Final norm and LM head of the last hidden states h (M, D) into `logits` (and h into `hidden`). */
  void decode_logits(StepContext& ctx, const Tensor& h, const std::string& prefix, std::vector<float>& logits,
                     std::vector<float>* hidden);

  ModelConfig config_;
  Backend* backend_;
  ParamStore params_;
  Param *embed_ = nullptr, *norm_f_ = nullptr, *lm_head_ = nullptr;
  std::vector<std::unique_ptr<Block>> layers_;
  std::vector<MtpModule> mtp_modules_;
  Profiler* profiler_ = nullptr;
  bool decode_graphs_ = true;
  int64_t head_chunk_rows_ = 0;
  // saved by forward for backward
  Tensor head_dw_;  // chunked head: the LM head weight's gradient of this forward, loss_scale 1
  MainSaved main_;
  std::vector<MtpSaved> mtp_saved_;
  bool mtp_in_last_forward_ = false;
  StepContext last_ctx_;
};

}  // namespace strata::model
