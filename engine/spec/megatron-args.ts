// Megatron-LM launch flags for a Strata model (hybrid Mamba/attention/MoE models as trained by
// Megatron's pretrain_mamba.py): the unified `--hybrid-layer-pattern` (with `|` pipeline cuts and
// `/` MTP segments) plus the size arguments of each layer kind. Megatron, like nemotron_h, gives
// every layer of a kind the same parameters, so layers of a kind must agree.
// Settings Megatron has no flag for (conv kernel, SSD chunk, dt ranges, router bias updates when
// at defaults) are listed as notes rather than guessed flags.
//
// Not here: the pattern grammar (megatron-pattern.ts), printing (cli/commands/convert.ts).
import { type ModelSpec, flattenStack } from './document.js';
import { HfExportError, uniformBlocks } from './hf/nemotron-h.js';
import { patternFromModel } from './megatron-pattern.js';

/** A design Megatron's flags cannot express; the message names layer and field. */
export class MegatronExportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MegatronExportError';
  }
}

export interface MegatronArgs {
  /** The unified hybrid layer pattern. */
  pattern: string;
  /** Flags in order; a flag without value is a switch. */
  flags: Array<[flag: string, value?: string]>;
  /** What the flags leave to Megatron's defaults or cannot say, in words. */
  notes: string[];
}

const MEGATRON_MAMBA_DEFAULTS = { conv_kernel: 4, chunk: 128 };

/** Megatron-LM flags describing the model's architecture. */
export function megatronArgsFromModel(model: ModelSpec): MegatronArgs {
  let blocks;
  try {
    blocks = uniformBlocks(model, 'Megatron-LM flags');
  } catch (error) {
    if (error instanceof HfExportError) throw new MegatronExportError(error.message);
    throw error;
  }
  const layers = flattenStack(model.stack);
  const pattern = patternFromModel(model);
  const flags: Array<[string, string?]> = [];
  const notes: string[] = [];
  const add = (flag: string, value?: string | number) => flags.push(value === undefined ? [flag] : [flag, String(value)]);

  add('--hybrid-layer-pattern', pattern);
  add('--num-layers', layers.length);
  add('--hidden-size', model.d_model);
  add('--vocab-size', model.vocab_size);
  add('--max-position-embeddings', model.max_position_embeddings);
  add('--normalization', 'RMSNorm');
  add('--norm-epsilon', model.norm_eps);
  add('--init-method-std', model.init_std);
  if (!model.tie_embeddings) add('--untie-embeddings-and-output-weights');
  const all = [...layers.map((l) => l.block), ...(model.mtp?.blocks ?? [])];
  if (all.every((b) => !b.bias)) add('--disable-bias-linear');

  const attention = blocks.get('attention')?.block;
  if (attention?.kind === 'attention') {
    add('--num-attention-heads', attention.heads);
    if (attention.kv_heads !== attention.heads) {
      add('--group-query-attention');
      add('--num-query-groups', attention.kv_heads);
    }
    add('--kv-channels', attention.head_dim);
    if (attention.rope) {
      add('--position-embedding-type', 'rope');
      add('--rotary-base', attention.rope.theta);
      if (attention.rope.fraction !== 1) add('--rotary-percent', attention.rope.fraction);
    } else {
      add('--position-embedding-type', 'none');
    }
    if (attention.qk_norm) add('--qk-layernorm');
    if (attention.bias) add('--add-qkv-bias');
    if (attention.sliding_window !== null) add('--window-size', `${attention.sliding_window},0`);
  } else {
    add('--position-embedding-type', 'none');
  }

  const mamba = blocks.get('mamba2')?.block;
  if (mamba?.kind === 'mamba2') {
    add('--mamba-num-heads', mamba.heads);
    add('--mamba-head-dim', mamba.head_dim);
    add('--mamba-state-dim', mamba.d_state);
    add('--mamba-num-groups', mamba.groups);
    if (mamba.conv_kernel !== MEGATRON_MAMBA_DEFAULTS.conv_kernel)
      notes.push(`Mamba conv_kernel ${mamba.conv_kernel} has no Megatron flag (Megatron uses ${MEGATRON_MAMBA_DEFAULTS.conv_kernel})`);
    if (mamba.chunk !== MEGATRON_MAMBA_DEFAULTS.chunk)
      notes.push(`Mamba chunk ${mamba.chunk} has no Megatron flag (Megatron uses ${MEGATRON_MAMBA_DEFAULTS.chunk})`);
  }

  const activations = new Set<string>();
  const mlp = blocks.get('mlp')?.block;
  if (mlp?.kind === 'mlp') {
    add('--ffn-hidden-size', mlp.ffn);
    activations.add(mlp.activation);
  }
  const moe = blocks.get('moe')?.block;
  if (moe?.kind === 'moe') {
    activations.add(moe.activation);
    add('--num-experts', moe.experts);
    add('--moe-router-topk', moe.top_k);
    add('--moe-ffn-hidden-size', moe.expert_ffn);
    if (moe.shared_experts > 0) add('--moe-shared-expert-intermediate-size', moe.shared_experts * moe.shared_ffn);
    add('--moe-router-score-function', moe.router.type);
    if (moe.router.expert_bias) {
      add('--moe-router-enable-expert-bias');
      add('--moe-router-bias-update-rate', moe.router.bias_update_rate);
    }
    if (moe.router.routed_scaling !== 1) add('--moe-router-topk-scaling-factor', moe.router.routed_scaling);
    add('--moe-aux-loss-coeff', moe.router.aux_loss_coeff);
    if (moe.latent !== null) add('--moe-latent-size', moe.latent);
    add('--moe-grouped-gemm');
  }
  if (activations.size > 1)
    throw new MegatronExportError(`MLP and MoE layers use different activations (${[...activations].join(', ')}); Megatron has one`);
  const act = [...activations][0];
  if (act === 'relu2') add('--squared-relu');
  else if (act === 'swiglu') add('--swiglu');

  if (model.mtp) {
    add('--mtp-num-layers', model.mtp.depth);
    add('--mtp-loss-scaling-factor', model.mtp.loss_weight);
    if (model.mtp.shared_weights) add('--mtp-use-repeated-layer');
  }
  if (model.pipeline_cuts.length) add('--pipeline-model-parallel-size', model.pipeline_cuts.length + 1);
  return { pattern, flags, notes };
}

/** Quotes a value for a POSIX shell when it holds anything but safe characters. */
export function shellQuote(value: string): string {
  return /^[A-Za-z0-9_.,:=+\/-]+$/.test(value) ? value : `'${value.replace(/'/g, `'\\''`)}'`;
}

/** The flags as shell text, one flag per line joined with backslash continuations. */
export function formatMegatronArgs(args: MegatronArgs): string {
  return args.flags.map(([flag, value]) => (value === undefined ? flag : `${flag} ${shellQuote(value)}`)).join(' \\\n') + '\n';
}
