// Tests of precision policy resolution and the presets' tables.
import { describe, expect, it } from 'vitest';
import { ModelSpec, type ModelSpecInput } from './document.js';
import { PRESET_NAMES, formatOf, paintRule, presetPolicy, resolvePrecision, rowsOfLayer } from './precision.js';

const mamba = { kind: 'mamba2', heads: 8, head_dim: 16, d_state: 16, groups: 2, conv_kernel: 4, chunk: 32 } as const;
const attn = { kind: 'attention', heads: 4, kv_heads: 2, head_dim: 32 } as const;
const lmoe = {
  kind: 'moe',
  experts: 8,
  top_k: 2,
  expert_ffn: 64,
  shared_experts: 1,
  shared_ffn: 128,
  latent: 64,
  router: { type: 'sigmoid' },
} as const;

// 20 layers: (M E) x 9 then * E  -> last 15% = last 3 layers (17, 18, 19).
function model(): ModelSpec {
  const input: ModelSpecInput = {
    name: 'p',
    vocab_size: 264,
    d_model: 128,
    stack: [{ kind: 'repeat', count: 9, blocks: [mamba, lmoe] }, attn, lmoe],
    mtp: { kind: 'mtp', depth: 2, blocks: [attn, lmoe] },
  };
  return ModelSpec.parse(input);
}

describe('resolvePrecision', () => {
  it('all-BF16 preset: every row bf16', () => {
    const t = resolvePrecision(model(), presetPolicy('bf16'));
    expect(t.nLayers).toBe(20);
    expect(new Set(t.rows.flatMap((r) => Object.values(r.formats)))).toEqual(new Set(['bf16']));
  });

  it('Nemotron 3 NVFP4 recipe gives the published table', () => {
    const m = model();
    const t = resolvePrecision(m, presetPolicy('nemotron3-nvfp4'));
    // Early Mamba layer: in_proj NVFP4, out_proj MXFP8.
    expect(formatOf(t, 0, 'mamba.in_proj')).toBe('nvfp4');
    expect(formatOf(t, 0, 'mamba.out_proj')).toBe('mxfp8');
    // Early MoE: experts NVFP4, latent projections BF16, router BF16, shared expert NVFP4.
    expect(formatOf(t, 1, 'moe.expert_fc1')).toBe('nvfp4');
    expect(formatOf(t, 1, 'moe.expert_fc2', 'wgrad')).toBe('nvfp4');
    expect(formatOf(t, 1, 'moe.latent_down')).toBe('bf16');
    expect(formatOf(t, 1, 'moe.latent_up')).toBe('bf16');
    expect(formatOf(t, 1, 'moe.router')).toBe('bf16');
    expect(formatOf(t, 1, 'moe.shared_fc1')).toBe('nvfp4');
    // Last 15% (3 of 20 layers): everything BF16, including a Mamba out_proj.
    expect(formatOf(t, 16, 'mamba.out_proj')).toBe('mxfp8');
    expect(formatOf(t, 16, 'mamba.in_proj')).toBe('nvfp4');
    for (const layer of [17, 18, 19]) {
      for (const r of rowsOfLayer(t, layer)) expect(r.formats).toEqual({ fprop: 'bf16', dgrad: 'bf16', wgrad: 'bf16' });
    }
    expect(formatOf(t, 18, 'attention.qkv')).toBe('bf16');
    // MTP and the embedding/head rows are BF16.
    expect(t.rows.filter((r) => r.scope === 'mtp').every((r) => r.formats.fprop === 'bf16')).toBe(true);
    expect(t.rows.filter((r) => r.scope === 'global').map((r) => [r.role, r.formats.fprop])).toEqual([
      ['embedding', 'bf16'],
      ['head', 'bf16'],
    ]);
    // Which rule decided is recorded.
    expect(t.rows.find((r) => r.layer === 0 && r.role === 'mamba.out_proj')!.ruleIndex.fprop).toBe(1);
    expect(t.rows.find((r) => r.layer === 0 && r.role === 'mamba.in_proj')!.ruleIndex.fprop).toBeNull();
  });

  it('FP8 tensorwise: E4M3 forward, E5M2 gradients, router BF16', () => {
    const t = resolvePrecision(model(), presetPolicy('fp8-tensorwise'));
    const row = t.rows.find((r) => r.layer === 2 && r.role === 'mamba.in_proj')!;
    expect(row.formats).toEqual({ fprop: 'fp8_e4m3', dgrad: 'fp8_e5m2', wgrad: 'fp8_e5m2' });
    expect(formatOf(t, 3, 'moe.router', 'dgrad')).toBe('bf16');
  });

  it('MXFP8 and NVFP4-without-exceptions presets: every GEMM in the format, stack routers and globals BF16', () => {
    for (const [name, format] of [['mxfp8', 'mxfp8'], ['nvfp4-all', 'nvfp4']] as const) {
      const t = resolvePrecision(model(), presetPolicy(name));
      for (const r of t.rows) {
        // MTP modules are selected as a whole, so the router rule (a role rule) does not reach them.
        const want = r.scope === 'global' || (r.scope === 'layer' && r.role === 'moe.router') ? 'bf16' : format;
        expect(r.formats, `${name} ${r.scope} ${r.layer} ${r.role}`).toEqual({ fprop: want, dgrad: want, wgrad: want });
      }
    }
  });

  it('every preset resolves on every row', () => {
    for (const name of PRESET_NAMES) {
      const t = resolvePrecision(model(), presetPolicy(name));
      expect(t.rows.length).toBe(2 + 9 * (2 + 7) + 2 + 7 + (2 + 7));
    }
  });

  it('MTP rows are selected as a whole (same rule as the native engine)', () => {
    const policy = presetPolicy('bf16');
    policy.rules.push({ select: { roles: ['attention.qkv'] }, format: 'fp8_e4m3' });
    policy.rules.push({ select: { kinds: ['moe'] }, format: 'mxfp8' });
    const t = resolvePrecision(model(), policy);
    const mtp = t.rows.filter((r) => r.scope === 'mtp');
    expect(mtp.every((r) => r.formats.fprop === 'bf16')).toBe(true);
    expect(formatOf(t, 18, 'attention.qkv')).toBe('fp8_e4m3');
    policy.rules.push({ select: { passes: ['wgrad'] }, format: 'nvfp4' }, { select: { roles: ['mtp'], passes: ['dgrad'] }, format: 'fp8_e5m2' });
    const t2 = resolvePrecision(model(), policy);
    expect(t2.rows.filter((r) => r.scope === 'mtp').every((r) => r.formats.wgrad === 'nvfp4' && r.formats.dgrad === 'fp8_e5m2' && r.formats.fprop === 'bf16')).toBe(true);
    expect(t2.rows.filter((r) => r.scope === 'global').every((r) => r.formats.wgrad === 'bf16')).toBe(true);
  });

  it('painted rules are appended and win; positional rules skip MTP and global rows', () => {
    const policy = presetPolicy('nemotron3-nvfp4');
    policy.rules.push(paintRule(5, 3, 'fp8_e4m3'));
    const t = resolvePrecision(model(), policy);
    expect(formatOf(t, 3, 'moe.expert_fc1')).toBe('fp8_e4m3');
    expect(formatOf(t, 3, 'moe.router')).toBe('fp8_e4m3');
    expect(formatOf(t, 4, 'mamba.out_proj')).toBe('fp8_e4m3');
    expect(formatOf(t, 6, 'mamba.out_proj')).toBe('mxfp8');
    const allLayers = presetPolicy('bf16');
    allLayers.rules.push({ select: { first_n: 100 }, format: 'nvfp4' });
    const t2 = resolvePrecision(model(), allLayers);
    expect(t2.rows.filter((r) => r.scope !== 'layer').every((r) => r.formats.fprop === 'bf16')).toBe(true);
  });
});
