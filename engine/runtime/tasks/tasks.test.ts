// Tests of the synthetic tasks: determinism from the seed, exact layouts, answers that follow from
// the context, masks on answers only, and clear errors for impossible options.
import { describe, expect, it } from 'vitest';
import { TASK_BOS, TASK_PAD, TASK_SEP, VALUE_BASE } from './layout.js';
import { checkTaskOptions, generateTask } from './index.js';
import { SeededRng } from './rng.js';

function samples(file: { tokens: Uint32Array; mask?: Uint8Array; seqLen: number | null }) {
  const s = file.seqLen!;
  return Array.from({ length: file.tokens.length / s }, (_, i) => ({
    tokens: [...file.tokens.subarray(i * s, (i + 1) * s)],
    mask: [...file.mask!.subarray(i * s, (i + 1) * s)],
  }));
}

describe('SeededRng', () => {
  it('repeats for a seed and differs across seeds', () => {
    const a = new SeededRng(7);
    const b = new SeededRng(7);
    const c = new SeededRng(8);
    const seqA = Array.from({ length: 5 }, () => a.nextU32());
    expect(Array.from({ length: 5 }, () => b.nextU32())).toEqual(seqA);
    expect(Array.from({ length: 5 }, () => c.nextU32())).not.toEqual(seqA);
  });
  it('draws in range and distinct values without repeats', () => {
    const rng = new SeededRng(1);
    const counts = new Array(4).fill(0);
    for (let i = 0; i < 4000; i++) counts[rng.below(4)]++;
    for (const c of counts) expect(c).toBeGreaterThan(800);
    expect(new Set(rng.distinct(50, 50)).size).toBe(50);
  });
});

describe('mqar', () => {
  const file = generateTask({ task: 'mqar', seqLen: 40, count: 20, seed: 3, numPairs: 6 });
  it('is deterministic from the seed', () => {
    expect(generateTask({ task: 'mqar', seqLen: 40, count: 20, seed: 3, numPairs: 6 }).tokens).toEqual(file.tokens);
    expect(generateTask({ task: 'mqar', seqLen: 40, count: 20, seed: 4, numPairs: 6 }).tokens).not.toEqual(file.tokens);
  });
  it('asks every key once and scores exactly the recalled values', () => {
    for (const { tokens, mask } of samples(file)) {
      expect(tokens[0]).toBe(TASK_BOS);
      expect(tokens[13]).toBe(TASK_SEP);
      const pairs = new Map<number, number>();
      for (let i = 0; i < 6; i++) pairs.set(tokens[1 + 2 * i]!, tokens[2 + 2 * i]!);
      expect(pairs.size).toBe(6);
      const asked = new Set<number>();
      for (let q = 0; q < 6; q++) {
        const key = tokens[14 + 2 * q]!;
        asked.add(key);
        expect(tokens[15 + 2 * q]).toBe(pairs.get(key));
        expect(mask[15 + 2 * q]).toBe(1);
      }
      expect(asked.size).toBe(6);
      expect(mask.reduce((a, b) => a + b, 0)).toBe(6);
      expect(tokens.slice(26)).toEqual(new Array(14).fill(TASK_PAD));
    }
  });
});

describe('needle', () => {
  it('puts the question exactly `distance` tokens after the needle and scores only its value', () => {
    const file = generateTask({ task: 'needle', seqLen: 64, count: 10, seed: 9, distance: 20 });
    for (const { tokens, mask } of samples(file)) {
      expect(tokens[63 - 2]).toBe(TASK_SEP);
      const key = tokens[62]!;
      const value = tokens[63]!;
      expect(value).toBeGreaterThanOrEqual(VALUE_BASE);
      const needleAt = tokens.indexOf(key);
      expect(tokens[needleAt + 1]).toBe(value);
      expect(61 - (needleAt + 2)).toBe(20);
      expect(tokens.filter((t) => t === key)).toHaveLength(2);
      expect(mask.reduce((a, b) => a + b, 0)).toBe(1);
      expect(mask[63]).toBe(1);
    }
  });
});

describe('copy', () => {
  it('repeats the string after the separator and scores the copy', () => {
    const file = generateTask({ task: 'copy', seqLen: 23, count: 5, seed: 1 });
    for (const { tokens, mask } of samples(file)) {
      expect(tokens[0]).toBe(TASK_BOS);
      expect(tokens[11]).toBe(TASK_SEP);
      expect(tokens.slice(12, 22)).toEqual(tokens.slice(1, 11));
      expect(mask.slice(12, 22)).toEqual(new Array(10).fill(1));
      expect(mask.reduce((a, b) => a + b, 0)).toBe(10);
      expect(tokens[22]).toBe(TASK_PAD);
    }
  });
});

describe('option checks', () => {
  it('explains options that cannot fit', () => {
    expect(checkTaskOptions({ task: 'mqar', seqLen: 16, count: 1, seed: 0, numPairs: 8 })).toBe('mqar: num_pairs 8 needs seq_len >= 34, got 16');
    expect(checkTaskOptions({ task: 'mqar', seqLen: 4096, count: 1, seed: 0, numPairs: 200 })).toMatch(/exceeds the 128 distinct keys/);
    expect(checkTaskOptions({ task: 'needle', seqLen: 100, count: 1, seed: 0, distance: 256 })).toBe('needle: distance 256 needs seq_len >= 262, got 100');
    expect(() => generateTask({ task: 'copy', seqLen: 3, count: 1, seed: 0 })).toThrow(/copy: seq_len must be an integer >= 4/);
  });
});
