// Resume through the real CLI equals the uninterrupted run: `strata train` for 12 steps, against
// `strata train --steps 6` then `strata resume RUN --steps 12` on the same design and seed. Every
// step after the resume point and the final held-out evaluation must match the uninterrupted run
// exactly (the engine restores weights, optimizer moments, RNG and data position bit for bit).
// The schedule is constant after warm-up so the planned total does not change the learning rate.
// Not a speed test: nothing here looks at time.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

import { eventsOfType, finalEval, stepLosses, strataJson, writeDesign } from './cli-runs.js';

describe('strata resume', () => {
  it('continues tiny-hybrid exactly as the uninterrupted run', () => {
    const dir = mkdtempSync(join(tmpdir(), 'strata-training-resume-'));
    try {
      const design = writeDesign(join(dir, 'design.json'), 'tiny-hybrid', {
        training: {
          steps: 12, batch_size: 4, seq_len: 64, lr: 3e-3, warmup_steps: 3, schedule: 'constant', eval_every: 0, checkpoint_every: 0, seed: 11,
        },
        evaluations: [{ kind: 'heldout', batches: 2 }],
      });
      const whole = strataJson(['train', design, '--data', 'corpus', '--run-dir', join(dir, 'whole')]);
      const first = strataJson(['train', design, '--data', 'corpus', '--steps', '6', '--run-dir', join(dir, 'split')]);
      const resumed = strataJson(['resume', join(dir, 'split'), '--steps', '12']);

      const expected = stepLosses(whole);
      expect(expected.size).toBe(12);
      const before = stepLosses(first);
      expect([...before.keys()]).toEqual([1, 2, 3, 4, 5, 6]);
      for (const [step, loss] of before) expect(loss, `step ${step} before the resume`).toBe(expected.get(step));
      const after = stepLosses(resumed);
      expect([...after.keys()]).toEqual([7, 8, 9, 10, 11, 12]);
      for (const [step, loss] of after) expect(loss, `step ${step} after the resume`).toBe(expected.get(step));
      expect(eventsOfType(resumed, 'start')[0]?.start_step).toBe(6);
      expect(Number(finalEval(resumed).loss)).toBe(Number(finalEval(whole).loss));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
