// The Strata document: the one versioned JSON file that describes a design (model), how it is
// trained and measured (pipeline) and how it is drawn (view). It is the contract between the UI,
// the analytics, the native engine and every exporter.
//
// This file is the schema (zod) and the types derived from it, plus `flattenStack`, which turns
// the stack with its repeat groups into the ordered list of layers everything else works on.
// It is not validation of cross-field rules (validate.ts), not migrations (migrate.ts), and it
// imports nothing from Node, the DOM or React.
import { z } from 'zod';

export const DOCUMENT_FORMAT = 'strata';
export const DOCUMENT_VERSION = 2;

const posInt = z.number().int().positive();
const nonNegInt = z.number().int().nonnegative();
const posNum = z.number().positive();

// ---------------------------------------------------------------------------------------------
// Precision
// ---------------------------------------------------------------------------------------------

/** Numeric formats a GEMM input can be quantized to (fake-quantized where hardware lacks it). */
export const PRECISION_FORMATS = ['fp32', 'bf16', 'fp8_e4m3', 'fp8_e5m2', 'mxfp8', 'nvfp4'] as const;
export const PrecisionFormat = z.enum(PRECISION_FORMATS);
export type PrecisionFormat = z.infer<typeof PrecisionFormat>;

/**
 * Tensor roles: the weight matrices (and the GEMMs that use them) a precision rule can select.
 * `mtp` selects every GEMM inside MTP modules.
 */
export const TENSOR_ROLES = [
  'embedding',
  'head',
  'mamba.in_proj',
  'mamba.out_proj',
  'attention.qkv',
  'attention.o',
  'mlp.fc1',
  'mlp.fc2',
  'moe.router',
  'moe.expert_fc1',
  'moe.expert_fc2',
  'moe.latent_down',
  'moe.latent_up',
  'moe.shared_fc1',
  'moe.shared_fc2',
  'mtp',
] as const;
export const TensorRole = z.enum(TENSOR_ROLES);
export type TensorRole = z.infer<typeof TensorRole>;

/** The three GEMMs of a linear layer: forward (y = xW), data gradient (dx), weight gradient (dW). */
export const GEMM_PASSES = ['fprop', 'dgrad', 'wgrad'] as const;
export const GemmPass = z.enum(GEMM_PASSES);
export type GemmPass = z.infer<typeof GemmPass>;

export const BLOCK_KINDS = ['mamba2', 'attention', 'moe', 'mlp'] as const;
export const BlockKind = z.enum(BLOCK_KINDS);
export type BlockKind = z.infer<typeof BlockKind>;

/**
 * Which (layer, role, pass) triples a rule applies to. Every given criterion must hold (AND);
 * an absent criterion matches everything. Layer indices are 0-based positions in the flattened
 * main stack; MTP layers are selected by the `mtp` role only.
 */
export const PrecisionSelector = z
  .object({
    kinds: z.array(BlockKind).min(1).optional(),
    layers: z.object({ from: nonNegInt, to: nonNegInt }).strict().optional(), // inclusive range
    first_n: posInt.optional(),
    last_n: posInt.optional(),
    last_percent: z.number().gt(0).max(100).optional(), // ceil(percent/100 * n_layers) last layers
    roles: z.array(TensorRole).min(1).optional(),
    passes: z.array(GemmPass).min(1).optional(),
  })
  .strict();
export type PrecisionSelector = z.infer<typeof PrecisionSelector>;

export const PrecisionRule = z
  .object({
    select: PrecisionSelector,
    format: PrecisionFormat,
    note: z.string().optional(),
  })
  .strict();
export type PrecisionRule = z.infer<typeof PrecisionRule>;

/**
 * Ordered rules; the last matching rule wins (so later, more specific rules override earlier
 * ones, as painting on the layer strip appends rules). Unmatched GEMMs use `default`.
 */
export const PrecisionPolicy = z
  .object({
    preset: z.string().optional(), // name of the preset the rules came from, informational
    default: PrecisionFormat,
    rules: z.array(PrecisionRule),
  })
  .strict();
export type PrecisionPolicy = z.infer<typeof PrecisionPolicy>;

// ---------------------------------------------------------------------------------------------
// Blocks: one block is one residual layer: x + mixer(RMSNorm(x)).
// ---------------------------------------------------------------------------------------------

export const ACTIVATIONS = ['relu2', 'swiglu', 'gelu'] as const;
export const Activation = z.enum(ACTIVATIONS);
export type Activation = z.infer<typeof Activation>;

const blockCommon = {
  id: z.string().min(1).optional(), // stable id for the editor; the engine ignores it
  label: z.string().optional(),
};

export const Mamba2Block = z
  .object({
    kind: z.literal('mamba2'),
    ...blockCommon,
    heads: posInt, // H; d_inner = H * P
    head_dim: posInt, // P
    d_state: posInt, // N
    groups: posInt, // G: B and C are shared by H/G heads
    conv_kernel: posInt, // depthwise causal conv width over [x, B, C]
    conv_bias: z.boolean().default(true),
    chunk: posInt, // SSD chunk length
    bias: z.boolean().default(false), // in_proj/out_proj biases
    dt_min: posNum.default(0.001),
    dt_max: posNum.default(0.1),
    dt_init_floor: posNum.default(1e-4),
    dt_limit: z.tuple([z.number().nonnegative(), z.number().positive()]).nullable().default(null), // clamp of softplus(dt)
    norm_before_gate: z.boolean().default(false), // Nemotron: gate then norm
  })
  .strict();
export type Mamba2Block = z.infer<typeof Mamba2Block>;

export const Rope = z
  .object({
    theta: posNum,
    fraction: z.number().gt(0).max(1).default(1), // share of head_dim rotated
  })
  .strict();
export type Rope = z.infer<typeof Rope>;

export const AttentionBlock = z
  .object({
    kind: z.literal('attention'),
    ...blockCommon,
    heads: posInt, // query heads
    kv_heads: posInt, // GQA groups; heads % kv_heads == 0
    head_dim: posInt,
    rope: Rope.nullable().default(null), // Nemotron hybrids use none
    qk_norm: z.boolean().default(false), // per-head RMSNorm on q and k (Qwen3)
    bias: z.boolean().default(false),
    sliding_window: posInt.nullable().default(null),
  })
  .strict();
export type AttentionBlock = z.infer<typeof AttentionBlock>;

export const Router = z
  .object({
    type: z.enum(['softmax', 'sigmoid']),
    expert_bias: z.boolean().default(false), // aux-loss-free balancing bias (used for selection only)
    bias_update_rate: z.number().nonnegative().default(1e-3),
    norm_topk: z.boolean().default(true), // renormalize the top-k weights to sum to 1
    routed_scaling: posNum.default(1),
    aux_loss_coeff: z.number().nonnegative().default(0), // Switch-style load-balancing loss weight
  })
  .strict();
export type Router = z.infer<typeof Router>;

export const MoeBlock = z
  .object({
    kind: z.literal('moe'),
    ...blockCommon,
    experts: posInt, // E routed experts
    top_k: posInt, // K
    expert_ffn: posInt, // hidden width of one routed expert (in latent width if latent is set)
    activation: Activation.default('relu2'),
    shared_experts: nonNegInt.default(0),
    shared_ffn: nonNegInt.default(0), // hidden width of each shared expert
    router: Router,
    latent: posInt.nullable().default(null), // LatentMoE: routed experts run at width l < d
    bias: z.boolean().default(false),
  })
  .strict();
export type MoeBlock = z.infer<typeof MoeBlock>;

export const MlpBlock = z
  .object({
    kind: z.literal('mlp'),
    ...blockCommon,
    ffn: posInt,
    activation: Activation.default('relu2'),
    bias: z.boolean().default(false),
  })
  .strict();
export type MlpBlock = z.infer<typeof MlpBlock>;

export const Block = z.discriminatedUnion('kind', [Mamba2Block, AttentionBlock, MoeBlock, MlpBlock]);
export type Block = z.infer<typeof Block>;
/** What a caller may write: defaults are filled in by parsing. */
export type BlockInput = z.input<typeof Block>;

export const RepeatGroup = z
  .object({
    kind: z.literal('repeat'),
    id: z.string().min(1).optional(),
    label: z.string().optional(),
    count: posInt,
    collapsed: z.boolean().default(false), // editor state that travels with the group
    blocks: z.array(Block).min(1),
  })
  .strict();
export type RepeatGroup = z.infer<typeof RepeatGroup>;

export const StackItem = z.discriminatedUnion('kind', [
  Mamba2Block,
  AttentionBlock,
  MoeBlock,
  MlpBlock,
  RepeatGroup,
]);
export type StackItem = z.infer<typeof StackItem>;

/**
 * Multi-token prediction (DeepSeek-V3 / Nemotron 3 style). Module k (1..depth) predicts token
 * t+1+k: h' = blocks(proj([RMSNorm(h_{k-1}); RMSNorm(emb(x_{t+k}))])), sharing embedding and head
 * with the main model. With `shared_weights` all depths reuse one module's weights (Super).
 */
export const MtpSpec = z
  .object({
    kind: z.literal('mtp'),
    depth: posInt,
    blocks: z.array(Block).min(1),
    loss_weight: z.number().nonnegative().default(0.3),
    shared_weights: z.boolean().default(true),
  })
  .strict();
export type MtpSpec = z.infer<typeof MtpSpec>;

export const ModelSpec = z
  .object({
    name: z.string().min(1),
    vocab_size: posInt,
    d_model: posInt,
    norm_eps: posNum.default(1e-5),
    tie_embeddings: z.boolean().default(false),
    max_position_embeddings: posInt.default(4096),
    init_std: posNum.default(0.02),
    stack: z.array(StackItem).min(1),
    /** Flattened layer indices where a new pipeline stage starts (Megatron `|`). */
    pipeline_cuts: z.array(posInt).default([]),
    mtp: MtpSpec.nullable().default(null),
    precision: PrecisionPolicy.default({ default: 'bf16', rules: [] }),
  })
  .strict();
export type ModelSpec = z.infer<typeof ModelSpec>;
export type ModelSpecInput = z.input<typeof ModelSpec>;

// ---------------------------------------------------------------------------------------------
// Pipeline: data, tokenizer, training, evaluation, profiling
// ---------------------------------------------------------------------------------------------

export const SYNTHETIC_TASKS = ['mqar', 'needle', 'copy'] as const;
export const SyntheticTask = z.enum(SYNTHETIC_TASKS);
export type SyntheticTask = z.infer<typeof SyntheticTask>;

export const Dataset = z.discriminatedUnion('source', [
  z
    .object({
      source: z.literal('corpus'), // the bundled public-domain English corpus
      heldout_fraction: z.number().gt(0).lt(1).default(0.05),
    })
    .strict(),
  z
    .object({
      source: z.literal('file'), // .txt, .jsonl (field `text`) or .parquet
      path: z.string().min(1),
      text_field: z.string().default('text'),
      heldout_fraction: z.number().gt(0).lt(1).default(0.05),
    })
    .strict(),
  z
    .object({
      source: z.literal('task'),
      task: SyntheticTask,
      num_pairs: posInt.default(8), // mqar: key-value pairs per sequence
      distance: posInt.default(256), // needle: tokens between needle and question
    })
    .strict(),
]);
export type Dataset = z.infer<typeof Dataset>;

export const Tokenizer = z
  .object({
    kind: z.enum(['byte', 'gpt2']),
  })
  .strict();
export type Tokenizer = z.infer<typeof Tokenizer>;

export const Training = z
  .object({
    steps: posInt.default(200),
    batch_size: posInt.default(8),
    seq_len: posInt.default(256),
    grad_accum: posInt.default(1),
    lr: posNum.default(3e-3),
    min_lr_ratio: z.number().min(0).max(1).default(0.1),
    warmup_steps: nonNegInt.default(20),
    schedule: z.enum(['cosine', 'wsd', 'constant']).default('cosine'),
    decay_fraction: z.number().gt(0).max(1).default(0.2), // wsd: share of steps spent decaying
    weight_decay: z.number().nonnegative().default(0.1),
    beta1: z.number().min(0).lt(1).default(0.9),
    beta2: z.number().min(0).lt(1).default(0.95),
    adam_eps: posNum.default(1e-8),
    grad_clip: z.number().nonnegative().default(1.0), // 0 disables
    seed: nonNegInt.default(1234),
    eval_every: nonNegInt.default(50), // 0 disables
    checkpoint_every: nonNegInt.default(100), // 0 disables
    device: z.enum(['cpu', 'cuda']).default('cpu'),
    threads: nonNegInt.default(0), // 0: all cores
  })
  .strict();
export type Training = z.infer<typeof Training>;

export const Evaluation = z
  .object({
    kind: z.enum(['heldout', 'nll_by_position', 'mqar', 'needle', 'copy']),
    batches: posInt.default(8),
  })
  .strict();
export type Evaluation = z.infer<typeof Evaluation>;

export const Profiling = z
  .object({
    modes: z.array(z.enum(['train', 'prefill', 'decode'])).default(['train', 'prefill', 'decode']),
    contexts: z.array(posInt).default([1024, 4096]),
    batch: posInt.default(1),
    hardware: z.string().default('h200'),
  })
  .strict();
export type Profiling = z.infer<typeof Profiling>;

export const PipelineSpec = z
  .object({
    dataset: Dataset.default({ source: 'corpus', heldout_fraction: 0.05 }),
    tokenizer: Tokenizer.default({ kind: 'byte' }),
    training: Training.default(Training.parse({})),
    evaluations: z.array(Evaluation).default([{ kind: 'heldout', batches: 8 }]),
    profiling: Profiling.default(Profiling.parse({})),
  })
  .strict();
export type PipelineSpec = z.infer<typeof PipelineSpec>;

// ---------------------------------------------------------------------------------------------
// View: where things are drawn. The engine and analytics never read it.
// ---------------------------------------------------------------------------------------------

export const ViewSpec = z
  .object({
    /** Node positions by node id (pipeline nodes and layer-graph nodes). */
    positions: z.record(z.string(), z.object({ x: z.number(), y: z.number() }).strict()).default({}),
    viewport: z.object({ x: z.number(), y: z.number(), zoom: z.number().positive() }).strict().optional(),
  })
  .strict();
export type ViewSpec = z.infer<typeof ViewSpec>;

export const StrataDocument = z
  .object({
    format: z.literal(DOCUMENT_FORMAT),
    version: z.literal(DOCUMENT_VERSION),
    model: ModelSpec,
    pipeline: PipelineSpec.default(PipelineSpec.parse({})),
    view: ViewSpec.default({ positions: {} }),
  })
  .strict();
export type StrataDocument = z.infer<typeof StrataDocument>;
export type StrataDocumentInput = z.input<typeof StrataDocument>;

// ---------------------------------------------------------------------------------------------
// Flattening
// ---------------------------------------------------------------------------------------------

/** One layer of the flattened main stack. */
export interface Layer {
  /** 0-based position in the main stack. */
  index: number;
  block: Block;
  /** Where it came from: stack item index, and repeat/inner indices when inside a group. */
  source: { item: number; repeat?: number; inner?: number };
}

/** Expands repeat groups into the ordered list of layers (the order the engine runs them in). */
export function flattenStack(stack: readonly StackItem[]): Layer[] {
  const layers: Layer[] = [];
  stack.forEach((item, itemIndex) => {
    if (item.kind === 'repeat') {
      for (let r = 0; r < item.count; r++) {
        item.blocks.forEach((block, inner) => {
          layers.push({ index: layers.length, block, source: { item: itemIndex, repeat: r, inner } });
        });
      }
    } else {
      layers.push({ index: layers.length, block: item, source: { item: itemIndex } });
    }
  });
  return layers;
}

/** Fills defaults; throws zod errors. Prefer `parseDocument` (validate.ts) for user input. */
export function parseModel(input: unknown): ModelSpec {
  return ModelSpec.parse(input);
}

/** A complete document around a model, with default pipeline and empty view. */
export function documentFromModel(model: ModelSpecInput, pipeline?: z.input<typeof PipelineSpec>): StrataDocument {
  return StrataDocument.parse({ format: DOCUMENT_FORMAT, version: DOCUMENT_VERSION, model, pipeline });
}
