// Training quality on text: `tiny-hybrid` trained through the real CLI on the bundled corpus (byte
// tokenizer) for 300 steps of 8 x 64 tokens must reach a held-out loss at least 0.5 nats/token below
// the unigram baseline, the cross-entropy of the held-out tokens under the train split's token
// frequencies (add-one smoothed). Both sides read the same token files the run wrote (data/*.stok).
// Not a speed test: nothing here looks at time.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

import { readStok } from '../../engine/runtime/data/stok.js';
import { eventsOfType, finalEval, strataJson, writeDesign } from './cli-runs.js';

const MARGIN_NATS = 0.5;

/** Mean -ln q(token) over `heldout`, q the add-one smoothed unigram distribution of `train`. */
export function unigramCrossEntropy(train: Uint32Array, heldout: Uint32Array, vocab: number): number {
  const counts = new Float64Array(vocab).fill(1);
  for (const token of train) counts[token] = (counts[token] ?? 0) + 1;
  const total = train.length + vocab;
  let nats = 0;
  for (const token of heldout) nats -= Math.log((counts[token] ?? 1) / total);
  return nats / heldout.length;
}

describe('tiny-hybrid on the bundled corpus', () => {
  it(`reaches a held-out loss at least ${MARGIN_NATS} nats/token below the unigram baseline`, () => {
    const dir = mkdtempSync(join(tmpdir(), 'strata-training-corpus-'));
    try {
      const design = writeDesign(join(dir, 'design.json'), 'tiny-hybrid', {
        training: { steps: 300, batch_size: 8, seq_len: 64, lr: 3e-3, warmup_steps: 30, eval_every: 0, checkpoint_every: 0, seed: 7 },
        evaluations: [{ kind: 'heldout', batches: 16 }],
      });
      const run = join(dir, 'run');
      const events = strataJson(['train', design, '--data', 'corpus', '--run-dir', run]);
      expect(eventsOfType(events, 'step')).toHaveLength(300);
      const heldoutLoss = Number(finalEval(events).loss);

      const train = readStok(join(run, 'data', 'train.stok'));
      const heldout = readStok(join(run, 'data', 'heldout.stok'));
      const baseline = unigramCrossEntropy(train.tokens, heldout.tokens, Math.max(train.vocab, heldout.vocab));
      // the baseline is a real bar: English bytes carry about 3.3 nats under unigram frequencies
      expect(baseline).toBeGreaterThan(2.5);
      expect(baseline).toBeLessThan(Math.log(256));
      expect(heldoutLoss, `held-out loss ${heldoutLoss.toFixed(3)} vs unigram ${baseline.toFixed(3)} nats/token`).toBeLessThanOrEqual(
        baseline - MARGIN_NATS,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
