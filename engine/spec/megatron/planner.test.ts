// Tests of the cluster planner: Nemotron 3 Nano memory per GPU on 8 GPUs under two layouts, checked
// against figures derived by hand below; the communication terms (TP all-reduce, MoE all-to-all and
// its LatentMoE shrink, pipeline bubble); invalid layouts; and suggest().
import { describe, expect, it } from 'vitest';
import { type ModelSpec } from '../document.js';
import { parseDocument } from '../validate.js';
import { templateDocument } from '../../../templates/index.js';
import { type ParallelLayout, completeLayout } from './layout.js';
import { PlanError, planLayout, suggest } from './planner.js';

function template(name: string): ModelSpec {
  const parsed = parseDocument(templateDocument(name));
  if (!parsed.ok) throw new Error(parsed.errors.map((e) => e.message).join('; '));
  return parsed.doc.model;
}

const nano = template('nemotron-3-nano-30b-a3b');
const eightGpus = { nodes: 1, gpusPerNode: 8 };

// Hand derivation, Nemotron 3 Nano (d 2688, V 131072; 23 Mamba-2, 23 MoE, 6 attention layers).
// Mamba-2 layer (H 64, P 64, N 128, G 8, conv 4 with bias): d_inner 4096, in_proj out
//   2*4096 + 2*8*128 + 64 = 10304.
//   TP-split: in_proj 2688*10304 = 27,697,152; conv 6144*4 = 24,576 + bias 6,144; dt_bias/A_log/D 192;
//   gated norm 4,096; out_proj 4096*2688 = 11,010,048  -> 38,742,208.  Replicated: pre-norm 2,688.
// Attention (32 q heads, 2 kv heads, head_dim 128): q 11,010,048 + k,v 2*688,128 + o 11,010,048
//   = 23,396,352 TP-split; pre-norm 2,688 replicated.
// MoE (128 experts, top-6, ffn 1856, one shared expert of 3712, sigmoid router with bias):
//   routed fc1 + fc2: 2 * 2688*1856 * 128 = 1,277,165,568 (split over EP);
//   shared fc1 + fc2: 2 * 2688*3712 = 19,955,712 TP-split;
//   replicated: pre-norm 2,688 + router 2688*128 = 344,064 + expert bias 128 = 346,880.
// Embedding and head: 131072*2688 = 352,321,536 each (vocab-parallel); final norm 2,688.
// (Sum: 31,577,940,288 parameters, the published 31.578B.)
const MAMBA_TP = 38_742_208;
const ATTN_TP = 23_396_352;
const MOE_TP = 19_955_712;
const MOE_REPL = 346_880;
const NORM = 2_688;
const EXPERTS = 1_277_165_568;
const VOCAB = 352_321_536;

// Activations per token (analytics memory.ts at T = 4096; bf16 = 2 bytes):
//   Mamba-2: (d + d + 10304 + 6144 + 3*4096) * 2 = 68,224, plus fp32 chunk states
//            64*64*128*4 / 128 = 16,384 (kv_state).
//   Attention: (d + d + 36*128 + 32*128) * 2 = 28,160 + fp32 LSE 4*32 = 128 -> 28,288, of which K/V
//            2*2*128*2 = 1,024 is kv_state, 27,264 the rest.
//   MoE: (d + d + 6*(2688 + 1856 + 1856 + 2688) + 2*3712) * 2 = 134,656 + fp32 router scores
//            4*128 = 512 -> 135,168.
//   Head (last stage, one micro-batch): 2*2688*2 + 4*131072 = 535,040.
//   Selective recompute (moe_act + layernorm) drops d*2 = 5,376 per attention layer and
//   (2688 + 6*1856 + 3712) * 2 = 35,072 per MoE layer.
const MAMBA_ACT = 68_224;
const MAMBA_STATE = 16_384;
const ATTN_ACT = 27_264;
const ATTN_KV = 1_024;
const MOE_ACT = 135_168;
const HEAD_ACT = 535_040;

describe('planLayout: Nemotron 3 Nano on 8 GPUs', () => {
  it('layout A: TP 1, PP 1, EP 8, DP 8, micro-batch 1 x 4096 tokens, no recompute, distributed optimizer', () => {
    const layout = completeLayout(eightGpus, { tp: 1, pp: 1, ep: 8, microBatch: 1, seqLen: 4096, globalBatch: 64, recompute: 'none' });
    const plan = planLayout(nano, { cluster: eightGpus, gpu: 'h200', layout });
    const [s] = plan.memory.stages;
    // Dense (everything but routed experts) stays whole with TP 1: 31,577,940,288 - 23*1,277,165,568.
    const dense = 23 * (MAMBA_TP + NORM) + 6 * (ATTN_TP + NORM) + 23 * (MOE_TP + MOE_REPL) + 2 * VOCAB + NORM;
    expect(dense).toBe(2_203_132_224);
    // Routed experts over EP 8: 23*1,277,165,568 / 8.
    expect(s!.dense_params).toBe(2_203_132_224);
    expect(s!.expert_params).toBe(3_671_851_008);
    // weights 2 B and gradients 4 B per parameter on the GPU: 5,874,983,232 parameters.
    expect(s!.weight_bytes).toBe(11_749_966_464);
    expect(s!.gradient_bytes).toBe(23_499_932_928);
    // optimizer 12 B: dense sharded over DP*CP = 8, experts over TP*CP*DP/EP = 1:
    // 12 * (2,203,132,224/8 + 3,671,851,008) = 12 * 3,947,242,536.
    expect(s!.optimizer_bytes).toBe(47_366_910_432);
    // 4096 tokens (micro-batch 1 x 4096 / CP 1 / TP 1), one micro-batch in flight:
    // (23*68,224 + 6*27,264 + 23*135,168 + 535,040) = 5,376,640 bytes per token.
    expect(23 * MAMBA_ACT + 6 * ATTN_ACT + 23 * MOE_ACT + HEAD_ACT).toBe(5_376_640);
    expect(s!.activation_bytes).toBe(4096 * 5_376_640);
    // kv_state: 4096 * (23*16,384 + 6*1,024) = 4096 * 382,976.
    expect(s!.kv_state_bytes).toBe(4096 * (23 * MAMBA_STATE + 6 * ATTN_KV));
    expect(s!.total_bytes).toBe(106_208_196_960);
    // 98.9 GiB: fits in 90% of an H200 (126.9 GB), not of an H100 (72 GB).
    expect(plan.memory.fits).toBe(true);
    expect(planLayout(nano, { cluster: eightGpus, gpu: 'h100', layout }).memory.fits).toBe(false);
  });

  it('layout B: TP 2, PP 2, EP 2, DP 2, selective recompute: two stages of 26 layers', () => {
    const layout = completeLayout(eightGpus, { tp: 2, pp: 2, ep: 2, microBatch: 1, seqLen: 4096, globalBatch: 64, recompute: 'selective' });
    const plan = planLayout(nano, { cluster: eightGpus, gpu: 'h200', layout });
    // Balanced cuts at layer 26. Stage 0 (MEMEM*EMEMEM*EMEMEM*EMEMEM): 12 Mamba, 3 attention, 11 MoE;
    // stage 1 (*EMEMEM*EMEMEMEM*EMEMEMEME): 11 Mamba, 3 attention, 12 MoE.
    expect(plan.cuts).toEqual([26]);
    expect(plan.microbatches).toBe(32); // 64 / (1 x DP 2)
    const [s0, s1] = plan.memory.stages;
    // Stage 0 dense per GPU: TP-split tensors / 2, replicated ones whole, embedding / 2:
    //   12*(38,742,208/2 + 2,688) + 3*(23,396,352/2 + 2,688) + 11*(19,955,712/2 + 346,880) + 352,321,536/2
    //   = 232,485,504 + 35,102,592 + 113,572,096 + 176,160,768 = 557,320,960.
    expect(s0!.dense_params).toBe(557_320_960);
    // Experts: 11 layers * 1,277,165,568 / EP 2.
    expect(s0!.expert_params).toBe((11 * EXPERTS) / 2);
    // 7,581,731,584 parameters: weights 2 B, grads 4 B; optimizer 12 B sharded over DP*CP = 2 (dense)
    // and TP*CP*DP/EP = 2 (experts): 12 * 7,581,731,584 / 2.
    expect(s0!.weight_bytes).toBe(15_163_463_168);
    expect(s0!.gradient_bytes).toBe(30_326_926_336);
    expect(s0!.optimizer_bytes).toBe(45_490_389_504);
    // 2048 tokens per GPU (4096 / TP 2), 2 micro-batches in flight (1F1B: min(PP - 0, 32)).
    // Per token: 12*68,224 + 3*(27,264 - 5,376) + 11*(135,168 - 35,072) = 1,985,408.
    expect(s0!.microbatches_in_flight).toBe(2);
    expect(s0!.activation_bytes).toBe(2048 * 2 * 1_985_408);
    expect(s0!.kv_state_bytes).toBe(2048 * 2 * (12 * MAMBA_STATE + 3 * ATTN_KV));
    expect(s0!.total_bytes).toBe(99_930_899_456);
    // Stage 1: dense 11*19,373,792 + 3*11,700,864 + 12*10,324,736 + head 176,160,768 + final norm.
    expect(s1!.dense_params).toBe(548_274_592);
    expect(s1!.expert_params).toBe((12 * EXPERTS) / 2);
    expect(s1!.optimizer_bytes).toBe(49_267_608_000);
    // One micro-batch in flight; per token 11*68,224 + 3*21,888 + 12*100,096 + head 535,040.
    expect(s1!.microbatches_in_flight).toBe(1);
    expect(s1!.activation_bytes).toBe(2048 * 2_552_320);
    expect(s1!.total_bytes).toBe(104_137_757_568);
    expect(plan.memory.peak_bytes).toBe(104_137_757_568);
    expect(plan.memory.fits).toBe(true);
    // Pipeline bubble (PP-1)/(m+PP-1) = 1/33.
    expect(plan.time.bubble_fraction).toBeCloseTo(1 / 33, 12);
    // TP: 2 all-reduces per layer of 4096*2688*2 bytes, ring cost 2*(2-1)/2, at NVLink 450 GB/s.
    expect(plan.time.stages[0]!.tp_s).toBeCloseTo((26 * 2 * (2 * 1 * 4096 * 2688 * 2)) / 2 / 450e9, 12);
    // PP: activations forward and gradients backward, 4096/2 tokens x d x 2 bytes each.
    expect(plan.time.stages[0]!.pp_s).toBeCloseTo((2 * 2048 * 2688 * 2) / 450e9, 12);
    // Step: (m + PP - 1) x slowest micro-batch + DP exchange + optimizer update.
    const slowest = Math.max(...plan.time.stages.map((t) => t.microbatch_s));
    expect(plan.time.step_s).toBeCloseTo(33 * slowest + plan.time.dp_s + plan.time.optimizer_s, 9);
    expect(plan.time.tokens_per_s).toBeCloseTo((64 * 4096) / plan.time.step_s, 6);
  });
});

describe('communication terms', () => {
  it('MoE all-to-all per token is top_k x width x 2 bytes x 2 (dispatch+combine) x 2 (fwd+bwd) x (EP-1)/EP, and LatentMoE shrinks it by d/l', () => {
    const latent = template('tiny-latent-moe');
    const plain: ModelSpec = structuredClone(latent);
    const flat = (m: ModelSpec) => m.stack.flatMap((item) => (item.kind === 'repeat' ? item.blocks : [item]));
    for (const b of flat(plain)) if (b.kind === 'moe') b.latent = null;
    const cluster = { nodes: 1, gpusPerNode: 4 };
    const layout: ParallelLayout = completeLayout(cluster, { ep: 4, microBatch: 1, seqLen: 512, globalBatch: 8 });
    const withLatent = planLayout(latent, { cluster, gpu: 'h100', layout }).time.stages[0]!.ep_s;
    const without = planLayout(plain, { cluster, gpu: 'h100', layout }).time.stages[0]!.ep_s;
    const moe = flat(latent).find((b) => b.kind === 'moe');
    if (moe?.kind !== 'moe' || moe.latent === null) throw new Error('tiny-latent-moe has no LatentMoE block');
    expect(without / withLatent).toBeCloseTo(latent.d_model / moe.latent, 9);
    const moeLayers = latent.stack.reduce((a, item) => a + (item.kind === 'repeat' ? item.count * item.blocks.filter((b) => b.kind === 'moe').length : item.kind === 'moe' ? 1 : 0), 0);
    expect(withLatent).toBeCloseTo((moeLayers * 512 * moe.top_k * moe.latent * 2 * 2 * 2 * (3 / 4)) / 450e9, 15);
  });

  it('full recomputation costs a second forward: 4/3 of the layer compute, 1.5x the forward collectives', () => {
    const base = completeLayout(eightGpus, { tp: 2, ep: 4, microBatch: 1, seqLen: 4096, globalBatch: 64, recompute: 'none' });
    const none = planLayout(nano, { cluster: eightGpus, gpu: 'h200', layout: base }).time.stages[0]!;
    const full = planLayout(nano, { cluster: eightGpus, gpu: 'h200', layout: { ...base, recompute: 'full' } }).time.stages[0]!;
    const selective = planLayout(nano, { cluster: eightGpus, gpu: 'h200', layout: { ...base, recompute: 'selective' } }).time.stages[0]!;
    // The head is not recomputed, so the stage's compute grows by 1/3 of the layers' share only.
    expect(full.compute_s).toBeGreaterThan(none.compute_s * 1.2);
    expect(full.compute_s).toBeLessThan(none.compute_s * (4 / 3) + 1e-12);
    expect(full.tp_s).toBeCloseTo(none.tp_s * 1.5, 12);
    expect(full.ep_s).toBeCloseTo(none.ep_s * 1.5, 12);
    expect(selective.microbatch_s).toBeCloseTo(none.microbatch_s, 12);
  });

  it('puts a TP group that spans nodes on the inter-node links', () => {
    const cluster = { nodes: 2, gpusPerNode: 4 };
    const inNode = planLayout(nano, { cluster, gpu: 'h200', layout: completeLayout(cluster, { tp: 2, ep: 4, seqLen: 4096, globalBatch: 64 }) });
    const tpSpanning = planLayout(nano, { cluster: { nodes: 8, gpusPerNode: 1 }, gpu: 'h200', layout: completeLayout({ nodes: 8, gpusPerNode: 1 }, { tp: 2, ep: 4, seqLen: 4096, globalBatch: 64 }) });
    expect(tpSpanning.time.stages[0]!.tp_s / inNode.time.stages[0]!.tp_s).toBeCloseTo(450 / 50, 9);
  });
});

describe('planLayout errors and suggest', () => {
  it('rejects a layout whose TP does not divide the KV heads, naming layer and field', () => {
    const layout = completeLayout(eightGpus, { tp: 4, ep: 2 });
    expect(() => planLayout(nano, { cluster: eightGpus, gpu: 'h200', layout })).toThrow(PlanError);
    expect(() => planLayout(nano, { cluster: eightGpus, gpu: 'h200', layout })).toThrow(/layer 5 \(attention\): kv_heads 2 is not a multiple of TP 4/);
  });

  it('returns the fastest fitting layout, and nothing when no layout fits', () => {
    const result = suggest(nano, { cluster: eightGpus, gpu: 'h200', seqLen: 4096, globalBatch: 64 });
    expect(result.best).not.toBeNull();
    expect(result.best!.memory.fits).toBe(true);
    expect(result.fitting).toBeGreaterThan(1);
    for (const other of result.ranking) expect(other.time.tokens_per_s).toBeLessThanOrEqual(result.best!.time.tokens_per_s);
    const none = suggest(nano, { cluster: { nodes: 1, gpusPerNode: 1 }, gpu: 'h100', seqLen: 4096, globalBatch: 8 });
    expect(none.best).toBeNull();
    expect(none.considered).toBeGreaterThan(0);
  });

  it('keeps a small design on one GPU without model parallelism', () => {
    const tiny = template('tiny-hybrid');
    const result = suggest(tiny, { cluster: { nodes: 1, gpusPerNode: 1 }, gpu: 'h100', seqLen: 1024, globalBatch: 8 });
    expect(result.best!.layout).toMatchObject({ tp: 1, pp: 1, cp: 1, dp: 1 });
  });
});
