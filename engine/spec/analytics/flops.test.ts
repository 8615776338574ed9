// Tests of the FLOPs counts against values derived by hand for small blocks, plus properties the
// conventions promise (causal average, chunked scan, 3x training, consistency with params).
import { describe, expect, it } from 'vitest';
import { parseModel } from '../document.js';
import { parseDocument } from '../validate.js';
import { templateDocument } from '../../../templates/index.js';
import { averageCausalKeys, blockDecodeFlops, blockForwardFlops, countFlops, totalOf } from './flops.js';
import { countParams } from './params.js';
import { blockAt, smallMamba, smallModel } from './testing-models.js';

const attention = blockAt(
  parseModel({ name: 'a', vocab_size: 16, d_model: 16, stack: [{ kind: 'attention', heads: 4, kv_heads: 2, head_dim: 4 }] }),
  0,
);

describe('FLOPs', () => {
  it('averages causal keys over positions, with and without a sliding window', () => {
    expect(averageCausalKeys(8, null)).toBe(4.5);
    expect(averageCausalKeys(8, 8)).toBe(4.5);
    // window 4 over 8 positions: (1+2+3+4+4+4+4+4)/8
    expect(averageCausalKeys(8, 4)).toBe(26 / 8);
  });

  it('counts a Mamba-2 layer: projections, chunked scan and conv', () => {
    const mamba = blockAt(smallModel(), 0);
    if (mamba?.kind !== 'mamba2') throw new Error('expected mamba2');
    const t = blockForwardFlops(mamba, 8, 8);
    expect(t.gemm).toBe(2 * 8 * 26 + 2 * 8 * 8); // in_proj + out_proj = 544
    expect(t.scan_intra).toBe(32 + 64 + 16); // CB^T 2*4*1*4, (CB^T.L)X 2*4*2*4, D skip 2*2*4
    expect(t.scan_inter).toBe(64 + 16 + 64); // chunk states 2*2*4*4, passing 64/4, C h 64
    expect(t.conv).toBe(2 * 4 * 16);
    expect(t.attention).toBe(0);
    expect(totalOf(t)).toBe(928);
    // A context shorter than the chunk shrinks the diagonal blocks to the context.
    expect(blockForwardFlops(mamba, 8, 2).scan_intra).toBe(16 + 32 + 16);
  });

  it('counts attention projections and causal-average scores and values', () => {
    const t = blockForwardFlops(attention, 16, 8);
    expect(t.gemm).toBe(2 * (256 + 128 + 128 + 256));
    expect(t.attention).toBe(4 * 4 * 4 * 4.5); // 2 products x 2 FLOPs x heads 4 x head_dim 4 x 4.5 keys
    expect(blockDecodeFlops(attention, 16, 8).attention).toBe(4 * 4 * 4 * 8);
  });

  it('counts MoE as router + top-k experts + shared experts, and LatentMoE projections', () => {
    const moe = blockAt(smallModel(), 1);
    if (moe?.kind !== 'moe') throw new Error('expected moe');
    expect(blockForwardFlops(moe, 8, 8).gemm).toBe(64 + 2 * 2 * 96 + 2 * 64); // 576
    const latent = { ...moe, latent: 4 };
    expect(blockForwardFlops(latent, 8, 8).gemm).toBe(64 + 64 + 2 * 2 * 48 + 64 + 128); // 512
  });

  it('adds the LM head, triples for training, and reports MTP apart', () => {
    const model = smallModel({ stack: [smallMamba], mtp: { kind: 'mtp', depth: 2, blocks: [{ kind: 'mlp', ffn: 4 }] } });
    const f = countFlops(model, 8);
    expect(f.head_per_token).toBe(256);
    expect(f.forward_per_token).toBe(928 + 256);
    expect(f.training_per_token).toBe(3 * (928 + 256));
    // per depth: eh_proj 2*16*8 + mlp 2*(32+32) + head 256 = 640
    expect(f.mtp).toEqual({ forward_per_token: 1280, training_per_token: 3840 });
  });

  it('decode runs the Mamba recurrence instead of the chunked scan', () => {
    const mamba = blockAt(smallModel(), 0);
    if (mamba?.kind !== 'mamba2') throw new Error('expected mamba2');
    const t = blockDecodeFlops(mamba, 8, 1000);
    expect(t.scan_intra).toBe(0);
    expect(t.scan_inter).toBe(5 * 2 * 4 * 4 + 2 * 2 * 4);
  });

  it('keeps Mamba cost per token flat in context while attention grows linearly', () => {
    const mamba = blockAt(smallModel({ stack: [{ ...smallMamba, chunk: 64 }] }), 0);
    if (mamba?.kind !== 'mamba2') throw new Error('expected mamba2');
    expect(totalOf(blockForwardFlops(mamba, 8, 4096))).toBe(totalOf(blockForwardFlops(mamba, 8, 65536)));
    const a4 = blockForwardFlops(attention, 16, 4095).attention;
    const a16 = blockForwardFlops(attention, 16, 16383).attention;
    expect(a16 / a4).toBeCloseTo(4, 6);
  });

  it('matches 2 x active non-embedding parameters for the GEMMs of Nemotron 3 Nano', () => {
    const parsed = parseDocument(templateDocument('nemotron-3-nano-30b-a3b'));
    if (!parsed.ok) throw new Error('template does not parse');
    const model = parsed.doc.model;
    const f = countFlops(model, 1);
    const gemm = f.layers.reduce((a, l) => a + l.terms.gemm, 0) + f.head_per_token;
    const p = countParams(model);
    // Every active parameter outside the embedding is a GEMM weight except norms, conv and SSM
    // scalars (well under 0.1%).
    expect(Math.abs(gemm / (2 * p.active_without_embedding) - 1)).toBeLessThan(1e-3);
    // Nano's Mamba projections use d_inner 4096 (not 2*d): in_proj 2688x10304 + out_proj 4096x2688.
    const mambaLayer = f.layers.find((l) => l.kind === 'mamba2')!;
    expect(mambaLayer.terms.gemm).toBe(2 * (2688 * 10304 + 4096 * 2688));
    // 6 attention layers x 32 heads x 128 x (8192+1)/2 keys x 4 at context 8192.
    expect(countFlops(model, 8192).by_kind.attention - f.by_kind.attention).toBe(6 * 4 * 32 * 128 * (8193 / 2 - 1));
  });
});
