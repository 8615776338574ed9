// Flat C++ view of a Strata document (engine/spec/document.ts, version 2): the model with its
// repeat groups expanded into layers, the MTP spec, the precision policy and the pipeline
// (dataset, tokenizer, training recipe, evaluations, profiling), with the zod schema's defaults
// applied. Errors name the file, the layer index, its kind and the field.
//
// This is not the TypeScript validator (validate.ts stays the source of truth for the UI); it
// checks what the engine relies on (types, ranges, unknown fields, divisibility) and does not
// migrate older document versions (the TypeScript side migrates before handing documents over).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "../io/json.h"

namespace strata::model {

enum class BlockKind { Mamba2, Attention, Moe, Mlp };
const char* block_kind_name(BlockKind kind);

enum class Activation { Relu2, Swiglu, Gelu };
const char* activation_name(Activation a);

struct Mamba2Config {
  int heads = 0, head_dim = 0, d_state = 0, groups = 0, conv_kernel = 0, chunk = 0;
  bool conv_bias = true;
  bool bias = false;
  double dt_min = 0.001, dt_max = 0.1, dt_init_floor = 1e-4;
  bool has_dt_limit = false;
  double dt_limit_lo = 0, dt_limit_hi = 0;
  bool norm_before_gate = false;
  int d_inner() const { return heads * head_dim; }
  int conv_dim() const { return d_inner() + 2 * groups * d_state; }
  int in_proj_dim() const { return 2 * d_inner() + 2 * groups * d_state + heads; }
};

struct AttentionConfig {
  int heads = 0, kv_heads = 0, head_dim = 0;
  bool has_rope = false;
  double rope_theta = 10000, rope_fraction = 1;
  bool qk_norm = false;
  bool bias = false;
  int sliding_window = 0;  // 0: none
};

struct RouterConfig {
  bool sigmoid = true;  // false: softmax
  bool expert_bias = false;
  double bias_update_rate = 1e-3;
  bool norm_topk = true;
  double routed_scaling = 1;
  double aux_loss_coeff = 0;
};

struct MoeConfig {
  int experts = 0, top_k = 0, expert_ffn = 0;
  Activation activation = Activation::Relu2;
  int shared_experts = 0, shared_ffn = 0;
  RouterConfig router;
  int latent = 0;  // 0: no LatentMoE projections
  bool bias = false;
};

struct MlpConfig {
  int ffn = 0;
  Activation activation = Activation::Relu2;
  bool bias = false;
};

struct BlockConfig {
  BlockKind kind = BlockKind::Mlp;
  Mamba2Config mamba;
  AttentionConfig attention;
  MoeConfig moe;
  MlpConfig mlp;
};

struct MtpConfig {
  int depth = 0;  // 0: no MTP
  std::vector<BlockConfig> blocks;
  double loss_weight = 0.3;
  bool shared_weights = true;
};

struct PrecisionRuleConfig {
  std::vector<BlockKind> kinds;        // empty: any
  int layers_from = -1, layers_to = -1;  // -1: any
  int first_n = 0, last_n = 0;         // 0: any
  double last_percent = 0;             // 0: any
  std::vector<std::string> roles;      // empty: any
  std::vector<std::string> passes;     // "fprop" | "dgrad" | "wgrad"; empty: any
  std::string format;
};

struct PrecisionConfig {
  std::string default_format = "bf16";
  std::vector<PrecisionRuleConfig> rules;
  /**
   * The format for one GEMM: last matching rule wins, else the default. `layer` is the main-stack
   * index (-1 inside MTP modules, which only the "mtp" role selects).
   */
  std::string resolve(int layer, BlockKind kind, const std::string& role, const std::string& pass, int n_layers) const;
};

struct ModelConfig {
  std::string name;
  int vocab_size = 0;
  int d_model = 0;
  double norm_eps = 1e-5;
  bool tie_embeddings = false;
  int max_position_embeddings = 4096;
  double init_std = 0.02;
  std::vector<BlockConfig> layers;  // flattened stack
  std::vector<int> pipeline_cuts;
  MtpConfig mtp;
  PrecisionConfig precision;
  int n_layers() const { return static_cast<int>(layers.size()); }
};

enum class Schedule { Cosine, Wsd, Constant };

struct TrainConfig {
  int steps = 200, batch_size = 8, seq_len = 256, grad_accum = 1;
  double lr = 3e-3, min_lr_ratio = 0.1;
  int warmup_steps = 20;
  Schedule schedule = Schedule::Cosine;
  double decay_fraction = 0.2;
  double weight_decay = 0.1, beta1 = 0.9, beta2 = 0.95, adam_eps = 1e-8;
  double grad_clip = 1.0;
  uint64_t seed = 1234;
  int eval_every = 50, checkpoint_every = 100;
  std::string device = "cpu";
  int threads = 0;
};

struct EvalConfig {
  std::string kind = "heldout";  // heldout | nll_by_position | mqar | needle | copy
  int batches = 8;
};

struct ProfilingConfig {
  std::vector<std::string> modes{"train", "prefill", "decode"};
  std::vector<int> contexts{1024, 4096};
  int batch = 1;
  std::string hardware = "h200";
};

struct PipelineConfig {
  std::string dataset_source = "corpus";  // corpus | file | task
  std::string dataset_path;
  std::string dataset_task;
  double heldout_fraction = 0.05;
  std::string tokenizer = "byte";
  TrainConfig training;
  std::vector<EvalConfig> evaluations{EvalConfig{}};
  ProfilingConfig profiling;
};

struct DocumentConfig {
  ModelConfig model;
  PipelineConfig pipeline;
  json::Value document;  // the document as given (re-written into run folders and checkpoints)
};

/** Reads a parsed document; `source` names it in errors ("doc.json"). Throws std::runtime_error. */
DocumentConfig read_document(const json::Value& doc, const std::string& source);
/** Parses JSON text and reads it. */
DocumentConfig read_document_text(const std::string& text, const std::string& source);

}  // namespace strata::model
