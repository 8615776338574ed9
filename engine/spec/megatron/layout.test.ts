// Tests of parallel layouts: defaults and DP, the rules (world size, head/group/width divisibility by
// TP and CP, experts by EP, batch by micro-batch x DP, CP sequence length), and pipeline cuts.
import { describe, expect, it } from 'vitest';
import { type ModelSpec } from '../document.js';
import { parseDocument } from '../validate.js';
import { templateDocument } from '../../../templates/index.js';
import { balancedCuts, completeLayout, expertDataParallel, layoutProblems, microBatchesPerStep, stageCuts, stageRanges } from './layout.js';

function template(name: string): ModelSpec {
  const parsed = parseDocument(templateDocument(name));
  if (!parsed.ok) throw new Error(parsed.errors.map((e) => e.message).join('; '));
  return parsed.doc.model;
}

const nano = template('nemotron-3-nano-30b-a3b');

describe('completeLayout', () => {
  it('fills defaults and derives DP from the world size', () => {
    const layout = completeLayout({ nodes: 2, gpusPerNode: 8 }, { tp: 2, pp: 2 });
    expect(layout).toEqual({ tp: 2, pp: 2, ep: 1, cp: 1, dp: 4, microBatch: 1, globalBatch: 512, seqLen: 8192, recompute: 'none', distributedOptimizer: true });
    expect(microBatchesPerStep(layout)).toBe(128);
    expect(expertDataParallel({ ...layout, ep: 4 })).toBe(2);
  });
});

describe('layoutProblems', () => {
  const cluster = { nodes: 1, gpusPerNode: 8 };
  it('accepts a valid Nano layout', () => {
    expect(layoutProblems(nano, cluster, completeLayout(cluster, { tp: 2, ep: 8 }))).toEqual([]);
  });

  it('names every broken rule with the layer, field and degree', () => {
    const problems = layoutProblems(nano, cluster, { ...completeLayout(cluster, { tp: 4, ep: 3, cp: 2 }), dp: 2, globalBatch: 5, seqLen: 4094 });
    expect(problems).toContain('layer 5 (attention): kv_heads 2 is not a multiple of TP 4');
    expect(problems).toContain('layer 1 (moe): experts 128 is not a multiple of EP 3');
    expect(problems).toContain('TP 4 x PP 1 x CP 2 x DP 2 = 16 does not equal the 8 GPUs (1 nodes x 8)');
    expect(problems).toContain('EP 3 does not divide TP x CP x DP = 16 (the ranks of one pipeline stage)');
    expect(problems).toContain('sequence length 4094 is not a multiple of 2 x CP = 4');
    expect(problems).toContain('global batch 5 is not a multiple of micro-batch 1 x DP 2 = 2');
  });

  it('asks Mamba heads to divide by TP x CP, and EP to have experts', () => {
    const mamba = template('mamba2-2.7b'); // 80 heads, one group
    const c = { nodes: 1, gpusPerNode: 32 };
    expect(layoutProblems(mamba, c, completeLayout(c, { tp: 1, cp: 32 }))).toContain('layer 0 (mamba2): heads 80 is not a multiple of TP x CP 32');
    expect(layoutProblems(mamba, c, completeLayout(c, { tp: 2 }))).toContain('layer 0 (mamba2): groups 1 is not a multiple of TP 2');
    expect(layoutProblems(mamba, c, completeLayout(c, { ep: 2 }))).toContain('EP 2 needs MoE layers; the design has none');
  });

  it('rejects non-integer and zero sizes before anything else', () => {
    expect(layoutProblems(nano, { nodes: 0, gpusPerNode: 8 }, completeLayout(cluster, {}))).toEqual(['nodes 0 is not a positive whole number']);
  });
});

describe('pipeline cuts', () => {
  it('balances by layer count, earlier stages taking the remainder', () => {
    expect(balancedCuts(52, 4)).toEqual([13, 26, 39]);
    expect(balancedCuts(10, 3)).toEqual([4, 7]);
    expect(stageRanges(10, [4, 7])).toEqual([
      { first: 0, end: 4 },
      { first: 4, end: 7 },
      { first: 7, end: 10 },
    ]);
  });

  it("keeps the document's cuts when they give PP stages", () => {
    const model = { ...nano, pipeline_cuts: [20] };
    expect(stageCuts(model, 2)).toEqual({ cuts: [20], source: 'document' });
    expect(stageCuts(model, 4)).toEqual({ cuts: [13, 26, 39], source: 'balanced' });
    expect(stageCuts(model, 1).cuts).toEqual([]);
  });
});
