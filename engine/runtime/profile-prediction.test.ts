// Tests of the predictions added to profile rows: which rows get which fields, hand-derived decode
// state bytes, the ordering the roofline implies (a training step costs more than a prefill of the
// same tokens), untouched measured fields, and the one-line error for an unknown hardware id.
import { describe, expect, it } from 'vitest';
import { profileTable } from '../cli/commands/profile.js';
import { documentFromModel } from '../spec/document.js';
import type { ProfileEvent } from './events.js';
import { profilePrediction } from './profile-prediction.js';

const doc = documentFromModel({
  name: 'Predicted',
  vocab_size: 259,
  d_model: 16,
  stack: [
    { kind: 'mamba2', heads: 2, head_dim: 8, d_state: 4, groups: 1, conv_kernel: 4, chunk: 16 },
    { kind: 'attention', heads: 2, kv_heads: 1, head_dim: 8 },
  ],
});

const row = (fields: Partial<ProfileEvent>): ProfileEvent => ({ type: 'profile', t: 0.5, layer: 0, kind: 'mamba2', op: 'block', batch: 2, context: 100, mode: 'prefill', ...fields });

describe('profile prediction', () => {
  it('adds the predicted time to layer rows and time, rate and hardware to total rows', () => {
    const p = profilePrediction(doc, 'cpu');
    const layer = p.annotate(row({ fwd_ms: 1.5 }));
    expect(layer).toMatchObject({ fwd_ms: 1.5, t: 0.5, predicted_ms: expect.any(Number) });
    expect(layer.predicted_ms as number).toBeGreaterThan(0);
    const total = p.annotate(row({ op: 'total', layer: -1, kind: 'model', ms: 9, tokens_per_s: 22222 }));
    expect(total).toMatchObject({ ms: 9, tokens_per_s: 22222, hardware: 'cpu' });
    expect(total.predicted_tokens_per_s as number).toBeCloseTo(200 / ((total.predicted_ms as number) / 1000), 6);
    const trainTotal = p.annotate(row({ mode: 'train', op: 'total', layer: -1, kind: 'model', ms: 30 }));
    expect(trainTotal.predicted_ms as number).toBeGreaterThan(total.predicted_ms as number);
  });

  it('predicts the decode state as fp32 KV cache plus Mamba state for every sequence', () => {
    const total = profilePrediction(doc, 'cpu').annotate(row({ mode: 'decode', op: 'total', layer: -1, kind: 'model' }));
    // attention: K and V, 1 kv head x 8 dims x 100 tokens x 4 bytes; mamba2: SSM 2x8x4 + conv 3 x (16 + 2x4) channels, x 4 bytes
    const perSequence = 2 * 1 * 8 * 100 * 4 + (2 * 8 * 4 + 3 * (16 + 2 * 4)) * 4;
    expect(total.predicted_bytes).toBe(2 * perSequence);
  });

  it('leaves other events and rows it cannot place alone, and names the known hardware', () => {
    const p = profilePrediction(doc, 'h200');
    const step = { type: 'step', t: 1, step: 1, loss: 2, lr: 0.1, tokens_per_s: 3 } as const;
    expect(p.annotate(step)).toBe(step);
    const unknownLayer = row({ layer: 7 });
    expect(p.annotate(unknownLayer)).toBe(unknownLayer);
    expect(() => profilePrediction(doc, 'tpu')).toThrow(/unknown hardware 'tpu' \(known: h100, h200, b200, cpu\)/);
  });

  it('prints measured and predicted side by side', () => {
    const p = profilePrediction(doc, 'cpu');
    const rows = [row({ label: 'layer.0.mamba2', fwd_ms: 1.25, bytes: 3 * 2 ** 19 }), row({ op: 'total', layer: -1, kind: 'model', ms: 4, tokens_per_s: 50000, bytes: 2 ** 20, bytes_meaning: 'activations' })].map(
      (r) => p.annotate(r) as ProfileEvent,
    );
    const text = profileTable(rows);
    expect(text).toMatch(/^prefill @ 100 \(batch 2\): measured 4\.00 ms\/step, 50000 tok\/s\n  predicted on cpu: \d+\.\d{2} ms\/step, \d+ tok\/s \(measured\/predicted time \d+\.\d{2}x\)\n  memory: activations 1\.00 MiB measured\n/);
    expect(text).toMatch(/layer\.0\.mamba2\s+block\s+1\.250\s+\d+\.\d{3}\s+1\.50$/m);
    expect(text).toMatch(/layer\s+op\s+fwd ms\s+bwd ms\s+predicted ms\s+memory MiB\n/);
    // Decode: the engine's total `ms` spans all its decode steps; the step time comes from the rate (2 sequences at 20 tok/s).
    const decode = p.annotate(row({ mode: 'decode', op: 'total', layer: -1, kind: 'model', ms: 800, tokens_per_s: 20 })) as ProfileEvent;
    expect(profileTable([decode])).toMatch(/^decode @ 100 \(batch 2\): measured 100\.00 ms\/step, 20 tok\/s\n/);
  });
});
