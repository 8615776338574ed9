// Needle retrieval at a chosen distance: one key-value pair (the needle) hidden in filler keys,
// followed by exactly `distance` filler tokens, then a question (<sep> key) whose answer, the
// needle's value, is the only scored token. The filler before the needle takes the rest of the
// sample, so every sample is full and the needle-to-question distance is exact.
// Layout: <bos> filler... k v filler[distance] <sep> k v
//
// Not here: the shared token layout (layout.ts) or writing .stok files (index.ts).
import type { SeededRng } from './rng.js';
import { KEY_BASE, KEY_COUNT, SampleWriter, TASK_BOS, TASK_SEP, VALUE_BASE, VALUE_COUNT } from './layout.js';

/** Tokens that are not filler: <bos>, the needle pair, and <sep> k v. */
const NEEDLE_OVERHEAD = 6;

export function checkNeedle(distance: number, seqLen: number): string | null {
  if (distance + NEEDLE_OVERHEAD > seqLen) return `needle: distance ${distance} needs seq_len >= ${distance + NEEDLE_OVERHEAD}, got ${seqLen}`;
  return null;
}

export function writeNeedleSample(out: SampleWriter, distance: number, rng: SeededRng): void {
  const seqLen = out.tokens.length;
  const key = KEY_BASE + rng.below(KEY_COUNT);
  const value = VALUE_BASE + rng.below(VALUE_COUNT);
  // Filler keys never equal the needle's key, so the question has one answer.
  const filler = () => {
    const k = KEY_BASE + rng.below(KEY_COUNT - 1);
    return k >= key ? k + 1 : k;
  };
  out.push(TASK_BOS);
  const before = seqLen - distance - NEEDLE_OVERHEAD;
  for (let i = 0; i < before; i++) out.push(filler());
  out.push(key);
  out.push(value);
  for (let i = 0; i < distance; i++) out.push(filler());
  out.push(TASK_SEP);
  out.push(key);
  out.push(value, true);
}
