// Training quality on associative recall (MQAR, engine/runtime/tasks: keys 0..127, values 128..255,
// chance 1/128), through the real CLI, fp32, same data and seed (7) for every model. Two settings:
//
// 1. Both learn (4 pairs per 32-token sample, batch 32, lr 3e-3, 1000 steps): `tiny-hybrid`
//    (Mamba-2 + attention + MoE; 6.56M parameters, 3.02M active) and `tiny-mamba2` (8 Mamba-2
//    layers, 2.0M) must each recall at least 5x chance on held-out samples. Here the Mamba-2 model
//    is the faster learner (~60% against the hybrid's 7-11%; docs/cpu-benchmarks.md, MQAR).
// 2. Equal size, more pairs (16 pairs per 66-token sample, batch 16, lr 1e-3, 2000 steps): the
//    hybrid must recall at least 5x chance and beat a Mamba-2 model of equal size by at least MARGIN
//    (absolute). The equal-size model is tiny-mamba2's block repeated 13 times (3.19M parameters,
//    5.4% more than the hybrid's 3.02M active; computed from the templates below, checked within
//    10%). Measured with one OpenMP thread (`scripts/experiments/mqar_run.mjs`), seeds 7 / 8 / 9 /
//    10 / 11: hybrid 8.1 / 6.1 / 5.1 / 7.8 / 7.2%, equal-size Mamba-2 4.8 / 0.8 / 1.5 / 1.3 / 1.9%
//    (smallest gap 3.3 points, seed 7, where the Mamba-2 model has the lower held-out loss, 4.25
//    against 4.59 nats; on seeds 8-11 the hybrid's loss is lower too). This test (two
//    threads, seed 7): hybrid 9.4%, equal-size Mamba-2 1.3%. MARGIN (2.5 points) is below every
//    gap measured (3.3-8.1 points). The hybrid recalls at every query
//    position (binding, not the elimination shortcut). It is a learning-speed lead on a small
//    absolute scale (6.5-10x chance): Mamba-2 models learn this too, later; at 4 and 8 pairs
//    tiny-mamba2 wins (docs/cpu-benchmarks.md, MQAR sessions 3 and 4).
//
// Not a speed test: nothing here looks at time.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

import { type ParamsReport, countParams } from '../../engine/spec/analytics/params.js';
import { loadDocument } from '../../engine/spec/validate.js';
import { REPO_ROOT, eventsOfType, finalEval, strataJson, writeDesign } from './cli-runs.js';

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

function templateDoc(template: string): unknown {
  return JSON.parse(readFileSync(join(REPO_ROOT, 'templates', `${template}.json`), 'utf8'));
}

/** Parameter counts as `strata analyze` reports them (active: what one token uses; MoE leaves idle experts out). */
function params(doc: unknown): ParamsReport {
  return countParams(loadDocument(doc).model);
}

/** tiny-mamba2 (one repeat of one Mamba-2 block) with its block repeated `layers` times. */
function mamba2WithLayers(doc: unknown, layers: number): unknown {
  const copy = structuredClone(doc) as { model: { stack: { kind: string; count: number }[] } };
  const [repeat, ...others] = copy.model.stack;
  if (!repeat || repeat.kind !== 'repeat' || others.length) throw new Error('tiny-mamba2 is no longer one repeat of one block');
  repeat.count = layers;
  return copy;
}

/**
 * The equal-size Mamba-2: tiny-mamba2's block repeated the fewest times whose parameters reach
 * tiny-hybrid's active parameters (what one token uses: its MoE layers hold 8 routed experts and
 * route 2). From the templates: (3,024,808 active - 101,568 for embedding, head and final norm) /
 * 237,458 per Mamba-2 layer = 12.3, so 13 layers, 3,188,522 parameters (5.4% more).
 */
function equalSizeMamba2Layers(): number {
  const mamba = params(templateDoc('tiny-mamba2'));
  const perLayer = mamba.by_kind.mamba2.total / mamba.by_kind.mamba2.layers;
  const outsideStack = mamba.total - mamba.by_kind.mamba2.total;
  return Math.ceil((params(templateDoc('tiny-hybrid')).active - outsideStack) / perLayer);
}

/** Held-out recall accuracy of `name` (a template, or a template document changed by the test) trained on `s`. */
function recallAccuracy(dir: string, template: string, s: Setting, doc?: unknown): number {
  const name = `${doc ? `${template}-equal-size` : template}-${s.pairs}pairs`;
  const design = writeDesign(join(dir, `${name}.json`), template, {
    dataset: { source: 'task', task: 'mqar', num_pairs: s.pairs },
    training: {
      steps: s.steps, batch_size: s.batch, seq_len: s.seqLen, lr: s.lr, warmup_steps: 20, schedule: 'constant', eval_every: 0, checkpoint_every: 0, seed: 7,
    },
    evaluations: [{ kind: 'mqar', batches: 8 }],
    // the same precision for every model: fp32 (the templates' bf16 would only add emulation time)
    precision: { default: 'fp32', rules: [] },
  });
  if (doc) {
    // the same pipeline as the template's run, the test's model
    const written = JSON.parse(readFileSync(design, 'utf8'));
    written.model.stack = (doc as { model: { stack: unknown } }).model.stack;
    writeFileSync(design, `${JSON.stringify(written, null, 2)}\n`);
  }
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

  it('the equal-size Mamba-2 has the hybrid\'s active parameter count (within 10%)', () => {
    const layers = equalSizeMamba2Layers();
    const mamba = params(mamba2WithLayers(templateDoc('tiny-mamba2'), layers));
    const hybrid = params(templateDoc('tiny-hybrid'));
    console.log(`equal-size Mamba-2: ${layers} layers, ${mamba.total} parameters; tiny-hybrid ${hybrid.active} active, ${hybrid.total} total`);
    expect(layers, 'docs/cpu-benchmarks.md measured 13 layers').toBe(13);
    expect(mamba.total).toBeGreaterThanOrEqual(hybrid.active);
    expect(Math.abs(mamba.total / hybrid.active - 1)).toBeLessThanOrEqual(0.1);
  });

  it(
    `tiny-hybrid beats a Mamba-2 model of equal size on ${MANY_PAIRS.pairs} pairs by >= ${MARGIN} in ${MANY_PAIRS.steps} steps`,
    () => {
      withRunFolder((dir) => {
        const layers = equalSizeMamba2Layers();
        const hybrid = recallAccuracy(dir, 'tiny-hybrid', MANY_PAIRS);
        const mamba = recallAccuracy(dir, 'tiny-mamba2', MANY_PAIRS, mamba2WithLayers(templateDoc('tiny-mamba2'), layers));
        console.log(
          `MQAR ${MANY_PAIRS.pairs} pairs, ${MANY_PAIRS.steps} steps: tiny-hybrid ${hybrid.toFixed(3)}, ` +
            `Mamba-2 x${layers} ${mamba.toFixed(3)} (chance ${CHANCE.toFixed(4)})`,
        );
        expect(hybrid, `tiny-hybrid recall ${hybrid}`).toBeGreaterThanOrEqual(5 * CHANCE);
        expect(hybrid - mamba, `tiny-hybrid ${hybrid} against Mamba-2 x${layers} ${mamba}`).toBeGreaterThanOrEqual(MARGIN);
      });
    },
    1_500_000,
  );
});
