// FLOPs per token of a design at a given context length: forward, and a training step.
//
// Conventions (every figure is FLOPs per token, a multiply-add counted as 2 FLOPs):
// - GEMMs: 2*in*out for every weight matrix one token uses: all dense projections, the router,
//   the top_k routed experts (not all E), shared experts, LatentMoE down/up, and the LM head
//   (2*d*V). The input embedding is a lookup: 0.
// - Attention scores (QK^T) and values (PV): 2*H*hd*keys each, where keys is the average number of
//   keys a query attends to over the positions of a causal sequence of length T: (T+1)/2, or with a
//   sliding window w < T the average of min(t, w) over t = 1..T. Softmax, scaling and masking
//   are not counted.
// - Mamba-2 SSD, chunked as the kernels run it with q = min(chunk, T):
//     intra-chunk: C B^T per group 2*q*G*N, the masked (C B^T . L) X product per head 2*q*H*P,
//                  and the D skip 2*H*P;
//     inter-chunk: chunk states B^T X 2*H*P*N, state passing between chunks 2*H*P*N/q, and the
//                  state-to-output product C h 2*H*P*N.
//   Full q x q diagonal blocks are counted (kernels compute them whole); the decay exponentials,
//   softplus and gate are not counted.
// - Depthwise causal conv: 2*k*(d_inner + 2*G*N).
// - Norms, activations, residual adds and the softmax of the loss are not counted (< 1% for any
//   realistic width).
// - Training step: 3 x forward for every term above, matmuls and the scan and conv alike (forward,
//   gradient w.r.t. inputs, gradient w.r.t. weights or the other operand); no activation
//   recomputation, no optimizer FLOPs.
// - MTP is reported apart: per depth its eh_proj (2*2d*d), its blocks and one more pass through the
//   shared LM head; `mtp.forward_per_token` sums all depths.
//
// Decode (one new token against kv_len cached keys / a Mamba state) has its own figures for the
// roofline: attention uses all kv_len keys, and the Mamba recurrence costs 5*H*P*N (decay, input
// outer product, output contraction) + 2*H*P instead of the chunked scan.
//
// Not here: the weight inventory (tensors.ts), bytes (memory.ts), time (roofline.ts).
import { type Block, type BlockKind, type ModelSpec, BLOCK_KINDS, flattenStack } from '../document.js';
import { blockTensors, headTensor, mambaConvChannels, mtpFrameTensors, tensorGemmFlops } from './tensors.js';

/** Forward FLOPs of one token, split by where they go. */
export interface FlopTerms {
  gemm: number;
  attention: number;
  scan_intra: number;
  scan_inter: number;
  conv: number;
}

export interface LayerFlops {
  index: number;
  kind: BlockKind;
  /** Forward FLOPs per token at the report's context. */
  forward: number;
  terms: FlopTerms;
}

export interface FlopsReport {
  context: number;
  /** Main model forward per token (all layers + LM head), MTP excluded. */
  forward_per_token: number;
  /** Main model training step per token: 3 x forward. */
  training_per_token: number;
  /** LM head GEMM per token (part of forward_per_token). */
  head_per_token: number;
  by_kind: Record<BlockKind, number>;
  layers: LayerFlops[];
  /** All MTP depths together, per token; null without MTP. */
  mtp: { forward_per_token: number; training_per_token: number } | null;
}

export const TRAINING_MULTIPLIER = 3;

function zeroTerms(): FlopTerms {
  return { gemm: 0, attention: 0, scan_intra: 0, scan_inter: 0, conv: 0 };
}

export function totalOf(terms: FlopTerms): number {
  return terms.gemm + terms.attention + terms.scan_intra + terms.scan_inter + terms.conv;
}

/** Average keys a query attends to over the positions 1..T of a causal sequence. */
export function averageCausalKeys(context: number, window: number | null): number {
  if (window === null || window >= context) return (context + 1) / 2;
  return ((window * (window + 1)) / 2 + (context - window) * window) / context;
}

/** Forward FLOPs per token of one block when a sequence of length `context` is processed whole. */
export function blockForwardFlops(block: Block, d: number, context: number): FlopTerms {
  const terms = zeroTerms();
  terms.gemm = blockTensors(block, d).reduce((a, t) => a + tensorGemmFlops(t), 0);
  if (block.kind === 'attention') {
    const keys = averageCausalKeys(context, block.sliding_window);
    terms.attention = 2 * 2 * block.heads * block.head_dim * keys;
  } else if (block.kind === 'mamba2') {
    const { heads: h, head_dim: p, d_state: n, groups: g } = block;
    const q = Math.min(block.chunk, context);
    terms.scan_intra = 2 * q * g * n + 2 * q * h * p + 2 * h * p;
    terms.scan_inter = 2 * h * p * n + (2 * h * p * n) / q + 2 * h * p * n;
    terms.conv = 2 * block.conv_kernel * mambaConvChannels(block);
  }
  return terms;
}

/** Forward FLOPs of one block for ONE decode step with `kvLen` cached positions. */
export function blockDecodeFlops(block: Block, d: number, kvLen: number): FlopTerms {
  const terms = zeroTerms();
  terms.gemm = blockTensors(block, d).reduce((a, t) => a + tensorGemmFlops(t), 0);
  if (block.kind === 'attention') {
    const keys = block.sliding_window === null ? kvLen : Math.min(kvLen, block.sliding_window);
    terms.attention = 2 * 2 * block.heads * block.head_dim * keys;
  } else if (block.kind === 'mamba2') {
    const { heads: h, head_dim: p, d_state: n } = block;
    terms.scan_inter = 5 * h * p * n + 2 * h * p;
    terms.conv = 2 * block.conv_kernel * mambaConvChannels(block);
  }
  return terms;
}

export function countFlops(model: ModelSpec, context: number): FlopsReport {
  if (!Number.isInteger(context) || context < 1) throw new Error(`flops: context must be a positive integer, got ${context}`);
  const d = model.d_model;
  const byKind = Object.fromEntries(BLOCK_KINDS.map((k) => [k, 0])) as Record<BlockKind, number>;
  const layers = flattenStack(model.stack).map((layer): LayerFlops => {
    const terms = blockForwardFlops(layer.block, d, context);
    const forward = totalOf(terms);
    byKind[layer.block.kind] += forward;
    return { index: layer.index, kind: layer.block.kind, forward, terms };
  });
  const head = tensorGemmFlops(headTensor(model));
  const forward = layers.reduce((a, l) => a + l.forward, 0) + head;
  let mtp: FlopsReport['mtp'] = null;
  if (model.mtp) {
    const frame = mtpFrameTensors(model).reduce((a, t) => a + tensorGemmFlops(t), 0);
    const blocks = model.mtp.blocks.reduce((a, b) => a + totalOf(blockForwardFlops(b, d, context)), 0);
    const perDepth = frame + blocks + head;
    const f = perDepth * model.mtp.depth;
    mtp = { forward_per_token: f, training_per_token: TRAINING_MULTIPLIER * f };
  }
  return {
    context,
    forward_per_token: forward,
    training_per_token: TRAINING_MULTIPLIER * forward,
    head_per_token: head,
    by_kind: byKind,
    layers,
    mtp,
  };
}
