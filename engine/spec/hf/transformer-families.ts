// Hugging Face configs of pure Transformer families to Strata models: `llama`, `qwen3` (dense,
// QK-norm), `qwen3_moe` (QK-norm, softmax-routed SwiGLU experts, optional dense layers) and
// `mixtral` (softmax-routed SwiGLU experts). One HF decoder layer (attention + feed-forward, each
// with its own pre-norm and residual) becomes two Strata blocks: an attention block, then an MLP or
// MoE block. RoPE theta is read from `rope_parameters.rope_theta` (transformers 5) or `rope_theta`.
//
// Not handled (an error naming the field, or a note when the design is otherwise exact): RoPE
// scaling (noted: Strata uses plain RoPE), per-layer sliding windows, non-SiLU gated MLPs.
//
// Not here: nemotron_h (nemotron-h.ts), mamba2 (mamba2.ts), dispatch and validation (index.ts).
import { type AttentionBlock, type Block, type MlpBlock, type MoeBlock, type ModelSpecInput } from '../document.js';
import { compressBlocks } from '../megatron-pattern.js';
import { ConfigReader, type HfConfig } from './config-reader.js';
import { type ImportResult } from './nemotron-h.js';

/** How a family differs, with transformers' defaults for fields a config may leave out. */
interface FamilyTraits {
  qkNorm: boolean;
  defaultRopeTheta: number;
  defaultNormEps: number;
  defaultMaxPositions: number;
  /** head_dim when absent; null: hidden_size / num_attention_heads. */
  defaultHeadDim: number | null;
}

const LLAMA: FamilyTraits = { qkNorm: false, defaultRopeTheta: 10000, defaultNormEps: 1e-6, defaultMaxPositions: 2048, defaultHeadDim: null };
const QWEN3: FamilyTraits = { qkNorm: true, defaultRopeTheta: 10000, defaultNormEps: 1e-6, defaultMaxPositions: 32768, defaultHeadDim: 128 };
const QWEN3_MOE: FamilyTraits = { ...QWEN3, defaultHeadDim: null };
const MIXTRAL: FamilyTraits = { qkNorm: false, defaultRopeTheta: 1e6, defaultNormEps: 1e-5, defaultMaxPositions: 131072, defaultHeadDim: null };

function gatedActivation(r: ConfigReader): 'swiglu' {
  const act = r.string('hidden_act', 'silu');
  if (act !== 'silu') r.fail('hidden_act', `"${act}" is not supported (gated MLPs must use silu, i.e. SwiGLU)`);
  return 'swiglu';
}

function ropeTheta(r: ConfigReader, fallback: number, notes: string[]): number {
  const params = r.object('rope_parameters');
  if (params) {
    const theta = params.rope_theta;
    if (typeof theta !== 'number' || !(theta > 0)) r.fail('rope_parameters.rope_theta', `expected a positive number, got ${JSON.stringify(theta)}`);
    const type = params.rope_type;
    if (type !== undefined && type !== 'default') notes.push(`rope_parameters.rope_type "${String(type)}" is not modeled; Strata uses plain RoPE`);
    return theta;
  }
  const scaling = r.object('rope_scaling');
  if (scaling) notes.push(`rope_scaling ${JSON.stringify(scaling)} is not modeled; Strata uses plain RoPE`);
  return r.number('rope_theta', fallback, { positive: true });
}

function attentionBlock(r: ConfigReader, hidden: number, traits: FamilyTraits, notes: string[]): AttentionBlock {
  const heads = r.int('num_attention_heads');
  const headDim = r.int('head_dim', traits.defaultHeadDim ?? Math.floor(hidden / heads));
  if (!r.has('head_dim') && traits.defaultHeadDim === null && hidden % heads !== 0)
    r.fail('num_attention_heads', `${heads} does not divide hidden_size ${hidden} and head_dim is not given`);
  const fraction = r.number('partial_rotary_factor', 1, { positive: true });
  if (fraction > 1) r.fail('partial_rotary_factor', `${fraction} is larger than 1`);
  let slidingWindow: number | null = null;
  if (r.has('use_sliding_window')) {
    if (r.bool('use_sliding_window')) r.fail('use_sliding_window', 'per-layer sliding windows (max_window_layers) are not supported');
  } else {
    slidingWindow = r.optionalInt('sliding_window');
  }
  const layerTypes = r.stringList('layer_types');
  const other = layerTypes?.findIndex((t) => t !== 'full_attention') ?? -1;
  if (layerTypes && other >= 0) r.fail(`layer_types[${other}]`, `${JSON.stringify(layerTypes[other])} is not supported (only full_attention)`);
  return {
    kind: 'attention',
    heads,
    kv_heads: r.int('num_key_value_heads', heads),
    head_dim: headDim,
    rope: { theta: ropeTheta(r, traits.defaultRopeTheta, notes), fraction },
    qk_norm: traits.qkNorm,
    bias: r.bool('attention_bias', false),
    sliding_window: slidingWindow,
  };
}

function denseMlp(r: ConfigReader): MlpBlock {
  return { kind: 'mlp', ffn: r.int('intermediate_size'), activation: gatedActivation(r), bias: r.bool('mlp_bias', false) };
}

function baseModel(r: ConfigReader, name: string, traits: FamilyTraits, blocks: Block[]): ModelSpecInput {
  return {
    name,
    vocab_size: r.int('vocab_size'),
    d_model: r.int('hidden_size'),
    norm_eps: r.number('rms_norm_eps', traits.defaultNormEps, { positive: true }),
    tie_embeddings: r.bool('tie_word_embeddings', false),
    max_position_embeddings: r.int('max_position_embeddings', traits.defaultMaxPositions),
    init_std: r.number('initializer_range', 0.02, { positive: true }),
    stack: compressBlocks(blocks),
    pipeline_cuts: [],
    mtp: null,
  };
}

function layerCount(r: ConfigReader): number {
  return r.int('num_hidden_layers');
}

function dense(config: HfConfig, file: string, name: string, traits: FamilyTraits): ImportResult {
  const r: ConfigReader = new ConfigReader(config, file);
  const notes: string[] = [];
  const hidden = r.int('hidden_size');
  const attention = attentionBlock(r, hidden, traits, notes);
  const mlp = denseMlp(r);
  const blocks: Block[] = [];
  for (let i = 0; i < layerCount(r); i++) blocks.push(structuredClone(attention), structuredClone(mlp));
  return { model: baseModel(r, name, traits, blocks), notes, understood: r.understood };
}

/** `llama` (also fits Mistral-style dense configs with model_type llama). */
export function importLlama(config: HfConfig, file: string, name: string): ImportResult {
  return dense(config, file, name, LLAMA);
}

/** `qwen3`: llama layout plus per-head RMSNorm on q and k. */
export function importQwen3(config: HfConfig, file: string, name: string): ImportResult {
  return dense(config, file, name, QWEN3);
}

function softmaxMoe(r: ConfigReader, expertsField: string, ffnField: string, normTopk: boolean | undefined): MoeBlock {
  const experts = r.int(expertsField);
  return {
    kind: 'moe',
    experts,
    top_k: r.int('num_experts_per_tok'),
    expert_ffn: r.int(ffnField),
    activation: gatedActivation(r),
    shared_experts: 0,
    shared_ffn: 0,
    router: {
      type: 'softmax',
      expert_bias: false,
      bias_update_rate: 1e-3,
      norm_topk: normTopk ?? r.bool('norm_topk_prob', false),
      routed_scaling: 1,
      aux_loss_coeff: r.number('router_aux_loss_coef', 0.001),
    },
    latent: null,
    bias: false,
  };
}

/** `qwen3_moe`: MoE layers where `(i+1) % decoder_sparse_step == 0` and i is not in `mlp_only_layers`. */
export function importQwen3Moe(config: HfConfig, file: string, name: string): ImportResult {
  const traits = QWEN3_MOE;
  const r: ConfigReader = new ConfigReader(config, file);
  const notes: string[] = [];
  const hidden = r.int('hidden_size');
  const attention = attentionBlock(r, hidden, traits, notes);
  const moe = softmaxMoe(r, r.nameOf('num_experts', 'num_local_experts'), 'moe_intermediate_size', undefined);
  const step = r.int('decoder_sparse_step', 1);
  const mlpOnly = new Set(r.intList('mlp_only_layers') ?? []);
  const n = layerCount(r);
  for (const i of mlpOnly) if (i >= n) r.fail('mlp_only_layers', `layer ${i} is past num_hidden_layers ${n}`);
  let mlp: MlpBlock | undefined;
  const blocks: Block[] = [];
  for (let i = 0; i < n; i++) {
    blocks.push(structuredClone(attention));
    if (!mlpOnly.has(i) && (i + 1) % step === 0) blocks.push(structuredClone(moe));
    else {
      mlp ??= denseMlp(r);
      blocks.push(structuredClone(mlp));
    }
  }
  return { model: baseModel(r, name, traits, blocks), notes, understood: r.understood };
}

/** `mixtral`: every layer attention + softmax top-k SwiGLU experts (top-k weights renormalized). */
export function importMixtral(config: HfConfig, file: string, name: string): ImportResult {
  const traits = MIXTRAL;
  const r: ConfigReader = new ConfigReader(config, file);
  const notes: string[] = [];
  const hidden = r.int('hidden_size');
  const attention = attentionBlock(r, hidden, traits, notes);
  const moe = softmaxMoe(r, 'num_local_experts', 'intermediate_size', true);
  const blocks: Block[] = [];
  for (let i = 0; i < layerCount(r); i++) blocks.push(structuredClone(attention), structuredClone(moe));
  return { model: baseModel(r, name, traits, blocks), notes, understood: r.understood };
}
