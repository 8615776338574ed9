// Copying: a random byte string, <sep>, then the same string again; every token of the copy is
// scored. The string is as long as the sample allows: floor((seq_len - 2) / 2) tokens.
// Layout: <bos> x1..xL <sep> x1..xL [<pad>]
//
// Not here: the shared token layout (layout.ts) or writing .stok files (index.ts).
import type { SeededRng } from './rng.js';
import { SampleWriter, TASK_BOS, TASK_SEP } from './layout.js';

export function copyLength(seqLen: number): number {
  return Math.floor((seqLen - 2) / 2);
}

export function checkCopy(seqLen: number): string | null {
  if (copyLength(seqLen) < 1) return `copy: seq_len ${seqLen} is too short (needs >= 4)`;
  return null;
}

export function writeCopySample(out: SampleWriter, rng: SeededRng): void {
  const length = copyLength(out.tokens.length);
  const text = Array.from({ length }, () => rng.below(256));
  out.push(TASK_BOS);
  for (const token of text) out.push(token);
  out.push(TASK_SEP);
  for (const token of text) out.push(token, true);
}
