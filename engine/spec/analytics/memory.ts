// Memory of a design: weight bytes by resolved precision, training state, an activation estimate,
// the KV cache and the Mamba state.
//
// Conventions:
// - Weight bytes: every GEMM weight in the forward (fprop) format its (layer, role) row of the
//   resolved precision table gives (engine/spec/precision.ts); element and scale bytes:
//     fp32 4, bf16 2, fp8 (e4m3/e5m2) 1 + one fp32 scale (4 bytes) per tensor,
//     mxfp8 1 + one E8M0 byte per 32 elements,
//     nvfp4 0.5 + one E4M3 byte per 16 elements + one fp32 scale (4 bytes) per tensor;
//   each routed expert's matrix is its own tensor. Non-GEMM parameters (norms, conv, dt_bias,
//   A_log, D, expert bias) are bf16, or fp32 when the policy default is fp32. The embedding and
//   head use their global rows. `weights` is the main model; MTP modules are listed apart.
// - Training state (mixed precision, as TransformerEngine/Megatron keep it): the compute copy of
//   the weights above, plus per parameter an fp32 master weight (4), an fp32 gradient (4) and
//   AdamW's fp32 first and second moments (8): 16 bytes per parameter, MTP modules included.
//   No sharding (one data-parallel rank holds everything).
// - Activations: bytes saved for the backward pass per token, bf16 (2 bytes) unless noted, no
//   recomputation, FlashAttention-style (no T x T score matrix):
//     every block: its input (d);
//     Mamba-2: normed input d, in_proj output 2*d_inner+2GN+H, conv output d_inner+2GN, scan
//       output d_inner, gated value d_inner, out_proj input d_inner, and the fp32 chunk states
//       H*P*N*4 bytes per chunk (per token: / q, q = min(chunk, T));
//     attention: normed input d, q/k/v (H+2*kv)*hd, attention output H*hd, fp32 log-sum-exp 4*H bytes;
//     MLP: normed input d, fc1 output, activation output ffn;
//     MoE: normed input d, fp32 router scores 4*E bytes, for each of the top_k copies the
//       dispatched input, fc1 output, activation output and expert output (at latent width with
//       LatentMoE, plus the latent down output and up input l each), and each shared expert's fc1
//       and activation outputs;
//     head: final-norm input and output (d each) and fp32 logits 4*V bytes.
//   A micro-batch holds batch * context tokens of that.
// - KV cache per token: every attention layer stores K and V: 2*kv_heads*head_dim elements in the
//   cache dtype (bf16: 2 bytes). At a context T a sliding-window layer keeps min(T, window) tokens.
// - Mamba state per sequence: per Mamba-2 layer the SSM state H*P*N in fp32 (the Nemotron configs'
//   mamba_ssm_cache_dtype) plus the conv state (conv_kernel-1)*(d_inner+2*G*N) in the cache dtype
//   (bf16), independent of the context length.
// - MTP modules: their blocks' GEMMs use the table's MTP rows; eh_proj, which has no row, is kept
//   in BF16 like the other non-GEMM MTP parameters. MTP caches are not included (they matter only for self-speculative decoding).
//
// Not here: which format a (layer, role) gets (precision.ts) and time estimates (roofline.ts).
import { type Block, type BlockKind, type ModelSpec, type PrecisionFormat, flattenStack } from '../document.js';
import { type PrecisionTable, resolvePrecision } from '../precision.js';
import {
  blockTensors,
  embeddingTensor,
  fc1Width,
  finalNormTensor,
  headTensor,
  mambaConvChannels,
  mambaInner,
  mtpFrameTensors,
  tensorElements,
  type WeightTensor,
} from './tensors.js';

export const BF16_BYTES = 2;
export const FP32_BYTES = 4;
/** fp32 master weight + fp32 gradient + AdamW m + v (fp32), per parameter. */
export const TRAINING_STATE_BYTES_PER_PARAM = 16;
/** Contexts `memory.at_context` reports by default: 8k, 128k, 1M. */
export const DEFAULT_MEMORY_CONTEXTS = [8 * 1024, 128 * 1024, 1024 * 1024];

/** Bytes of one tensor of `elements` elements stored in `format`, block scales included. */
export function formatBytes(format: PrecisionFormat, elements: number): number {
  switch (format) {
    case 'fp32':
      return 4 * elements;
    case 'bf16':
      return 2 * elements;
    case 'fp8_e4m3':
    case 'fp8_e5m2':
      return elements + 4;
    case 'mxfp8':
      return elements + Math.ceil(elements / 32);
    case 'nvfp4':
      return Math.ceil(elements / 2) + Math.ceil(elements / 16) + 4;
  }
}

export interface FormatShare {
  params: number;
  bytes: number;
}

export interface LayerMemory {
  index: number;
  kind: BlockKind;
  weight_bytes: number;
  /** Forward formats of the layer's GEMM weights, by role. */
  formats: Partial<Record<string, PrecisionFormat>>;
  kv_cache_bytes_per_token: number;
  state_bytes_per_sequence: number;
  activation_bytes_per_token: number;
}

export interface ContextMemory {
  context: number;
  batch: number;
  weight_bytes: number;
  kv_cache_bytes: number;
  state_bytes: number;
  /** weights + KV cache + Mamba state for `batch` sequences of `context` tokens. */
  total_bytes: number;
}

export interface MemoryReport {
  weights: {
    total_bytes: number;
    embedding_bytes: number;
    head_bytes: number;
    by_format: Partial<Record<PrecisionFormat, FormatShare>>;
    mtp_bytes: number;
  };
  training: {
    batch: number;
    context: number;
    params: number;
    weight_bytes: number;
    master_grad_optimizer_bytes: number;
    activation_bytes_per_token: number;
    activation_bytes: number;
    total_bytes: number;
  };
  kv_cache_bytes_per_token: number;
  state_bytes_per_sequence: number;
  at_context: ContextMemory[];
  layers: LayerMemory[];
}

export interface MemoryOptions {
  context: number;
  batch: number;
  precision?: PrecisionTable;
  contexts?: number[];
  /** Bytes per element of the KV cache and the conv state (default 2, bf16). */
  cacheBytes?: number;
  /** Bytes per element of the SSM state (default 4, fp32). */
  ssmStateBytes?: number;
}

/** Formats of a main-stack layer's (scope 'layer') or an MTP layer's (scope 'mtp') roles. */
function rowFormats(table: PrecisionTable, scope: 'layer' | 'mtp', layer: number): Map<string, PrecisionFormat> {
  const map = new Map<string, PrecisionFormat>();
  for (const r of table.rows) if (r.scope === scope && r.layer === layer) map.set(r.role, r.formats.fprop);
  return map;
}

function globalFormat(table: PrecisionTable, role: 'embedding' | 'head'): PrecisionFormat {
  const row = table.rows.find((r) => r.scope === 'global' && r.role === role);
  if (!row) throw new Error(`memory: the precision table has no '${role}' row`);
  return row.formats.fprop;
}

class WeightTally {
  bytes = 0;
  readonly byFormat: Partial<Record<PrecisionFormat, FormatShare>> = {};
  constructor(readonly vectorFormat: PrecisionFormat) {}

  /** Adds the tensors; `formatOfRole` gives the GEMM format of a role. Returns the bytes added. */
  add(tensors: WeightTensor[], formatOfRole: (role: string) => PrecisionFormat, multiplier = 1): number {
    let added = 0;
    for (const t of tensors) {
      if (t.copies === 0) continue;
      const format = t.role === null ? this.vectorFormat : formatOfRole(t.role);
      const bytes = formatBytes(format, tensorElements(t)) * t.copies * multiplier;
      const share = (this.byFormat[format] ??= { params: 0, bytes: 0 });
      share.params += tensorElements(t) * t.copies * multiplier;
      share.bytes += bytes;
      added += bytes;
    }
    this.bytes += added;
    return added;
  }
}

export function kvBytesPerToken(block: Block, cacheBytes: number): number {
  return block.kind === 'attention' ? 2 * block.kv_heads * block.head_dim * cacheBytes : 0;
}

export function stateBytesPerSequence(block: Block, cacheBytes: number, ssmStateBytes: number): number {
  if (block.kind !== 'mamba2') return 0;
  const ssm = block.heads * block.head_dim * block.d_state * ssmStateBytes;
  const conv = (block.conv_kernel - 1) * mambaConvChannels(block) * cacheBytes;
  return ssm + conv;
}

/** Activation bytes one token of one block keeps for the backward pass (see the header). */
export function blockActivationBytes(block: Block, d: number, context: number): number {
  const b = BF16_BYTES;
  let elements = d;
  let extraBytes = 0;
  switch (block.kind) {
    case 'mamba2': {
      const inner = mambaInner(block);
      const gn = block.groups * block.d_state;
      elements += d + (2 * inner + 2 * gn + block.heads) + mambaConvChannels(block) + 3 * inner;
      extraBytes += (block.heads * block.head_dim * block.d_state * FP32_BYTES) / Math.min(block.chunk, context);
      break;
    }
    case 'attention':
      elements += d + (block.heads + 2 * block.kv_heads) * block.head_dim + block.heads * block.head_dim;
      extraBytes += FP32_BYTES * block.heads;
      break;
    case 'mlp':
      elements += d + fc1Width(block.activation, block.ffn) + block.ffn;
      break;
    case 'moe': {
      const w = block.latent ?? d;
      elements += d;
      if (block.latent !== null) elements += 2 * block.latent;
      elements += block.top_k * (w + fc1Width(block.activation, block.expert_ffn) + block.expert_ffn + w);
      elements += block.shared_experts * (fc1Width(block.activation, block.shared_ffn) + block.shared_ffn);
      extraBytes += FP32_BYTES * block.experts;
      break;
    }
  }
  return elements * b + extraBytes;
}

export function countMemory(model: ModelSpec, opts: MemoryOptions): MemoryReport {
  const table = opts.precision ?? resolvePrecision(model);
  const cacheBytes = opts.cacheBytes ?? BF16_BYTES;
  const ssmStateBytes = opts.ssmStateBytes ?? FP32_BYTES;
  const vectorFormat: PrecisionFormat = model.precision.default === 'fp32' ? 'fp32' : 'bf16';
  const d = model.d_model;
  const tally = new WeightTally(vectorFormat);
  const fromMap = (map: Map<string, PrecisionFormat>, where: string) => (role: string) => {
    const f = map.get(role);
    if (f === undefined) throw new Error(`memory: the precision table has no row for ${where} role '${role}'`);
    return f;
  };

  const layers = flattenStack(model.stack).map((layer): LayerMemory => {
    const formats = rowFormats(table, 'layer', layer.index);
    const weight = tally.add(blockTensors(layer.block, d), fromMap(formats, `layer ${layer.index} (${layer.block.kind})`));
    return {
      index: layer.index,
      kind: layer.block.kind,
      weight_bytes: weight,
      formats: Object.fromEntries(formats),
      kv_cache_bytes_per_token: kvBytesPerToken(layer.block, cacheBytes),
      state_bytes_per_sequence: stateBytesPerSequence(layer.block, cacheBytes, ssmStateBytes),
      activation_bytes_per_token: blockActivationBytes(layer.block, d, opts.context),
    };
  });
  const embeddingBytes = tally.add([embeddingTensor(model)], () => globalFormat(table, 'embedding'));
  const headBytes = tally.add([headTensor(model)], () => globalFormat(table, 'head'));
  tally.add([finalNormTensor(model)], () => vectorFormat);
  const mainWeightBytes = tally.bytes;
  const mainByFormat = structuredClone(tally.byFormat);

  // MTP modules: counted apart (one module with shared weights, else depth modules).
  let mtpBytes = 0;
  let mtpParams = 0;
  if (model.mtp) {
    const modules = model.mtp.shared_weights ? 1 : model.mtp.depth;
    const mtpTally = new WeightTally(vectorFormat);
    // eh_proj has no row in the precision table: it is kept in BF16 (fp32 under an fp32 policy).
    mtpTally.add(mtpFrameTensors(model), () => vectorFormat, modules);
    model.mtp.blocks.forEach((block, j) => {
      mtpTally.add(blockTensors(block, d), fromMap(rowFormats(table, 'mtp', j), `MTP layer ${j} (${block.kind})`), modules);
    });
    mtpBytes = mtpTally.bytes;
    mtpParams = Object.values(mtpTally.byFormat).reduce((a, s) => a + (s?.params ?? 0), 0);
  }

  const mainParams = Object.values(mainByFormat).reduce((a, s) => a + (s?.params ?? 0), 0);
  const kvPerToken = layers.reduce((a, l) => a + l.kv_cache_bytes_per_token, 0);
  const statePerSeq = layers.reduce((a, l) => a + l.state_bytes_per_sequence, 0);
  const headActivation = 2 * d * BF16_BYTES + FP32_BYTES * model.vocab_size;
  const activationPerToken = layers.reduce((a, l) => a + l.activation_bytes_per_token, 0) + headActivation;
  const trainParams = mainParams + mtpParams;
  const trainWeightBytes = mainWeightBytes + mtpBytes;
  const trainTokens = opts.batch * opts.context;
  const flat = flattenStack(model.stack);

  const atContext = (opts.contexts ?? DEFAULT_MEMORY_CONTEXTS).map((context): ContextMemory => {
    let kv = 0;
    for (const layer of flat) {
      const b = layer.block;
      if (b.kind !== 'attention') continue;
      const kept = b.sliding_window === null ? context : Math.min(context, b.sliding_window);
      kv += kvBytesPerToken(b, cacheBytes) * kept * opts.batch;
    }
    const state = statePerSeq * opts.batch;
    return { context, batch: opts.batch, weight_bytes: mainWeightBytes, kv_cache_bytes: kv, state_bytes: state, total_bytes: mainWeightBytes + kv + state };
  });

  return {
    weights: { total_bytes: mainWeightBytes, embedding_bytes: embeddingBytes, head_bytes: headBytes, by_format: mainByFormat, mtp_bytes: mtpBytes },
    training: {
      batch: opts.batch,
      context: opts.context,
      params: trainParams,
      weight_bytes: trainWeightBytes,
      master_grad_optimizer_bytes: TRAINING_STATE_BYTES_PER_PARAM * trainParams,
      activation_bytes_per_token: activationPerToken,
      activation_bytes: activationPerToken * trainTokens,
      total_bytes: trainWeightBytes + TRAINING_STATE_BYTES_PER_PARAM * trainParams + activationPerToken * trainTokens,
    },
    kv_cache_bytes_per_token: kvPerToken,
    state_bytes_per_sequence: statePerSeq,
    at_context: atContext,
    layers,
  };
}
