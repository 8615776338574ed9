// Tests of parameter counting on hand-derived small designs (the published designs are checked in
// templates.test.ts).
import { describe, expect, it } from 'vitest';
import { parseModel } from '../document.js';
import { countParams } from './params.js';
import { smallMamba, smallModel, smallMoe } from './testing-models.js';

describe('countParams', () => {
  it('counts a Mamba-2 layer as the reference formula plus its pre-norm', () => {
    // norm 8 + in_proj 8*(2*8+2*4+2)=208 + conv 16*4=64 + conv bias 16 + dt_bias/A_log/D 6 + gated norm 8 + out_proj 64
    const p = countParams(smallModel({ stack: [smallMamba] }));
    expect(p.layers[0]!.total).toBe(374);
    expect(p.by_kind.mamba2).toEqual({ layers: 1, total: 374, active: 374 });
  });

  it('drops the conv bias when conv_bias is false and adds projection biases when bias is true', () => {
    expect(countParams(smallModel({ stack: [{ ...smallMamba, conv_bias: false }] })).layers[0]!.total).toBe(374 - 16);
    // in_proj bias 26 + out_proj bias 8
    expect(countParams(smallModel({ stack: [{ ...smallMamba, bias: true }] })).layers[0]!.total).toBe(374 + 34);
  });

  it('counts attention with GQA, QK-norm and biases', () => {
    // d 16: norm 16, q 256, k 128, v 128, qkv bias 32, q/k norm 8, o 256, o bias 16
    const model = parseModel({
      name: 'a',
      vocab_size: 16,
      d_model: 16,
      stack: [{ kind: 'attention', heads: 4, kv_heads: 2, head_dim: 4, qk_norm: true, bias: true }],
    });
    expect(countParams(model).layers[0]!.total).toBe(840);
  });

  it('counts a MoE layer: router, expert bias, routed and shared experts; active keeps top-k experts', () => {
    // norm 8 + router 32 + bias 4 + experts 4*(48+48)=384 + shared 64 = 492; active drops 2 experts (192)
    const p = countParams(smallModel({ stack: [smallMoe] }));
    expect(p.layers[0]!.total).toBe(492);
    expect(p.layers[0]!.active).toBe(300);
  });

  it('counts LatentMoE down/up projections and experts at the latent width', () => {
    // norm 8 + router 32 + bias 4 + down 32 + experts 4*(24+24)=192 + up 32 + shared 64 = 364; active 364 - 96
    const p = countParams(smallModel({ stack: [{ ...smallMoe, latent: 4 }] }));
    expect(p.layers[0]!.total).toBe(364);
    expect(p.layers[0]!.active).toBe(268);
  });

  it('counts SwiGLU experts with gate and up in fc1', () => {
    // norm 8 + router 32 + bias 4 + experts 4*(8*12+6*8)=576 + shared (8*8+4*8)=96
    const p = countParams(smallModel({ stack: [{ ...smallMoe, activation: 'swiglu' }] }));
    expect(p.layers[0]!.total).toBe(716);
  });

  it('adds embedding, untied head and final norm; a tied head has no parameters', () => {
    const untied = countParams(smallModel());
    expect(untied.embedding).toBe(128);
    expect(untied.head).toBe(128);
    expect(untied.total).toBe(374 + 492 + 128 + 128 + 8);
    expect(untied.active).toBe(untied.total - 192);
    expect(untied.active_without_embedding).toBe(untied.active - 128);
    expect(untied.non_embedding).toBe(374 + 492 + 8);
    const tied = countParams(smallModel({ tie_embeddings: true }));
    expect(tied.head).toBe(0);
    expect(tied.total).toBe(untied.total - 128);
  });

  it('expands repeat groups', () => {
    const p = countParams(smallModel({ stack: [{ kind: 'repeat', count: 3, blocks: [smallMamba, smallMoe] }] }));
    expect(p.layers).toHaveLength(6);
    expect(p.by_kind.moe.layers).toBe(3);
    expect(p.total).toBe(3 * (374 + 492) + 264);
  });

  it('counts MTP modules apart: once with shared weights, depth times without', () => {
    // frame: enorm 8 + hnorm 8 + eh_proj 16*8 + final norm 8 = 152; mlp block: norm 8 + 32 + 32 = 72
    const mtp = { kind: 'mtp' as const, depth: 2, blocks: [{ kind: 'mlp' as const, ffn: 4 }] };
    const shared = countParams(smallModel({ mtp }));
    expect(shared.mtp).toEqual({ depth: 2, shared_weights: true, total: 224, active_per_depth: 224 });
    expect(shared.total).toBe(countParams(smallModel()).total);
    expect(countParams(smallModel({ mtp: { ...mtp, shared_weights: false } })).mtp?.total).toBe(448);
  });
});
