// Training quality on associative recall (MQAR, engine/runtime/tasks: keys 0..127, values 128..255,
// chance 1/128), through the real CLI, fp32, same data and seed for every model. Two settings:
//
// 1. Both learn (4 pairs per 32-token sample, batch 32, lr 3e-3, 1000 steps): `tiny-hybrid`
//    (Mamba-2 + attention + MoE; 6.56M parameters, 3.02M active) and `tiny-mamba2` (8 Mamba-2
//    layers, 2.0M) must each recall at least 5x chance on held-out samples. Here the Mamba-2 model
//    is the faster learner (~60% against the hybrid's 7-11%; docs/cpu-benchmarks.md, MQAR).
// 2. With more pairs (16 pairs per 66-token sample, batch 16, lr 1e-3, 2000 steps) the hybrid must
//    recall at least 5x chance and beat tiny-mamba2 by at least MARGIN (absolute). Measured with one
//    OpenMP thread, seeds 7 / 8 / 9: hybrid 8.1 / 6.1 / 5.1%, tiny-mamba2 1.5 / 1.5 / 1.4%; this
//    test (two threads, seed 7): hybrid 9.4%, tiny-mamba2 4.1%. The hybrid's recall grows at every
//    query position (binding, not the elimination shortcut); it is a learning-speed lead on a small
//    absolute scale: tiny-mamba2 learns too, later (4.1% at step 4000 with one thread).
//    Sizes are not equal: tiny-mamba2 has 2.0M parameters, fewer than the hybrid's 3.02M active.
//    A Mamba-2 model of equal size (13 layers, 3.19M) reached 4.8% at seed 7 (hybrid 8.1%) with a
//    lower held-out loss (4.25 vs 4.59 nats), so a win at equal size is NOT established (see
//    docs/cpu-benchmarks.md, MQAR session 3, which also has the 4-, 8- and 32-pair results).
//
// Not a speed test: nothing here looks at time.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

import { eventsOfType, finalEval, strataJson, writeDesign } from './cli-runs.js';

const CHANCE = 1 / 128;
const MARGIN = 0.025;

interface Setting {
  pairs: number;
  seqLen: number;
  batch: number;
  lr: number;
  steps: number;
}

const BOTH_LEARN: Setting = { pairs: 4, seqLen: 32, batch: 32, lr: 3e-3, steps: 1000 };
const MANY_PAIRS: Setting = { pairs: 16, seqLen: 66, batch: 16, lr: 1e-3, steps: 2000 };

/** Held-out recall accuracy of `template` trained on `s`. */
function recallAccuracy(dir: string, template: string, s: Setting): number {
  const name = `${template}-${s.pairs}pairs`;
  const design = writeDesign(join(dir, `${name}.json`), template, {
    dataset: { source: 'task', task: 'mqar', num_pairs: s.pairs },
    training: {
      steps: s.steps, batch_size: s.batch, seq_len: s.seqLen, lr: s.lr, warmup_steps: 20, schedule: 'constant', eval_every: 0, checkpoint_every: 0, seed: 7,
    },
    evaluations: [{ kind: 'mqar', batches: 8 }],
    // the same precision for every model: fp32 (the templates' bf16 would only add emulation time)
    precision: { default: 'fp32', rules: [] },
  });
  const events = strataJson(['train', design, '--run-dir', join(dir, name)]);
  expect(eventsOfType(events, 'step')).toHaveLength(s.steps);
  const accuracy = Number(finalEval(events).accuracy);
  expect(Number.isFinite(accuracy), `${name}: the eval event has no accuracy`).toBe(true);
  return accuracy;
}

function withRunFolder<T>(body: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'strata-training-mqar-'));
  try {
    return body(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('MQAR recall', () => {
  it(`tiny-hybrid and tiny-mamba2 both learn recall of ${BOTH_LEARN.pairs} pairs (>= 5x chance) in ${BOTH_LEARN.steps} steps`, () => {
    withRunFolder((dir) => {
      const hybrid = recallAccuracy(dir, 'tiny-hybrid', BOTH_LEARN);
      const mamba = recallAccuracy(dir, 'tiny-mamba2', BOTH_LEARN);
      console.log(`MQAR ${BOTH_LEARN.pairs} pairs, ${BOTH_LEARN.steps} steps: tiny-hybrid ${hybrid.toFixed(3)}, tiny-mamba2 ${mamba.toFixed(3)} (chance ${CHANCE.toFixed(4)})`);
      expect(hybrid, `tiny-hybrid recall ${hybrid}`).toBeGreaterThanOrEqual(5 * CHANCE);
      expect(mamba, `tiny-mamba2 recall ${mamba}`).toBeGreaterThanOrEqual(5 * CHANCE);
    });
  });

  it(
    `tiny-hybrid beats tiny-mamba2 on ${MANY_PAIRS.pairs} pairs by >= ${MARGIN} in ${MANY_PAIRS.steps} steps`,
    () => {
      withRunFolder((dir) => {
        const hybrid = recallAccuracy(dir, 'tiny-hybrid', MANY_PAIRS);
        const mamba = recallAccuracy(dir, 'tiny-mamba2', MANY_PAIRS);
        console.log(
          `MQAR ${MANY_PAIRS.pairs} pairs, ${MANY_PAIRS.steps} steps: tiny-hybrid ${hybrid.toFixed(3)}, ` +
            `tiny-mamba2 ${mamba.toFixed(3)} (chance ${CHANCE.toFixed(4)})`,
        );
        expect(hybrid, `tiny-hybrid recall ${hybrid}`).toBeGreaterThanOrEqual(5 * CHANCE);
        expect(hybrid - mamba, `tiny-hybrid ${hybrid} against tiny-mamba2 ${mamba}`).toBeGreaterThanOrEqual(MARGIN);
      });
    },
    1_500_000,
  );
});
