// Default blocks for the layer-stack editor's palette: a new block of a kind, sized for the
// model's width, or copied from the nearest existing block of that kind so a design stays
// consistent. Pure functions over the document schema; it is not the palette UI
// (canvas/Palette.tsx) and not validation.
import {
  type Block,
  type BlockKind,
  type ModelSpec,
  AttentionBlock,
  Mamba2Block,
  MlpBlock,
  MoeBlock,
  flattenStack,
} from '../../engine/spec/document.js';

/** Display metadata of each block kind: palette titles, pattern letters, strip colours. */
export const BLOCK_KIND_INFO: Record<BlockKind, { title: string; letter: string; description: string }> = {
  mamba2: { title: 'Mamba-2', letter: 'M', description: 'Selective state-space mixer (SSD), constant-size state' },
  attention: { title: 'Attention', letter: '*', description: 'Grouped-query self-attention with a KV cache' },
  moe: { title: 'MoE', letter: 'E', description: 'Routed mixture of experts (LatentMoE with a latent size)' },
  mlp: { title: 'MLP', letter: '-', description: 'Dense feed-forward layer' },
};

/** Largest divisor of n that is at most limit (at least 1). */
export function largestDivisorAtMost(n: number, limit: number): number {
  for (let g = Math.min(n, Math.max(1, Math.floor(limit))); g > 1; g--) if (n % g === 0) return g;
  return 1;
}

/** A freshly sized block of `kind` for a model of width `dModel` (defaults filled by the schema). */
export function defaultBlock(kind: BlockKind, dModel: number): Block {
  switch (kind) {
    case 'mamba2': {
      const headDim = dModel >= 512 ? 64 : 16;
      const heads = Math.max(1, Math.round((2 * dModel) / headDim));
      return Mamba2Block.parse({
        kind,
        heads,
        head_dim: headDim,
        d_state: dModel >= 512 ? 128 : 16,
        groups: largestDivisorAtMost(heads, 8),
        conv_kernel: 4,
        chunk: dModel >= 512 ? 128 : 32,
      });
    }
    case 'attention': {
      const headDim = dModel >= 512 ? 128 : 32;
      const heads = Math.max(1, Math.round(dModel / headDim));
      return AttentionBlock.parse({ kind, heads, kv_heads: largestDivisorAtMost(heads, 2), head_dim: headDim });
    }
    case 'moe':
      return MoeBlock.parse({
        kind,
        experts: 8,
        top_k: 2,
        expert_ffn: Math.max(8, Math.round(dModel / 2)),
        shared_experts: 1,
        shared_ffn: dModel,
        router: { type: 'sigmoid', expert_bias: true },
      });
    case 'mlp':
      return MlpBlock.parse({ kind, ffn: 4 * dModel });
  }
}

/**
 * The block the palette inserts at stack position `atItem`: a copy of the nearest block of the
 * same kind already in the model (so hyper-parameters match the design), else a default one.
 * The copy has no id or label; the caller assigns a fresh id.
 */
export function blockForInsert(model: ModelSpec, kind: BlockKind, atItem: number): Block {
  const layers = flattenStack(model.stack);
  let best: Block | undefined;
  let bestDistance = Infinity;
  for (const layer of layers) {
    if (layer.block.kind !== kind) continue;
    const distance = Math.abs(layer.source.item - atItem);
    if (distance < bestDistance) {
      best = layer.block;
      bestDistance = distance;
    }
  }
  if (!best) return defaultBlock(kind, model.d_model);
  const copy = structuredClone(best);
  delete copy.id;
  delete copy.label;
  return copy;
}
