// The template gallery: every ready design shipped with Strata Studio, as pure data (name, title,
// description, category, the published reference figures where there are any) plus the
// documents themselves, imported statically so the app (browser bundle) and the CLI (Node) read
// the same thing without touching the file system.
//
// Not here: validation (engine/spec/validate.ts parseDocument) and analytics. The JSON files next
// to this one are Strata documents (format "strata", version 2).
import mamba2_2_7b from './mamba2-2.7b.json' with { type: 'json' };
import nemotron3Nano from './nemotron-3-nano-30b-a3b.json' with { type: 'json' };
import nemotron3Super from './nemotron-3-super-120b-a12b.json' with { type: 'json' };
import nemotronH8b from './nemotron-h-8b.json' with { type: 'json' };
import qwen3_30b_a3b from './qwen3-30b-a3b.json' with { type: 'json' };
import tinyHybrid from './tiny-hybrid.json' with { type: 'json' };
import tinyLatentMoe from './tiny-latent-moe.json' with { type: 'json' };
import tinyMamba2 from './tiny-mamba2.json' with { type: 'json' };
import tinyMtp from './tiny-mtp.json' with { type: 'json' };
import tinyTransformer from './tiny-transformer.json' with { type: 'json' };

export type TemplateCategory = 'published' | 'trainable';

export interface TemplateEntry {
  /** File stem and CLI name, e.g. `nemotron-3-nano-30b-a3b`. */
  name: string;
  title: string;
  description: string;
  category: TemplateCategory;
  /** Exact parameter counts from /work/shared/reference/published-models.md (published designs only). */
  reference?: { total: number; active: number };
}

export const TEMPLATES: readonly TemplateEntry[] = [
  {
    name: 'nemotron-3-nano-30b-a3b',
    title: 'Nemotron 3 Nano 30B-A3B',
    description:
      '52 layers: 23 Mamba-2, 23 MoE (128 experts, top-6, 1 shared), 6 attention (32/2 heads, no RoPE); d 2688; Nemotron 3 NVFP4 recipe.',
    category: 'published',
    reference: { total: 31.578e9, active: 3.58e9 },
  },
  {
    name: 'nemotron-3-super-120b-a12b',
    title: 'Nemotron 3 Super 120B-A12B',
    description:
      '88 layers: 40 Mamba-2, 40 LatentMoE (512 experts, top-22, latent 1024), 8 attention; MTP depth 2 with shared weights; Nemotron 3 NVFP4 recipe.',
    category: 'published',
    reference: { total: 120.669e9, active: 12.77e9 },
  },
  {
    name: 'nemotron-h-8b',
    title: 'Nemotron-H 8B',
    description: '52 layers: 24 Mamba-2, 24 squared-ReLU MLP (ffn 21504), 4 attention (32/8 heads); d 4096; BF16.',
    category: 'published',
    reference: { total: 8.101e9, active: 8.101e9 },
  },
  {
    name: 'qwen3-30b-a3b',
    title: 'Qwen3-30B-A3B',
    description:
      'Pure Transformer MoE: 48 x (attention 32/4 heads with QK-norm and RoPE + MoE 128 experts top-8 SwiGLU); the throughput peer in the Nemotron 3 paper; BF16.',
    category: 'published',
    reference: { total: 30.532e9, active: 3.353e9 },
  },
  {
    name: 'mamba2-2.7b',
    title: 'Mamba2-2.7B',
    description: '64 Mamba-2 layers (80 heads x 64, d_state 128, one group), no MLP, tied embeddings; BF16.',
    category: 'published',
    reference: { total: 2.703e9, active: 2.703e9 },
  },
  {
    name: 'tiny-hybrid',
    title: 'Tiny hybrid',
    description:
      'About 3M active parameters: Mamba-2 + 2 attention layers + MoE (8 experts, top-2, 1 shared), d 192, byte tokenizer; trains on a CPU in minutes.',
    category: 'trainable',
  },
  {
    name: 'tiny-transformer',
    title: 'Tiny transformer',
    description:
      'Attention + MoE only (5 x attention/MoE, RoPE), sized to the same active parameters as Tiny hybrid: the peer for hybrid-vs-Transformer comparisons.',
    category: 'trainable',
  },
  {
    name: 'tiny-mamba2',
    title: 'Tiny Mamba-2',
    description: '8 Mamba-2 layers and nothing else, d 192, byte tokenizer: the pure state-space baseline.',
    category: 'trainable',
  },
  {
    name: 'tiny-latent-moe',
    title: 'Tiny LatentMoE hybrid',
    description:
      'Tiny hybrid with LatentMoE: 16 experts, top-4, routed experts at latent width 96 (half of d) between down and up projections.',
    category: 'trainable',
  },
  {
    name: 'tiny-mtp',
    title: 'Tiny hybrid with MTP',
    description: 'Tiny hybrid plus multi-token prediction: depth 2, one shared attention + MoE module, loss weight 0.3.',
    category: 'trainable',
  },
];

const DOCUMENTS: Record<string, unknown> = {
  'nemotron-3-nano-30b-a3b': nemotron3Nano,
  'nemotron-3-super-120b-a12b': nemotron3Super,
  'nemotron-h-8b': nemotronH8b,
  'qwen3-30b-a3b': qwen3_30b_a3b,
  'mamba2-2.7b': mamba2_2_7b,
  'tiny-hybrid': tinyHybrid,
  'tiny-transformer': tinyTransformer,
  'tiny-mamba2': tinyMamba2,
  'tiny-latent-moe': tinyLatentMoe,
  'tiny-mtp': tinyMtp,
};

export const TEMPLATE_NAMES: readonly string[] = TEMPLATES.map((t) => t.name);

/** A fresh copy of a template's raw document JSON (not yet validated), or undefined for an unknown name. */
export function templateDocument(name: string): unknown {
  const doc = DOCUMENTS[name];
  return doc === undefined ? undefined : structuredClone(doc);
}
