// Tests of precision inspection (precision-inspect.ts): parameter-name -> GEMM role mapping,
// checkpoint-weight inspection through the TS quantizer mirror, joining events with the resolved
// table, event validation and the rendered table.
import { describe, expect, it } from 'vitest';
import { documentFromModel, type ModelSpecInput } from './document.js';
import { presetPolicy, resolvePrecision } from './precision.js';
import {
  type PrecisionEvent,
  asPrecisionEvent,
  eventsOfStep,
  inspectWeights,
  inspectionRows,
  parameterPlace,
  renderInspection,
  emulationNote,
  worstUnderflow,
} from './precision-inspect.js';

const model: ModelSpecInput = {
  name: 'inspect',
  vocab_size: 64,
  d_model: 32,
  stack: [
    { kind: 'mamba2', heads: 2, head_dim: 16, d_state: 8, groups: 1, conv_kernel: 4, chunk: 16 },
    { kind: 'attention', heads: 2, kv_heads: 1, head_dim: 16 },
    { kind: 'mlp', ffn: 64 },
  ],
  precision: presetPolicy('nemotron3-nvfp4'),
};
const doc = documentFromModel(model);
const table = resolvePrecision(doc.model);

/** Deterministic weights with an occasional outlier (rows x cols). */
function weights(rows: number, cols: number, seed: number): Float32Array {
  const out = new Float32Array(rows * cols);
  let s = seed;
  for (let i = 0; i < out.length; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    out[i] = ((s / 2147483648) - 0.5) * 0.04 * (i % 97 === 0 ? 30 : 1);
  }
  return out;
}

describe('parameterPlace', () => {
  it('maps engine parameter names to GEMM roles', () => {
    expect(parameterPlace('backbone.layers.0.mixer.in_proj.weight')).toEqual({ layer: 0, role: 'mamba.in_proj' });
    expect(parameterPlace('backbone.layers.12.mixer.k_proj.weight')).toEqual({ layer: 12, role: 'attention.qkv' });
    expect(parameterPlace('backbone.layers.3.mixer.experts.down_proj')).toEqual({ layer: 3, role: 'moe.expert_fc2' });
    expect(parameterPlace('backbone.layers.3.mixer.shared_experts.up_proj.weight')).toEqual({ layer: 3, role: 'moe.shared_fc1' });
    expect(parameterPlace('lm_head.weight')).toEqual({ layer: -1, role: 'head' });
    expect(parameterPlace('mtp.layers.0.blocks.0.mixer.up_proj.weight')).toEqual({ layer: -1, role: 'mtp' });
    expect(parameterPlace('backbone.embeddings.weight')).toBeNull();
    expect(parameterPlace('backbone.embeddings.weight', true)).toEqual({ layer: -1, role: 'head' });
    expect(parameterPlace('backbone.layers.0.mixer.A_log')).toBeNull();
    expect(parameterPlace('backbone.layers.0.norm.weight')).toBeNull();
  });
});

describe('inspectWeights', () => {
  const tensors = [
    { name: 'backbone.layers.0.mixer.in_proj.weight', shape: [48, 32], values: weights(48, 32, 1) },
    { name: 'backbone.layers.0.mixer.out_proj.weight', shape: [32, 32], values: weights(32, 32, 2) },
    { name: 'backbone.layers.1.mixer.q_proj.weight', shape: [32, 32], values: weights(32, 32, 3) },
    { name: 'backbone.layers.1.mixer.k_proj.weight', shape: [16, 32], values: weights(16, 32, 4) },
    { name: 'backbone.layers.0.mixer.D', shape: [2], values: new Float32Array(2) },
  ];
  const events = inspectWeights(tensors, table, 100);
  it('quantizes each GEMM weight with its fprop format and merges tensors of one role', () => {
    expect(events.map((e) => `${e.layer} ${e.role} ${e.format} ${e.gemms}`)).toEqual([
      '0 mamba.in_proj nvfp4 1',
      '0 mamba.out_proj mxfp8 1',
      '1 attention.qkv bf16 2',
    ]);
    for (const e of events) expect(e).toMatchObject({ type: 'precision', step: 100, pass: 'fprop', operand: 'weight' });
  });
  it('measures what the formats do: NVFP4 loses most, BF16 least, outliers flush NVFP4 tiles', () => {
    const [nvfp4, mxfp8, bf16] = events;
    expect(nvfp4!.rel_err).toBeGreaterThan(mxfp8!.rel_err);
    expect(mxfp8!.rel_err).toBeGreaterThan(bf16!.rel_err);
    expect(bf16!.rel_err).toBeLessThan(2 ** -8);
    expect(nvfp4!.underflow).toBeGreaterThan(0.05);
    expect(bf16!.underflow).toBe(0);
    expect(nvfp4!.elements).toBe(48 * 32);
    expect(nvfp4!.histogram.reduce((a, b) => a + b, 0)).toBe(48 * 32 - nvfp4!.histogram_zeros);
  });
  it('joins the table rows and renders the table with the worst underflow', () => {
    const rows = inspectionRows(table, events);
    const inProj = rows.find((r) => r.layer === 0 && r.role === 'mamba.in_proj')!;
    expect(inProj.formats.fprop).toBe('nvfp4');
    expect(inProj.measured['fprop.weight']?.format).toBe('nvfp4');
    expect(rows.find((r) => r.role === 'mlp.fc1')!.measured).toEqual({});
    const text = renderInspection(rows, 100, worstUnderflow(events, 2));
    expect(text).toContain('Resolved precision and quantization at step 100');
    expect(text).toMatch(/0\s+mamba2\s+mamba\.in_proj\s+nvfp4\s+nvfp4\s+nvfp4\s+\d\.\d\de-\d+\s+\d+\.\d%/);
    expect(text).toContain('Most underflow');
    expect(text.split('\n').find((l) => l.includes('layer 0 mamba.in_proj fprop weight (nvfp4)'))).toBeTruthy();
  });
  it('says which formats the hardware emulates', () => {
    const rows = inspectionRows(table, events);
    expect(emulationNote(rows, 'cpu')).toMatch(/^bf16, .*nvfp4: emulated on the CPU engine/);
    expect(emulationNote(rows, 'hopper')).toMatch(/^(mxfp8, )?nvfp4: emulated on hopper GPUs/);
    expect(emulationNote(rows, 'blackwell')).toBeNull();
    expect(renderInspection(rows, 100, [], 'cpu')).toContain('emulated on the CPU engine');
    expect(renderInspection(rows, 100, [])).not.toContain('emulated');
  });
});

describe('formatDisagreements', () => {
  it('flags engine formats that differ from the table, except the FP8 HYBRID operand', () => {
    const head = table.rows.find((r) => r.role === 'head')!;
    const measured = (pass: 'fprop' | 'dgrad', operand: 'weight' | 'gradient', format: string) =>
      ({ type: 'precision', step: 1, layer: -1, role: 'head', pass, operand, format, rel_err: 0.1, underflow: 0.1, clipped: 0 }) as unknown as PrecisionEvent;
    const rows = inspectionRows(table, [measured('fprop', 'weight', 'nvfp4')]);
    expect(head.formats.fprop).toBe('bf16');
    expect(renderInspection(rows, 1, [])).toContain('layer - head fprop weight: table bf16, engine nvfp4');
    const fp8 = resolvePrecision(documentFromModel({ ...model, precision: presetPolicy('fp8-tensorwise') }).model);
    const hybridEvent = { ...measured('dgrad', 'weight', 'fp8_e4m3'), layer: 0, role: 'mamba.in_proj' } as PrecisionEvent;
    expect(renderInspection(inspectionRows(fp8, [hybridEvent]), 1, [])).not.toContain('differ');
  });
});

describe('events', () => {
  const base = { type: 'precision', t: 1, step: 10, layer: 2, role: 'mlp.fc1', pass: 'wgrad', operand: 'gradient', format: 'nvfp4',
    amax: 1, rel_err: 0.1, snr_db: 20, underflow: 0.2, clipped: 0, elements: 16, scale_min: 1, scale_max: 1, scale_mean: 1,
    histogram: [], histogram_min_exp: -48, histogram_zeros: 0 };
  it('validates precision events and names the bad field', () => {
    expect(asPrecisionEvent({ type: 'step' }, 'x')).toBeNull();
    expect(asPrecisionEvent({ type: 'precision', t: 0, table: [] }, 'x')).toBeNull(); // the resolved-table event
    expect(asPrecisionEvent(base, 'x')?.role).toBe('mlp.fc1');
    expect(() => asPrecisionEvent({ ...base, pass: 'forward' }, 'events.jsonl line 3')).toThrow(
      "events.jsonl line 3: precision event field 'pass' is missing or invalid",
    );
  });
  it('picks the last inspected step unless asked', () => {
    const events = [base, { ...base, step: 20 }, { ...base, step: 20, layer: 0 }] as PrecisionEvent[];
    expect(eventsOfStep(events).step).toBe(20);
    expect(eventsOfStep(events).events).toHaveLength(2);
    expect(eventsOfStep(events, 10).events).toHaveLength(1);
    expect(eventsOfStep([]).step).toBeNull();
  });
});
