// Tests of folding run events into series, progress/ETA and CSV.
import { describe, expect, it } from 'vitest';
import type { RunEvent } from '../../electron/contract.js';
import { applyEvents, emptyRunData, formatDuration, metricsCsv, runProgress } from './run-data.js';

const step = (s: number, t: number): RunEvent => ({ type: 'step', t, step: s, loss: 5 - s / 10, lr: 0.001, tokens_per_s: 1000 + s });

describe('run data', () => {
  it('folds events by line, skipping duplicates and refusing gaps', () => {
    let d = emptyRunData('r1');
    d = applyEvents(d, 0, [{ type: 'start', t: 0, steps: 10 }, step(1, 1), step(2, 2)]);
    expect(d.steps).toEqual([1, 2]);
    d = applyEvents(d, 1, [step(1, 1), step(2, 2), step(3, 3)]);
    expect(d.steps).toEqual([1, 2, 3]);
    const same = applyEvents(d, 9, [step(9, 9)]);
    expect(same).toBe(d);
    d = applyEvents(d, 4, [{ type: 'eval', t: 3.5, step: 3, loss: 4.2, ppl: 66.7 }, { type: 'done', t: 4, reason: 'stopped' }]);
    expect(d.evals[0]).toMatchObject({ step: 3, loss: 4.2, ppl: 66.7, bpb: null });
    expect(d.status).toBe('stopped');
  });

  it('computes progress and ETA from event times', () => {
    let d = emptyRunData('r2');
    d = applyEvents(d, 0, [{ type: 'start', t: 0, steps: 100 }, step(10, 5), step(20, 10)]);
    const p = runProgress(d);
    expect(p.fraction).toBeCloseTo(0.2);
    expect(p.etaS).toBeCloseTo(40);
    expect(p.tokensPerS).toBe(1020);
    expect(formatDuration(3725)).toBe('1h 02m');
    expect(formatDuration(65)).toBe('1m 05s');
  });

  it('records errors and precision rows', () => {
    let d = emptyRunData('r3');
    d = applyEvents(d, 0, [
      { type: 'precision', t: 1, table: [] },
      { type: 'precision', t: 1, step: 5, layer: 2, role: 'mamba.out_proj', pass: 'fprop', operand: 'weight', format: 'nvfp4', rel_err: 0.08, underflow: 0.12, amax: 3.5 },
      { type: 'error', t: 2, message: 'out of memory' },
    ]);
    expect(d.precision).toEqual([{ layer: 2, step: 5, role: 'mamba.out_proj', pass: 'fprop', operand: 'weight', format: 'nvfp4', error: 0.08, underflow: 0.12, amax: 3.5 }]);
    expect(d.status).toBe('error');
    expect(d.error).toBe('out of memory');
  });

  it('exports metrics as CSV', () => {
    let d = emptyRunData('r4');
    d = applyEvents(d, 0, [step(1, 0.5), { type: 'eval', t: 0.7, step: 1, loss: 4.5, bpb: 1.9 }, step(2, 1)]);
    expect(metricsCsv(d).trim().split('\n')).toEqual([
      'step,t_s,loss,lr,tokens_per_s,eval_loss,eval_ppl,eval_bpb',
      '1,0.5,4.9,0.001,1001,4.5,,1.9',
      '2,1,4.8,0.001,1002,,,',
    ]);
  });
});
