// analyzeModel: the one entry point of the analytics. It puts parameters, FLOPs, memory and the
// roofline of a design together in one typed, JSON-serializable report (plain numbers, strings,
// arrays and objects; no Infinity, no class instances), with a merged per-layer table.
//
// The conventions of every figure are stated in the header of the file that computes it:
// tensors.ts (what a weight is), params.ts, flops.ts, memory.ts, roofline.ts and
// ../hardware.ts. Not here: text rendering (text.ts) and the CLI (engine/cli/commands/analyze.ts).
import { type BlockKind, type ModelSpec, type PrecisionFormat, flattenStack } from '../document.js';
import { type RateSource, hardwareProfile } from '../hardware.js';
import { type PrecisionTable, resolvePrecision } from '../precision.js';
import { type FlopsReport, countFlops } from './flops.js';
import { type MemoryReport, DEFAULT_MEMORY_CONTEXTS, countMemory } from './memory.js';
import { type ParamsReport, countParams } from './params.js';
import { type Bound, type RooflineReport, estimateRoofline } from './roofline.js';

export interface AnalyzeOptions {
  /** Sequence length the FLOPs, activations and roofline are computed at. */
  context: number;
  /** Sequences per step for memory and the roofline (default 1). */
  batch?: number;
  /** Hardware profile id (hardware.ts; default 'h200'). */
  hardware?: string;
  /** Datasheet peaks (default) or the profile's measured figures. */
  rates?: RateSource;
  /** A resolved precision table; default: resolvePrecision(model). */
  precision?: PrecisionTable;
  /** Contexts for `memory.at_context` (default 8k, 128k, 1M). */
  contexts?: number[];
}

export interface LayerReport {
  index: number;
  kind: BlockKind;
  params: number;
  active_params: number;
  forward_flops_per_token: number;
  weight_bytes: number;
  /** Forward format of each GEMM role of the layer. */
  formats: Partial<Record<string, PrecisionFormat>>;
  kv_cache_bytes_per_token: number;
  state_bytes_per_sequence: number;
  prefill: { intensity: number; bound: Bound };
  decode: { intensity: number; bound: Bound };
}

export interface AnalysisReport {
  model: { name: string; layers: number; d_model: number; vocab_size: number; pattern: string };
  context: number;
  batch: number;
  params: ParamsReport;
  flops: FlopsReport;
  memory: MemoryReport;
  roofline: RooflineReport;
  layers: LayerReport[];
}

const PATTERN_LETTER: Record<BlockKind, string> = { mamba2: 'M', attention: '*', mlp: '-', moe: 'E' };

/** The stack as Megatron pattern letters (M Mamba-2, * attention, - MLP, E MoE), without cuts. */
export function layerLetters(model: ModelSpec): string {
  return flattenStack(model.stack)
    .map((l) => PATTERN_LETTER[l.block.kind])
    .join('');
}

export function analyzeModel(model: ModelSpec, opts: AnalyzeOptions): AnalysisReport {
  const batch = opts.batch ?? 1;
  if (!Number.isInteger(opts.context) || opts.context < 1) throw new Error(`analyze: context must be a positive integer, got ${opts.context}`);
  if (!Number.isInteger(batch) || batch < 1) throw new Error(`analyze: batch must be a positive integer, got ${batch}`);
  const table = opts.precision ?? resolvePrecision(model);
  const hw = hardwareProfile(opts.hardware ?? 'h200');
  const params = countParams(model);
  const flops = countFlops(model, opts.context);
  const memory = countMemory(model, { context: opts.context, batch, precision: table, contexts: opts.contexts ?? DEFAULT_MEMORY_CONTEXTS });
  const roofline = estimateRoofline(model, table, hw, { context: opts.context, batch, rates: opts.rates ?? 'datasheet' });
  const layers = params.layers.map((p, i): LayerReport => {
    const f = flops.layers[i]!;
    const m = memory.layers[i]!;
    const pre = roofline.prefill.rows[i]!;
    const dec = roofline.decode.rows[i]!;
    return {
      index: p.index,
      kind: p.kind,
      params: p.total,
      active_params: p.active,
      forward_flops_per_token: f.forward,
      weight_bytes: m.weight_bytes,
      formats: m.formats,
      kv_cache_bytes_per_token: m.kv_cache_bytes_per_token,
      state_bytes_per_sequence: m.state_bytes_per_sequence,
      prefill: { intensity: pre.intensity, bound: pre.bound },
      decode: { intensity: dec.intensity, bound: dec.bound },
    };
  });
  return {
    model: { name: model.name, layers: layers.length, d_model: model.d_model, vocab_size: model.vocab_size, pattern: layerLetters(model) },
    context: opts.context,
    batch,
    params,
    flops,
    memory,
    roofline,
    layers,
  };
}
