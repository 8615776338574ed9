// The complete Megatron-LM argument list that trains a Strata design with `pretrain_mamba.py`
// (Megatron-Core's hybrid MambaModel): architecture (the unified `--hybrid-layer-pattern` with `|`
// pipeline cuts and `/` MTP segments, and the size flags of each layer kind, from
// engine/spec/megatron-args.ts), the layer spec, tokenizer, data, the document's training recipe,
// the parallel layout, activation recomputation, precision (precision-args.ts), checkpoints and
// logging. Each flag carries the group it belongs to, so the bundle prints them in sections.
//
// Conventions:
// - Values that depend on the machine the job runs on are shell variables the launch scripts set:
//   ${DATA_PREFIX}, ${DATA_CACHE_DIR}, ${TOKENIZER_MODEL}, ${CHECKPOINT_DIR}, ${TENSORBOARD_DIR},
//   ${BUNDLE_DIR} (the bundle folder). args.txt shows them unexpanded.
// - Tokenizer: HuggingFaceTokenizer with a default model id chosen by vocabulary size (131072: the
//   Nemotron 3 tokenizer; 151936: Qwen3; 50277-50288: GPT-NeoX-20B as Mamba-2 uses; a `gpt2`
//   document tokenizer with 50257 entries: gpt2); other vocabularies (the byte tokenizer) get no
//   default and the scripts stop until TOKENIZER_MODEL is set.
// - Experts run with expert tensor parallelism 1 and the all-to-all token dispatcher; the router
//   computes in fp32. Dropout is 0 (Strata models have none).
// - Recomputation: selective = `--recompute-modules moe_act layernorm` (output-discarding
//   checkpoints of the expert activation and the pre-norms); full = uniform, one layer per chunk.
//
// Not here: the per-kind size flags (engine/spec/megatron-args.ts, shared with `strata convert`),
// layout rules (layout.ts), the files of the bundle (bundle.ts).
import { type StrataDocument, flattenStack } from '../document.js';
import { megatronArgsFromModel } from '../megatron-args.js';
import { type ParallelLayout, stageCuts } from './layout.js';
import { type PrecisionExport, TE_PRECISION_FILE, megatronPrecision } from './precision-args.js';

export const FLAG_GROUPS = ['model', 'spec', 'tokenizer', 'data', 'training', 'parallel', 'recompute', 'precision', 'checkpoint', 'logging'] as const;
export type FlagGroup = (typeof FLAG_GROUPS)[number];

export interface MegatronFlag {
  flag: string;
  /** Zero values: a switch; several: a list (e.g. --spec MODULE NAME). */
  values: string[];
  group: FlagGroup;
}

/** The Megatron-Core layer spec pretrain_mamba.py builds the hybrid stack from. */
export const MAMBA_STACK_SPEC = ['megatron.core.models.mamba.mamba_layer_specs', 'mamba_stack_spec'] as const;
/** Megatron-LM's training entry point for hybrid Mamba models. */
export const PRETRAIN_SCRIPT = 'pretrain_mamba.py';

export const SELECTIVE_RECOMPUTE_MODULES = ['moe_act', 'layernorm'] as const;

export interface LaunchArgs {
  flags: MegatronFlag[];
  /** The hybrid layer pattern as exported (with the layout's pipeline cuts). */
  pattern: string;
  cuts: number[];
  cutsSource: 'document' | 'balanced';
  precision: PrecisionExport;
  /** Default for ${TOKENIZER_MODEL}, or null when the user must name one. */
  tokenizerModel: string | null;
  notes: string[];
}

/** The default Hugging Face tokenizer for a design (see the header), or null. */
export function defaultTokenizerModel(doc: StrataDocument): string | null {
  const v = doc.model.vocab_size;
  if (v === 131072) return 'nvidia/NVIDIA-Nemotron-3-Nano-30B-A3B-BF16';
  if (v === 151936) return 'Qwen/Qwen3-30B-A3B';
  if (v >= 50277 && v <= 50288) return 'EleutherAI/gpt-neox-20b';
  if (doc.pipeline.tokenizer.kind === 'gpt2' && v >= 50257) return 'gpt2';
  return null;
}

/** A number as Megatron's argparse reads it, rounded to 12 significant digits (3e-3 * 0.1 -> 0.0003). */
function num(n: number): string {
  return String(Number(n.toPrecision(12)));
}

/** Every Megatron-LM argument for training the document's model with the layout. */
export function megatronLaunchArgs(doc: StrataDocument, layout: ParallelLayout, opts: { tokenizerModel?: string } = {}): LaunchArgs {
  const model = doc.model;
  const notes: string[] = [];
  const { cuts, source } = stageCuts(model, layout.pp);
  if (source === 'balanced' && model.pipeline_cuts.length)
    notes.push(`the document's ${model.pipeline_cuts.length + 1} pipeline stages do not match PP ${layout.pp}; balanced cuts at layers ${cuts.join(', ') || '(none)'} are used`);
  const staged = { ...model, pipeline_cuts: cuts };
  const architecture = megatronArgsFromModel(staged);
  notes.push(...architecture.notes);
  const precision = megatronPrecision(staged, cuts, `\${BUNDLE_DIR}/${TE_PRECISION_FILE}`);
  notes.push(...precision.notes);

  const flags: MegatronFlag[] = [];
  const add = (group: FlagGroup, flag: string, ...values: Array<string | number>) => flags.push({ flag, values: values.map(String), group });

  for (const [flag, value] of architecture.flags) {
    if (flag === '--pipeline-model-parallel-size') continue; // the layout's PP is written below
    if (value === undefined) add('model', flag);
    else add('model', flag, value);
  }
  const allBlocks = [...flattenStack(model.stack).map((l) => l.block), ...(model.mtp?.blocks ?? [])];
  if (!allBlocks.some((b) => b.kind === 'attention')) {
    // Megatron-LM requires a head count even without attention layers; any multiple of TP works.
    const mamba = allBlocks.find((b) => b.kind === 'mamba2');
    add('model', '--num-attention-heads', mamba?.kind === 'mamba2' ? mamba.heads : layout.tp);
    notes.push('no attention layers: --num-attention-heads is set only because Megatron-LM requires it (unused)');
  }
  add('model', '--attention-dropout', '0.0');
  add('model', '--hidden-dropout', '0.0');
  add('spec', '--spec', ...MAMBA_STACK_SPEC);

  const tokenizerModel = opts.tokenizerModel ?? defaultTokenizerModel(doc);
  if (tokenizerModel === null)
    notes.push(`no default Hugging Face tokenizer for vocabulary ${model.vocab_size} (${doc.pipeline.tokenizer.kind} tokenizer): set TOKENIZER_MODEL before launching`);
  add('tokenizer', '--tokenizer-type', 'HuggingFaceTokenizer');
  add('tokenizer', '--tokenizer-model', '${TOKENIZER_MODEL}');

  add('data', '--data-path', '${DATA_PREFIX}');
  add('data', '--data-cache-path', '${DATA_CACHE_DIR}');
  add('data', '--split', '99,1,0');
  add('data', '--seq-length', layout.seqLen);

  const t = doc.pipeline.training;
  add('training', '--micro-batch-size', layout.microBatch);
  add('training', '--global-batch-size', layout.globalBatch);
  add('training', '--train-iters', t.steps);
  add('training', '--lr', num(t.lr));
  add('training', '--min-lr', num(t.lr * t.min_lr_ratio));
  add('training', '--lr-warmup-iters', t.warmup_steps);
  if (t.schedule === 'wsd') {
    add('training', '--lr-decay-style', 'WSD');
    add('training', '--lr-wsd-decay-style', 'linear');
    add('training', '--lr-wsd-decay-iters', Math.max(1, Math.round(t.steps * t.decay_fraction)));
  } else {
    add('training', '--lr-decay-style', t.schedule);
  }
  add('training', '--weight-decay', num(t.weight_decay));
  add('training', '--adam-beta1', num(t.beta1));
  add('training', '--adam-beta2', num(t.beta2));
  add('training', '--adam-eps', num(t.adam_eps));
  add('training', '--clip-grad', num(t.grad_clip));
  add('training', '--seed', t.seed);
  if (t.eval_every > 0) {
    add('training', '--eval-interval', t.eval_every);
    add('training', '--eval-iters', doc.pipeline.evaluations.find((e) => e.kind === 'heldout')?.batches ?? 8);
  } else {
    add('training', '--eval-iters', 0);
  }

  const hasMoe = allBlocks.some((b) => b.kind === 'moe');
  add('parallel', '--tensor-model-parallel-size', layout.tp);
  add('parallel', '--pipeline-model-parallel-size', layout.pp);
  add('parallel', '--context-parallel-size', layout.cp);
  if (hasMoe) {
    add('parallel', '--expert-model-parallel-size', layout.ep);
    add('parallel', '--expert-tensor-parallel-size', 1);
    add('parallel', '--moe-token-dispatcher-type', 'alltoall');
    add('parallel', '--moe-router-dtype', 'fp32');
  }
  if (layout.tp > 1) add('parallel', '--sequence-parallel');
  if (layout.distributedOptimizer) {
    add('parallel', '--use-distributed-optimizer');
    add('parallel', '--overlap-param-gather');
  }
  add('parallel', '--overlap-grad-reduce');

  if (layout.recompute === 'selective') {
    add('recompute', '--recompute-granularity', 'selective');
    add('recompute', '--recompute-modules', ...SELECTIVE_RECOMPUTE_MODULES);
  } else if (layout.recompute === 'full') {
    add('recompute', '--recompute-granularity', 'full');
    add('recompute', '--recompute-method', 'uniform');
    add('recompute', '--recompute-num-layers', 1);
  }

  for (const [flag, value] of precision.flags) {
    if (value === undefined) add('precision', flag);
    else add('precision', flag, value);
  }

  add('checkpoint', '--save', '${CHECKPOINT_DIR}');
  add('checkpoint', '--load', '${CHECKPOINT_DIR}');
  if (t.checkpoint_every > 0) add('checkpoint', '--save-interval', t.checkpoint_every);
  add('checkpoint', '--ckpt-format', 'torch_dist');

  add('logging', '--log-interval', 10);
  add('logging', '--log-throughput');
  add('logging', '--tensorboard-dir', '${TENSORBOARD_DIR}');

  return { flags, pattern: architecture.pattern, cuts, cutsSource: source, precision, tokenizerModel, notes };
}

/** One flag as a line of args.txt: `--flag v1 v2` (values unquoted; placeholders unexpanded). */
export function argsTxtLine(f: MegatronFlag): string {
  return [f.flag, ...f.values].join(' ');
}

/** A value as a double-quoted bash word that still expands ${VAR} placeholders. */
export function bashWord(value: string): string {
  if (/^[A-Za-z0-9_.,:=+\/-]+$/.test(value)) return value;
  const escaped = value.replace(/[\\"`]/g, (c) => `\\${c}`).replace(/\$(?!\{[A-Z_][A-Z0-9_]*\})/g, '\\$');
  return `"${escaped}"`;
}
