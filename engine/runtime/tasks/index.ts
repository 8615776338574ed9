// Synthetic task datasets: builds `count` fixed-length samples of MQAR, needle retrieval or copying,
// deterministically from a seed, as a masked TokenFile (.stok) the engine trains and evaluates on
// (accuracy = share of masked positions whose argmax is the target).
//
// Not here: the individual task layouts (mqar.ts, needle.ts, copy.ts, layout.ts).
import type { TokenFile } from '../data/stok.js';
import { checkCopy, writeCopySample } from './copy.js';
import { SampleWriter, TASK_VOCAB } from './layout.js';
import { checkMqar, writeMqarSample } from './mqar.js';
import { checkNeedle, writeNeedleSample } from './needle.js';
import { SeededRng } from './rng.js';

export type TaskName = 'mqar' | 'needle' | 'copy';

export interface TaskOptions {
  task: TaskName;
  seqLen: number;
  /** Number of samples. */
  count: number;
  seed: number;
  /** mqar: key-value pairs per sample. */
  numPairs?: number;
  /** needle: tokens between the needle and the question. */
  distance?: number;
}

/** Why the options cannot make samples, or null when they can. */
export function checkTaskOptions(options: TaskOptions): string | null {
  if (!Number.isInteger(options.seqLen) || options.seqLen < 4) return `${options.task}: seq_len must be an integer >= 4, got ${options.seqLen}`;
  if (!Number.isInteger(options.count) || options.count < 1) return `${options.task}: sample count must be a positive integer, got ${options.count}`;
  switch (options.task) {
    case 'mqar':
      return checkMqar(options.numPairs ?? 8, options.seqLen);
    case 'needle':
      return checkNeedle(options.distance ?? 256, options.seqLen);
    case 'copy':
      return checkCopy(options.seqLen);
  }
}

export function generateTask(options: TaskOptions): TokenFile {
  const problem = checkTaskOptions(options);
  if (problem) throw new Error(problem);
  const { seqLen, count } = options;
  const tokens = new Uint32Array(seqLen * count);
  const mask = new Uint8Array(seqLen * count);
  const rng = new SeededRng(options.seed);
  for (let s = 0; s < count; s++) {
    const out = new SampleWriter(tokens.subarray(s * seqLen, (s + 1) * seqLen), mask.subarray(s * seqLen, (s + 1) * seqLen));
    switch (options.task) {
      case 'mqar':
        writeMqarSample(out, options.numPairs ?? 8, rng);
        break;
      case 'needle':
        writeNeedleSample(out, options.distance ?? 256, rng);
        break;
      case 'copy':
        writeCopySample(out, rng);
        break;
    }
  }
  return { vocab: TASK_VOCAB, tokens, mask, seqLen, bytesPerToken: null, tokenizer: 'byte' };
}
