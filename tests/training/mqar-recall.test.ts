// Training quality on associative recall: `tiny-hybrid` (Mamba-2 + attention + MoE) and
// `tiny-mamba2` (Mamba-2 only; 2.0M parameters against the hybrid's 3.0M active / 6.6M total) are
// trained through the real CLI on MQAR (engine/runtime/tasks: 4 key-value pairs per 32-token sample,
// 128 keys and 128 values, so chance is 1/128) with the same steps, batch, learning rate, data and
// seed, both in fp32. After 1000 steps each must recall at least 5x chance on held-out samples
// (argmax on the recalled values).
//
// What this does not assert: that the hybrid beats the Mamba-2 model, which the issue asks for and
// which does not hold with these models and budgets (docs/cpu-benchmarks.md, MQAR): at this setup
// tiny-mamba2 reaches ~62-67% at step 1000 against the hybrid's 7-11%, and stays ahead to
// convergence (99.5% vs 97.0% at 3500 steps); at lower learning rates the hybrid learns the
// "value not yet recalled" shortcut and stalls near 50%. The comparison is printed, not required.
// Not a speed test: nothing here looks at time.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

import { eventsOfType, finalEval, strataJson, writeDesign } from './cli-runs.js';

const STEPS = 1000;
const CHANCE = 1 / 128;

function recallAccuracy(dir: string, template: string): number {
  const design = writeDesign(join(dir, `${template}.json`), template, {
    dataset: { source: 'task', task: 'mqar', num_pairs: 4 },
    training: {
      steps: STEPS, batch_size: 32, seq_len: 32, lr: 3e-3, warmup_steps: 20, schedule: 'constant', eval_every: 0, checkpoint_every: 0, seed: 7,
    },
    evaluations: [{ kind: 'mqar', batches: 8 }],
    // the same precision for both models: fp32 (the templates' bf16 would only add emulation time)
    precision: { default: 'fp32', rules: [] },
  });
  const events = strataJson(['train', design, '--run-dir', join(dir, template)]);
  expect(eventsOfType(events, 'step')).toHaveLength(STEPS);
  const accuracy = Number(finalEval(events).accuracy);
  expect(Number.isFinite(accuracy), `${template}: the eval event has no accuracy`).toBe(true);
  return accuracy;
}

describe('MQAR recall', () => {
  it(`tiny-hybrid and tiny-mamba2 both learn recall (>= 5x chance) in ${STEPS} steps`, () => {
    const dir = mkdtempSync(join(tmpdir(), 'strata-training-mqar-'));
    try {
      const hybrid = recallAccuracy(dir, 'tiny-hybrid');
      const mamba = recallAccuracy(dir, 'tiny-mamba2');
      console.log(`MQAR recall after ${STEPS} steps: tiny-hybrid ${hybrid.toFixed(3)}, tiny-mamba2 ${mamba.toFixed(3)} (chance ${CHANCE.toFixed(4)})`);
      expect(hybrid, `tiny-hybrid recall ${hybrid}`).toBeGreaterThanOrEqual(5 * CHANCE);
      expect(mamba, `tiny-mamba2 recall ${mamba}`).toBeGreaterThanOrEqual(5 * CHANCE);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
