// "Shrink to trainable size": the same design (layer pattern, repeat groups, MTP, precision
// policy, pipeline cuts, ids) with widths, heads, state sizes and expert counts scaled down until
// the model has at most a few million parameters, so it trains on a laptop CPU in minutes.
// Pure function over the document schema, measured with the analytics' parameter count.
// It is not the UI action (state/document-actions.ts calls it) and does not touch the pipeline.
import { type Block, type ModelSpec, type StackItem, ModelSpec as ModelSchema } from '../../engine/spec/document.js';
import { countParams } from '../../engine/spec/analytics/params.js';
import { largestDivisorAtMost } from './block-defaults.js';

/** Widths tried, smallest first; the largest whose model fits the budget wins. */
export const SHRINK_WIDTHS = [32, 48, 64, 96, 128, 160, 192, 256, 320, 384, 512, 768, 1024] as const;

export interface ShrinkOptions {
  /** Parameter budget (total parameters, MTP excluded). */
  targetParams: number;
  /** Vocabulary the tokenizer needs (the embedding is resized to it, rounded up to 64). */
  vocabSize: number;
  /** Longest context the shrunk model is meant for. */
  maxContext?: number;
}

export interface ShrinkResult {
  model: ModelSpec;
  params: number;
  /** True when even the narrowest width exceeds the budget (the narrowest is returned). */
  overBudget: boolean;
}

const roundTo = (x: number, m: number) => Math.max(m, Math.round(x / m) * m);
const evenAtLeast = (x: number, min: number) => Math.max(min, 2 * Math.round(x / 2));

/** The block scaled from width `from` to width `to`. */
export function shrinkBlock(block: Block, from: number, to: number): Block {
  const ratio = to / from;
  switch (block.kind) {
    case 'mamba2': {
      const innerRatio = (block.heads * block.head_dim) / from; // d_inner / d
      const headDim = Math.min(block.head_dim, Math.max(8, 2 ** Math.round(Math.log2(to / 8))));
      const heads = Math.max(1, Math.round((innerRatio * to) / headDim));
      return {
        ...block,
        heads,
        head_dim: headDim,
        d_state: Math.min(block.d_state, 16),
        groups: largestDivisorAtMost(heads, block.groups),
        chunk: Math.min(block.chunk, 64),
      };
    }
    case 'attention': {
      const headDim = Math.min(block.head_dim, evenAtLeast(to / 4, 8));
      const heads = Math.max(1, Math.round(to / headDim));
      const queriesPerKv = Math.max(1, block.heads / block.kv_heads);
      const kvHeads = largestDivisorAtMost(heads, Math.max(1, Math.round(heads / queriesPerKv)));
      let rope = block.rope;
      if (rope && rope.fraction < 1 && Math.round(headDim * rope.fraction) % 2 !== 0) rope = { ...rope, fraction: 0.5 };
      return { ...block, heads, kv_heads: kvHeads, head_dim: headDim, rope, sliding_window: block.sliding_window };
    }
    case 'moe': {
      const experts = Math.min(block.experts, 8);
      const topK = Math.min(experts, block.top_k, Math.max(2, Math.round((block.top_k * experts) / block.experts)));
      const latent = block.latent === null ? null : Math.min(to - 8, roundTo(block.latent * ratio, 8));
      const routedWidth = latent ?? to;
      const expertRatio = block.expert_ffn / (block.latent ?? from);
      return {
        ...block,
        experts,
        top_k: topK,
        expert_ffn: roundTo(expertRatio * routedWidth, 8),
        shared_ffn: block.shared_experts > 0 ? roundTo(block.shared_ffn * ratio, 8) : block.shared_ffn,
        latent: latent !== null && latent >= 8 ? latent : null,
      };
    }
    case 'mlp':
      return { ...block, ffn: roundTo(block.ffn * ratio, 8) };
  }
}

function shrinkStack(stack: readonly StackItem[], from: number, to: number): StackItem[] {
  return stack.map((item) =>
    item.kind === 'repeat' ? { ...item, blocks: item.blocks.map((b) => shrinkBlock(b, from, to)) } : shrinkBlock(item, from, to),
  );
}

/** The model at width `d` (every block scaled, vocabulary replaced). */
export function modelAtWidth(model: ModelSpec, d: number, options: ShrinkOptions): ModelSpec {
  const from = model.d_model;
  const to = Math.min(d, from);
  const vocab = Math.ceil(options.vocabSize / 64) * 64;
  return ModelSchema.parse({
    ...model,
    d_model: to,
    vocab_size: vocab,
    max_position_embeddings: Math.min(model.max_position_embeddings, options.maxContext ?? 2048),
    stack: shrinkStack(model.stack, from, to),
    mtp: model.mtp ? { ...model.mtp, blocks: model.mtp.blocks.map((b) => shrinkBlock(b, from, to)) } : null,
  });
}

/** Scales the design down to the widest width whose total parameter count fits the budget. */
export function shrinkModel(model: ModelSpec, options: ShrinkOptions): ShrinkResult {
  const widths = SHRINK_WIDTHS.filter((w) => w < model.d_model);
  if (widths.length === 0) widths.push(SHRINK_WIDTHS[0]);
  let best: ShrinkResult | null = null;
  for (const width of widths) {
    const candidate = modelAtWidth(model, width, options);
    const params = countParams(candidate).total;
    if (params <= options.targetParams) best = { model: candidate, params, overBudget: false };
    else {
      if (!best) best = { model: candidate, params, overBudget: true };
      break;
    }
  }
  return best!;
}
