// Multi-query associative recall (MQAR, Arora et al. 2023 "Zoology"): a sample lists key-value
// pairs, then asks for every key again in a random order; only the recalled values are scored.
// Layout: <bos> k1 v1 ... kn vn <sep> kq1 vq1 ... kqn vqn <pad>...  (2 + 4n tokens of content).
//
// Not here: the shared token layout (layout.ts) or writing .stok files (index.ts).
import type { SeededRng } from './rng.js';
import { KEY_BASE, KEY_COUNT, SampleWriter, TASK_BOS, TASK_SEP, VALUE_BASE, VALUE_COUNT } from './layout.js';

/** Tokens of content one MQAR sample with `numPairs` pairs needs. */
export function mqarLength(numPairs: number): number {
  return 2 + 4 * numPairs;
}

export function checkMqar(numPairs: number, seqLen: number): string | null {
  if (numPairs > KEY_COUNT) return `mqar: num_pairs ${numPairs} exceeds the ${KEY_COUNT} distinct keys`;
  if (mqarLength(numPairs) > seqLen) return `mqar: num_pairs ${numPairs} needs seq_len >= ${mqarLength(numPairs)}, got ${seqLen}`;
  return null;
}

export function writeMqarSample(out: SampleWriter, numPairs: number, rng: SeededRng): void {
  const keys = rng.distinct(numPairs, KEY_COUNT).map((k) => KEY_BASE + k);
  const values = keys.map(() => VALUE_BASE + rng.below(VALUE_COUNT));
  out.push(TASK_BOS);
  keys.forEach((key, i) => {
    out.push(key);
    out.push(values[i]!);
  });
  out.push(TASK_SEP);
  for (const i of rng.distinct(numPairs, numPairs)) {
    out.push(keys[i]!);
    out.push(values[i]!, true);
  }
}
