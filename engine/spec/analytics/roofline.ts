// Roofline estimates of a design on a hardware profile: prefill, decode and training throughput,
// with each layer's arithmetic intensity and bottleneck (compute or memory bandwidth).
//
// Conventions (an ideal roofline: no kernel-launch, communication or pipeline overheads):
// - Every layer (and the LM head as the last row) takes max(compute time, bytes / bandwidth).
//   Compute time sums each GEMM's FLOPs over its format's rate (hardware.ts: native formats at
//   their peak, emulated ones at the BF16 rate), attention products and the SSD scan at the BF16
//   tensor rate, and the depthwise conv at the vector fp32 rate.
// - Bytes moved: the weights the step touches (as stored, block scales included; a MoE layer
//   touches E*(1-(1-K/E)^n) distinct routed experts for n tokens under uniform routing), every
//   GEMM's bf16 input and output activations, the KV cache (written in prefill, read in decode:
//   kv_len tokens per sequence) and the Mamba state (written in prefill, read and written in
//   decode).
// - Prefill: `batch` sequences of `context` tokens at once. Decode: one new token for each of
//   `batch` sequences with `context` tokens already cached. Training: a step of batch x context
//   tokens with 3 x the forward work (fprop, dgrad, wgrad GEMMs each in their own resolved
//   format; attention/scan/conv 3 x), weights read twice (fprop, dgrad), activation traffic 3 x,
//   fp32 gradients written, and the AdamW update reading and writing fp32 master, m, v and the
//   gradient (28 bytes per parameter) plus writing the compute copy.
// - max_batch_in_memory: how many sequences of `context` tokens fit next to the weights in device
//   memory (KV cache + Mamba state; activations of decode are negligible).
// - Arithmetic intensity = FLOPs / bytes; a layer is compute-bound when its compute time exceeds
//   its memory time. MTP is excluded.
//
// Not here: the hardware figures (hardware.ts), FLOPs and bytes conventions (flops.ts, memory.ts).
import { type Block, type GemmPass, type ModelSpec, type PrecisionFormat, flattenStack } from '../document.js';
import { type HardwareProfile, type RateSource, bandwidth, gemmRate, isNative, matmulRate } from '../hardware.js';
import type { PrecisionTable } from '../precision.js';
import { TRAINING_MULTIPLIER, blockDecodeFlops, blockForwardFlops, type FlopTerms } from './flops.js';
import { BF16_BYTES, countMemory, formatBytes, kvBytesPerToken, stateBytesPerSequence } from './memory.js';
import { blockTensors, headTensor, tensorElements, tensorGemmFlops, type WeightTensor } from './tensors.js';

export type Mode = 'prefill' | 'decode' | 'train';
export type Bound = 'compute' | 'memory';

export interface RooflineRow {
  /** Layer index; -1 for the LM head row. */
  index: number;
  kind: string;
  flops: number;
  bytes: number;
  intensity: number;
  compute_s: number;
  memory_s: number;
  time_s: number;
  bound: Bound;
}

export interface ModeEstimate {
  mode: Mode;
  batch: number;
  context: number;
  /** Tokens processed per step (prefill, train: batch * context; decode: batch). */
  tokens_per_step: number;
  step_s: number;
  tokens_per_s: number;
  /** Share of the step the compute-bound layers take. */
  compute_bound_share: number;
  rows: RooflineRow[];
}

export interface RooflineReport {
  hardware: {
    id: string;
    name: string;
    memory_bytes: number;
    rates: RateSource;
    native: PrecisionFormat[];
    emulated: PrecisionFormat[];
    /** BF16 tensor rate (fp32 on the CPU) over bandwidth, FLOP/byte. */
    ridge_intensity: number;
  };
  /**
   * Most sequences of `context` tokens whose KV cache and Mamba state fit in device memory next
   * to the weights (0 when the weights alone do not fit).
   */
  max_batch_in_memory: number;
  prefill: ModeEstimate;
  decode: ModeEstimate;
  train: ModeEstimate;
}

export interface RooflineOptions {
  context: number;
  batch: number;
  rates?: RateSource;
  cacheBytes?: number;
  ssmStateBytes?: number;
}

const ALL_FORMATS: PrecisionFormat[] = ['fp32', 'bf16', 'fp8_e4m3', 'fp8_e5m2', 'mxfp8', 'nvfp4'];
const ADAMW_BYTES_PER_PARAM = 28;
const FP32_GRAD_BYTES = 4;

/** Expected distinct copies of a routed tensor `n` tokens touch under uniform top-k routing. */
export function expectedCopiesTouched(t: WeightTensor, tokens: number): number {
  if (!t.routed) return t.copies;
  return t.copies * (1 - Math.pow(1 - t.activeCopies / t.copies, tokens));
}

type FormatOf = (role: string, pass: GemmPass) => PrecisionFormat;

interface Work {
  flops: number;
  compute_s: number;
  bytes: number;
}

function gemmWork(tensors: WeightTensor[], formatOf: FormatOf, vectorFormat: PrecisionFormat, hw: HardwareProfile, rates: RateSource, mode: Mode, tokens: number): Work {
  const w: Work = { flops: 0, compute_s: 0, bytes: 0 };
  const passes: GemmPass[] = mode === 'train' ? ['fprop', 'dgrad', 'wgrad'] : ['fprop'];
  for (const t of tensors) {
    const touched = expectedCopiesTouched(t, tokens);
    const fprop = t.role === null ? vectorFormat : formatOf(t.role, 'fprop');
    const weightBytes = formatBytes(fprop, tensorElements(t)) * touched;
    if (mode === 'train') w.bytes += (FP32_GRAD_BYTES + ADAMW_BYTES_PER_PARAM) * tensorElements(t) * touched + weightBytes;
    if (t.role === null) {
      w.bytes += weightBytes * (mode === 'train' ? 2 : 1);
      continue;
    }
    const flops = tensorGemmFlops(t) * tokens;
    for (const pass of passes) {
      w.flops += flops;
      w.compute_s += flops / gemmRate(hw, formatOf(t.role, pass), rates);
    }
    const [inDim, outDim] = t.shape as [number, number];
    const activationBytes = tokens * t.activeCopies * (inDim + outDim) * BF16_BYTES;
    w.bytes += mode === 'train' ? 2 * weightBytes + 3 * activationBytes : weightBytes + activationBytes;
  }
  return w;
}

function nonGemmWork(terms: FlopTerms, hw: HardwareProfile, rates: RateSource, tokens: number, multiplier: number): Work {
  const tensorFlops = (terms.attention + terms.scan_intra + terms.scan_inter) * tokens * multiplier;
  const convFlops = terms.conv * tokens * multiplier;
  return { flops: tensorFlops + convFlops, compute_s: tensorFlops / matmulRate(hw, rates) + convFlops / hw.vector_fp32, bytes: 0 };
}

function row(index: number, kind: string, parts: Work[], extraBytes: number, bw: number): RooflineRow {
  const flops = parts.reduce((a, p) => a + p.flops, 0);
  const bytes = parts.reduce((a, p) => a + p.bytes, 0) + extraBytes;
  const compute_s = parts.reduce((a, p) => a + p.compute_s, 0);
  const memory_s = bytes / bw;
  return {
    index,
    kind,
    flops,
    bytes,
    intensity: bytes > 0 ? flops / bytes : 0,
    compute_s,
    memory_s,
    time_s: Math.max(compute_s, memory_s),
    bound: compute_s >= memory_s ? 'compute' : 'memory',
  };
}

function estimate(model: ModelSpec, table: PrecisionTable, hw: HardwareProfile, mode: Mode, opts: Required<RooflineOptions>): ModeEstimate {
  const { batch, context, rates, cacheBytes, ssmStateBytes } = opts;
  const bw = bandwidth(hw, rates);
  const d = model.d_model;
  const vectorFormat: PrecisionFormat = model.precision.default === 'fp32' ? 'fp32' : 'bf16';
  const tokens = mode === 'decode' ? batch : batch * context;
  const multiplier = mode === 'train' ? TRAINING_MULTIPLIER : 1;
  const formats = new Map<string, Record<GemmPass, PrecisionFormat>>();
  for (const r of table.rows) formats.set(`${r.scope}:${r.layer}:${r.role}`, r.formats);
  const lookup = (scope: string, layer: number): FormatOf => (role, pass) => {
    const f = formats.get(`${scope}:${layer}:${role}`);
    if (!f) throw new Error(`roofline: the precision table has no row for ${scope} ${layer} role '${role}'`);
    return f[pass];
  };

  const rows = flattenStack(model.stack).map((layer) => {
    const block: Block = layer.block;
    const terms = mode === 'decode' ? blockDecodeFlops(block, d, context) : blockForwardFlops(block, d, context);
    const gemm = gemmWork(blockTensors(block, d), lookup('layer', layer.index), vectorFormat, hw, rates, mode, tokens);
    const other = nonGemmWork(terms, hw, rates, tokens, multiplier);
    let cacheTraffic = 0;
    const kv = kvBytesPerToken(block, cacheBytes);
    const state = stateBytesPerSequence(block, cacheBytes, ssmStateBytes);
    if (mode === 'prefill') cacheTraffic = kv * tokens + state * batch;
    if (mode === 'decode') {
      const kept = block.kind === 'attention' && block.sliding_window !== null ? Math.min(context, block.sliding_window) : context;
      cacheTraffic = kv * kept * batch + kv * batch + 2 * state * batch;
    }
    return row(layer.index, block.kind, [gemm, other], cacheTraffic, bw);
  });
  const head = headTensor(model);
  const headWeights = head.copies === 0 ? { ...head, copies: 1 } : head; // tied: the embedding table is read as the head
  rows.push(row(-1, 'head', [gemmWork([headWeights], lookup('global', -1), vectorFormat, hw, rates, mode, tokens)], 0, bw));

  const step = rows.reduce((a, r) => a + r.time_s, 0);
  const computeBound = rows.filter((r) => r.bound === 'compute').reduce((a, r) => a + r.time_s, 0);
  return { mode, batch, context, tokens_per_step: tokens, step_s: step, tokens_per_s: tokens / step, compute_bound_share: computeBound / step, rows };
}

export function estimateRoofline(model: ModelSpec, table: PrecisionTable, hw: HardwareProfile, opts: RooflineOptions): RooflineReport {
  const full: Required<RooflineOptions> = { rates: 'datasheet', cacheBytes: BF16_BYTES, ssmStateBytes: 4, ...opts };
  const native = ALL_FORMATS.filter((f) => isNative(hw, f));
  const memory = countMemory(model, { context: opts.context, batch: 1, precision: table, contexts: [opts.context], cacheBytes: full.cacheBytes, ssmStateBytes: full.ssmStateBytes });
  const perSequence = memory.at_context[0]!.kv_cache_bytes + memory.at_context[0]!.state_bytes;
  const free = hw.memory_bytes - memory.weights.total_bytes;
  return {
    hardware: {
      id: hw.id,
      name: hw.name,
      memory_bytes: hw.memory_bytes,
      rates: full.rates === 'measured' && !hw.measured ? 'datasheet' : full.rates, // no measurement: datasheet
      native,
      emulated: ALL_FORMATS.filter((f) => !native.includes(f)),
      ridge_intensity: matmulRate(hw, full.rates) / bandwidth(hw, full.rates),
    },
    max_batch_in_memory: free <= 0 ? 0 : perSequence === 0 ? Number.MAX_SAFE_INTEGER : Math.floor(free / perSequence),
    prefill: estimate(model, table, hw, 'prefill', full),
    decode: estimate(model, table, hw, 'decode', full),
    train: estimate(model, table, hw, 'train', full),
  };
}
