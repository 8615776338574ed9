// The document a fresh window starts with: a small, trainable Nemotron-style hybrid
// (Mamba-2 + MoE with one attention layer) on the bundled corpus with the byte tokenizer.
// It is not a template from the gallery (templates/*.json); it only gives the editor something
// valid to show before the user opens or picks a design.
import { type StrataDocument, documentFromModel } from '../../engine/spec/document.js';
import { defaultBlock } from './block-defaults.js';

export const STARTER_D_MODEL = 128;

export function starterDocument(): StrataDocument {
  const d = STARTER_D_MODEL;
  const mamba = defaultBlock('mamba2', d);
  const moe = defaultBlock('moe', d);
  const attention = defaultBlock('attention', d);
  return documentFromModel({
    name: 'untitled-hybrid',
    vocab_size: 320,
    d_model: d,
    max_position_embeddings: 1024,
    stack: [
      { kind: 'repeat', count: 2, blocks: [mamba, moe] },
      attention,
      moe,
      { kind: 'repeat', count: 2, blocks: [mamba, moe] },
    ],
  });
}
