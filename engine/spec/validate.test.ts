// Tests of the document schema, validation messages and migrations.
import { describe, expect, it } from 'vitest';
import { DOCUMENT_VERSION, documentFromModel, flattenStack, type ModelSpecInput } from './document.js';
import { parseDocument, parseModelSpec } from './validate.js';
import { migrateDocument } from './migrate.js';

const mamba = { kind: 'mamba2', heads: 8, head_dim: 16, d_state: 16, groups: 2, conv_kernel: 4, chunk: 32 } as const;
const attn = { kind: 'attention', heads: 4, kv_heads: 2, head_dim: 32 } as const;
const moe = {
  kind: 'moe',
  experts: 8,
  top_k: 2,
  expert_ffn: 64,
  shared_experts: 1,
  shared_ffn: 128,
  router: { type: 'sigmoid', expert_bias: true, routed_scaling: 2.5 },
} as const;

function model(stack: ModelSpecInput['stack']): ModelSpecInput {
  return { name: 't', vocab_size: 264, d_model: 128, stack };
}

function doc(stack: ModelSpecInput['stack']): unknown {
  return { format: 'strata', version: DOCUMENT_VERSION, model: model(stack) };
}

describe('schema', () => {
  it('fills defaults and flattens repeat groups in order', () => {
    const d = documentFromModel(model([mamba, { kind: 'repeat', count: 3, blocks: [moe, mamba] }, attn]));
    const layers = flattenStack(d.model.stack);
    expect(layers.map((l) => l.block.kind)).toEqual(['mamba2', 'moe', 'mamba2', 'moe', 'mamba2', 'moe', 'mamba2', 'attention']);
    expect(layers[5]!.source).toEqual({ item: 1, repeat: 2, inner: 0 });
    expect(d.model.norm_eps).toBe(1e-5);
    expect(d.pipeline.training.steps).toBeGreaterThan(0);
    const m = layers[0]!.block;
    expect(m.kind === 'mamba2' && m.conv_bias).toBe(true);
  });
});

describe('validation messages name layer, kind and field', () => {
  it('GQA divisibility', () => {
    const r = parseDocument(doc([mamba, mamba, mamba, mamba, mamba, mamba, mamba, { ...attn, heads: 12, kv_heads: 5 }]));
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors[0]!.message).toBe('layer 7 (attention): heads 12 is not a multiple of kv_heads 5');
    expect(r.errors[0]!.layer).toBe(7);
    expect(r.errors[0]!.path).toBe('model.stack[7].heads');
  });

  it('counts layers through repeat groups', () => {
    const r = parseDocument(doc([{ kind: 'repeat', count: 2, blocks: [mamba, moe] }, { kind: 'repeat', count: 1, blocks: [mamba, { ...moe, top_k: 9 }] }]));
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors.map((e) => e.message)).toEqual(['layer 5 (moe): top_k 9 is larger than experts 8']);
  });

  it('structural errors inside groups point at the flattened layer and field', () => {
    const r = parseDocument(doc([mamba, { kind: 'repeat', count: 2, blocks: [mamba, { ...attn, heads: -1 }] }]));
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors[0]!.message).toMatch(/^layer 2 \(attention\): heads: /);
    expect(r.errors[0]!.layer).toBe(2);
  });

  it('unknown block kind and unknown field', () => {
    const r1 = parseDocument(doc([mamba, { kind: 'lstm', width: 3 } as never]));
    expect(r1.ok).toBe(false);
    if (!r1.ok) expect(r1.errors[0]!.message).toMatch(/^layer 1 \(lstm\)/);
    const r2 = parseDocument(doc([{ ...mamba, d_conv: 4 } as never]));
    expect(r2.ok).toBe(false);
    if (!r2.ok) expect(r2.errors[0]!.message).toBe("layer 0 (mamba2): unknown field(s) 'd_conv'");
  });

  it('mamba groups, moe shared width, pipeline cuts and precision ranges', () => {
    const r = parseModelSpec({
      ...model([{ ...mamba, groups: 3 }, { ...moe, shared_ffn: 0 }, attn]),
      pipeline_cuts: [2, 1],
      precision: { default: 'bf16', rules: [{ select: { layers: { from: 1, to: 9 } }, format: 'nvfp4' }] },
    });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    const messages = r.errors.map((e) => e.message);
    expect(messages).toContain('layer 0 (mamba2): heads 8 is not a multiple of groups 3');
    expect(messages).toContain('layer 1 (moe): shared_ffn is 0 but shared_experts is 1');
    expect(messages).toContain('pipeline_cuts[1]: cuts must be strictly increasing (2 then 1)');
    expect(messages).toContain('precision rule 0: layers.to 9 is past the last layer 2');
  });

  it('vocab must hold the tokenizer', () => {
    const r = parseDocument({ format: 'strata', version: DOCUMENT_VERSION, model: { ...model([mamba]), vocab_size: 100 } });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.errors[0]!.message).toBe("model: vocab_size 100 is smaller than the byte tokenizer's 259 tokens");
  });

  it('NaN and non-integers never pass', () => {
    const r = parseDocument(doc([{ ...mamba, heads: Number.NaN }]));
    expect(r.ok).toBe(false);
    const r2 = parseDocument(doc([{ ...mamba, head_dim: 1.5 }]));
    expect(r2.ok).toBe(false);
  });
});

describe('migrations', () => {
  it('v1 -> current', () => {
    const v1 = {
      format: 'strata',
      version: 1,
      model: { name: 'old', vocab_size: 264, d_model: 128, blocks: [mamba, attn, moe], precision: 'bf16', mtp_depth: 1 },
      pipeline: { train: { steps: 10 } },
      view: { nodes: { model: { x: 1, y: 2 } } },
    };
    const r = parseDocument(v1);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.migratedFrom).toBe(1);
    expect(r.doc.version).toBe(DOCUMENT_VERSION);
    expect(flattenStack(r.doc.model.stack)).toHaveLength(3);
    expect(r.doc.model.precision).toEqual({ default: 'bf16', rules: [] });
    expect(r.doc.model.mtp?.depth).toBe(1);
    expect(r.doc.model.mtp?.blocks.map((b) => b.kind)).toEqual(['attention', 'moe']);
    expect(r.doc.pipeline.training.steps).toBe(10);
    expect(r.doc.view.positions).toEqual({ model: { x: 1, y: 2 } });
  });

  it('refuses newer versions, wrong format and non-objects', () => {
    expect(migrateDocument({ format: 'strata', version: 99 })).toMatchObject({ ok: false, path: 'version' });
    expect(migrateDocument({ format: 'other', version: 1 })).toMatchObject({ ok: false, path: 'format' });
    expect(migrateDocument([1, 2])).toMatchObject({ ok: false });
  });
});
