// Tests of the precision experiment's pure parts (precision-experiment.ts): the arm documents, the
// loss / gap / underflow summary over synthetic run events, and the Markdown report.
import { describe, expect, it } from 'vitest';
import { documentFromModel } from './document.js';
import { EXPERIMENT_ARMS, armDocument, renderExperiment, summarizeExperiment } from './precision-experiment.js';
import type { PrecisionEvent } from './precision-inspect.js';

const base = documentFromModel({
  name: 'exp',
  vocab_size: 264,
  d_model: 32,
  stack: [{ kind: 'mlp', ffn: 64 }, { kind: 'mlp', ffn: 64 }],
});
const settings = { steps: 20, batch: 2, seqLen: 16, seed: 7, inspectEvery: 10 };

function event(step: number, layer: number, role: string, underflow: number, elements: number, format = 'nvfp4'): PrecisionEvent {
  return { type: 'precision', t: 0, step, layer, role, pass: 'fprop', operand: 'activation', format, elements, amax: 1, rel_err: 0.1,
    snr_db: 20, underflow, clipped: 0, scale_min: 1, scale_max: 1, scale_mean: 1, histogram: [], histogram_min_exp: -48,
    histogram_zeros: 0 } as PrecisionEvent;
}

describe('armDocument', () => {
  it('gives every arm the same settings and its own preset', () => {
    const docs = EXPERIMENT_ARMS.map((arm) => armDocument(base, arm, settings));
    expect(docs.map((d) => d.model.precision.preset)).toEqual(['bf16', 'nemotron3-nvfp4', 'nvfp4-all']);
    for (const d of docs) {
      expect(d.pipeline.training).toMatchObject({ steps: 20, batch_size: 2, seq_len: 16, seed: 7, eval_every: 10, checkpoint_every: 0 });
      expect(d.pipeline.training.warmup_steps).toBe(2);
    }
    expect(base.model.precision.preset).toBeUndefined(); // the base design is not modified
  });
});

describe('summarizeExperiment', () => {
  const [bf16, recipe, all] = EXPERIMENT_ARMS;
  const runs = [
    { arm: bf16!, stepLosses: [5, 4, 3, 2, 2, 2, 2, 2, 2, 2], evalLosses: [2.5, 2.0], precision: [] },
    {
      arm: recipe!,
      stepLosses: [5, 4, 3, 2, 2, 2, 2, 2, 2, 2.2],
      evalLosses: [2.6, 2.1],
      precision: [event(5, 0, 'mlp.fc1', 0.9, 100), event(10, 0, 'mlp.fc1', 0.1, 100), event(10, 1, 'mlp.fc2', 0.3, 300), event(10, 1, 'mlp.fc1', 0.5, 100, 'bf16')],
    },
    { arm: all!, stepLosses: [5, 4, 3, 2, 2, 2, 2, 2, 2, 2.4], evalLosses: [2.6, 2.2], precision: [event(10, 1, 'mlp.fc2', 0.4, 100)] },
  ];
  const summary = summarizeExperiment(runs, 1);
  it('computes tail-mean losses and gaps relative to BF16', () => {
    expect(summary.arms.map((a) => a.tail)).toEqual([1, 1, 1]);
    expect(summary.arms[1]!.gap).toBeCloseTo(0.1, 12);
    expect(summary.arms[2]!.gap).toBeCloseTo(0.2, 12);
    expect(summary.arms[1]!.evalGap).toBeCloseTo(0.05, 12);
    expect(summary.arms[0]!.gap).toBe(0);
  });
  it('weighs NVFP4 underflow by elements at the last inspected step only', () => {
    expect(summary.arms[1]!.nvfp4Underflow).toBeCloseTo((0.1 * 100 + 0.3 * 300) / 400, 12);
    expect(summary.arms[0]!.nvfp4Underflow).toBeNull();
    expect(summary.worst['nvfp4-recipe']).toEqual([{ layer: 1, role: 'mlp.fc2', pass: 'fprop', operand: 'activation', underflow: 0.3 }]);
    expect(summary.byLayer['nvfp4-recipe']).toEqual([{ layer: 0, underflow: 0.1 }, { layer: 1, underflow: 0.3 }]);
    expect(summary.worst.bf16).toBeUndefined();
  });
  it('renders the report', () => {
    const text = renderExperiment(summary, { design: 'exp', settings, data: 'the bundled corpus', command: 'strata precision-experiment exp' });
    expect(text).toContain('| NVFP4, Nemotron 3 recipe | `nemotron3-nvfp4` | 2.2000 | 2.1000 | +10.00% | +5.00% | 25.00% |');
    expect(text).toContain('## Where NVFP4 underflows most: NVFP4, no exceptions');
    expect(text).toContain('By layer (NVFP4 operands only): 0: 10.0%, 1: 30.0%');
    expect(text).not.toContain('## Notes');
    const noted = renderExperiment(summary, { design: 'exp', settings, data: 'x', command: 'c', notes: ['head fprop weight: table bf16, engine nvfp4'] });
    expect(noted).toContain('## Notes');
    expect(noted).toContain('- head fprop weight: table bf16, engine nvfp4');
  });
  it('needs a BF16 reference', () => {
    expect(() => summarizeExperiment([runs[1]!])).toThrow('no BF16 arm');
  });
});
