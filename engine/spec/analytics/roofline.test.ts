// Tests of the roofline estimates (hand-derived small cases, the hardware rate rules, MoE expert
// touching) and of the throughput claims of the reference "in spirit".
import { describe, expect, it } from 'vitest';
import { parseModel } from '../document.js';
import { gemmRate, hardwareProfile, isNative } from '../hardware.js';
import { presetPolicy, resolvePrecision } from '../precision.js';
import { parseDocument } from '../validate.js';
import { templateDocument } from '../../../templates/index.js';
import { estimateRoofline, expectedCopiesTouched } from './roofline.js';
import { blockTensors } from './tensors.js';
import { blockAt, smallModel } from './testing-models.js';

const T = 1e12;
const h200 = hardwareProfile('h200');

function template(name: string) {
  const parsed = parseDocument(templateDocument(name));
  if (!parsed.ok) throw new Error(`${name} does not parse`);
  return parsed.doc.model;
}

describe('hardware', () => {
  it('runs native formats at their peak and emulated ones at the BF16 rate', () => {
    expect(gemmRate(h200, 'fp8_e4m3')).toBe(1979 * T);
    expect(gemmRate(h200, 'nvfp4')).toBe(989 * T);
    expect(isNative(h200, 'mxfp8')).toBe(false);
    const b200 = hardwareProfile('B200');
    expect(gemmRate(b200, 'nvfp4')).toBe(4 * gemmRate(b200, 'bf16'));
    expect(gemmRate(b200, 'mxfp8')).toBe(2 * gemmRate(b200, 'bf16'));
    expect(gemmRate(h200, 'bf16', 'measured')).toBe(775 * T);
    expect(gemmRate(hardwareProfile('h100'), 'bf16', 'measured')).toBe(989 * T); // no measurement: datasheet
    expect(gemmRate(hardwareProfile('cpu'), 'nvfp4')).toBe(gemmRate(hardwareProfile('cpu'), 'fp32'));
  });

  it('names the known profiles when the id is unknown', () => {
    expect(() => hardwareProfile('tpu')).toThrow(/unknown hardware 'tpu' \(known: h100, h200, b200, cpu\)/);
  });
});

describe('roofline', () => {
  const mlp = parseModel({ name: 'm', vocab_size: 32, d_model: 16, stack: [{ kind: 'mlp', ffn: 32 }] });

  it('decodes a small MLP layer at batch 1 as memory-bound with the hand-derived intensity', () => {
    const r = estimateRoofline(mlp, resolvePrecision(mlp), h200, { context: 8, batch: 1 });
    const layer = r.decode.rows[0]!;
    // FLOPs 2*(16*32 + 32*16) = 2048; bytes: bf16 weights 2048 + activations 2*(16+32)*2 + norm 32
    expect(layer.flops).toBe(2048);
    expect(layer.bytes).toBe(2048 + 192 + 32);
    expect(layer.intensity).toBeCloseTo(2048 / 2272, 12);
    expect(layer.bound).toBe('memory');
    expect(layer.time_s).toBeCloseTo(2272 / 4.8e12, 20);
    expect(r.decode.rows.at(-1)!.kind).toBe('head');
    expect(r.decode.tokens_per_s).toBeCloseTo(1 / r.decode.step_s, 6);
  });

  it('becomes compute-bound for prefill of a wide layer over many tokens', () => {
    const wide = parseModel({ name: 'w', vocab_size: 32, d_model: 4096, stack: [{ kind: 'mlp', ffn: 16384 }] });
    const r = estimateRoofline(wide, resolvePrecision(wide), h200, { context: 8192, batch: 4 });
    expect(r.prefill.rows[0]!.bound).toBe('compute');
    expect(r.prefill.rows[0]!.intensity).toBeGreaterThan(r.hardware.ridge_intensity);
    expect(r.decode.rows[0]!.bound).toBe('memory');
    expect(r.prefill.tokens_per_step).toBe(4 * 8192);
    expect(r.train.rows[0]!.flops).toBe(3 * r.prefill.rows[0]!.flops);
  });

  it('expects top-k of E experts touched for one token and all of them for many', () => {
    const fc1 = blockTensors(blockAt(smallModel(), 1), 8).find((t) => t.name === 'experts.fc1')!;
    expect(expectedCopiesTouched(fc1, 1)).toBeCloseTo(2, 12);
    expect(expectedCopiesTouched(fc1, 2)).toBeCloseTo(4 * (1 - 0.25), 12);
    expect(expectedCopiesTouched(fc1, 10_000)).toBeCloseTo(4, 12);
  });

  it('lists native and emulated formats of the chip', () => {
    const r = estimateRoofline(mlp, resolvePrecision(mlp), hardwareProfile('h100'), { context: 8, batch: 1 });
    expect(r.hardware.native).toEqual(['bf16', 'fp8_e4m3', 'fp8_e5m2']);
    expect(r.hardware.emulated).toEqual(['fp32', 'mxfp8', 'nvfp4']);
  });

  it('NVFP4 speeds Nano prefill up on B200 but not on H200, where it is emulated', () => {
    const model = template('nemotron-3-nano-30b-a3b');
    const bf16 = resolvePrecision(model, presetPolicy('bf16'));
    const recipe = resolvePrecision(model);
    const opts = { context: 8192, batch: 1 };
    const gain = (hw: string) =>
      estimateRoofline(model, recipe, hardwareProfile(hw), opts).prefill.tokens_per_s /
      estimateRoofline(model, bf16, hardwareProfile(hw), opts).prefill.tokens_per_s;
    expect(gain('b200')).toBeGreaterThan(1.5);
    expect(gain('h200')).toBeCloseTo(1, 1);
  });

  it('reproduces in spirit Nano decoding several times faster than Qwen3-30B-A3B at 8k in / 16k out on one H200', () => {
    // Each model at the largest batch whose caches at 24k tokens fit next to its BF16 weights,
    // decoding at the average context of the 16k generated tokens (8k + 8k).
    const rate = (name: string) => {
      const model = template(name);
      const table = resolvePrecision(model, presetPolicy('bf16'));
      const batch = estimateRoofline(model, table, h200, { context: 8192 + 16384, batch: 1 }).max_batch_in_memory;
      return estimateRoofline(model, table, h200, { context: 16384, batch }).decode.tokens_per_s;
    };
    expect(rate('nemotron-3-nano-30b-a3b') / rate('qwen3-30b-a3b')).toBeGreaterThan(2.5);
  });

  it('fits as many sequences as the memory left by the weights allows', () => {
    const model = template('qwen3-30b-a3b');
    const r = estimateRoofline(model, resolvePrecision(model), h200, { context: 24576, batch: 1 });
    // (141e9 - 2 * 30.532e9 bytes of weights) / (96 KiB x 24576 tokens)
    expect(r.max_batch_in_memory).toBe(Math.floor((141e9 - 61_064_245_248) / (98304 * 24576)));
    expect(estimateRoofline(model, resolvePrecision(model), hardwareProfile('h100'), { context: 24576, batch: 1 }).max_batch_in_memory).toBe(7);
  });
});
