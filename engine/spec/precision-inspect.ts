// Precision inspection: the `precision` events the engine writes while training under a policy
// (one per layer x role x pass x operand on inspected steps, engine/native/src/ops/quant_gemm.h),
// the same records computed from checkpoint weights with the TS quantizer mirror, and the table
// `strata inspect-precision` prints: the resolved formats of every (layer, role) next to the
// measured quantization error, underflow (flush to zero) and clipping.
//
// Pure TypeScript (no Node): the CLI command (engine/cli/commands/inspect-precision.ts) reads files
// and calls these. Not here: policy resolution (precision.ts) or the quantizers (precision-quantize.ts).
import { type GemmPass, type PrecisionFormat, type TensorRole, GEMM_PASSES, PRECISION_FORMATS } from './document.js';
import { type ComputeTarget, formatSupport } from './precision-formats.js';
import type { PrecisionRow, PrecisionTable } from './precision.js';
import { HISTOGRAM_MIN_EXPONENT, type QuantConfig, type QuantStats, fakeQuantize, mergeStats } from './precision-quantize.js';

export type Operand = 'activation' | 'weight' | 'gradient';

/** One `precision` event (events.jsonl); shares are fractions in [0, 1]. */
export interface PrecisionEvent {
  type: 'precision';
  t: number;
  step: number;
  /** Main-stack layer; -1 for the head, MTP GEMMs and other global tensors. */
  layer: number;
  role: string;
  pass: GemmPass;
  operand: Operand;
  format: PrecisionFormat;
  gemms?: number;
  elements: number;
  amax: number;
  rel_err: number;
  /** null when the error is zero (infinite SNR). */
  snr_db: number | null;
  /** Share of nonzero values that became zero. */
  underflow: number;
  /** Share of values beyond the format's range (saturated). */
  clipped: number;
  nonfinite?: number;
  scale_min: number;
  scale_max: number;
  scale_mean: number;
  zero_scale_blocks?: number;
  histogram: number[];
  histogram_min_exp: number;
  histogram_zeros: number;
}

const PASSES: readonly GemmPass[] = ['fprop', 'dgrad', 'wgrad'];
const OPERANDS: readonly Operand[] = ['activation', 'weight', 'gradient'];

/**
 * Validates a raw event object as a precision inspection event; returns null for other event types
 * and for the engine's resolved-table event ({"type":"precision","table":[...]}, written at start).
 */
export function asPrecisionEvent(raw: Record<string, unknown>, where: string): PrecisionEvent | null {
  if (raw.type !== 'precision' || 'table' in raw) return null;
  const need = (field: string, ok: boolean) => {
    if (!ok) throw new Error(`${where}: precision event field '${field}' is missing or invalid`);
  };
  need('step', Number.isInteger(raw.step));
  need('layer', Number.isInteger(raw.layer));
  need('role', typeof raw.role === 'string');
  need('pass', PASSES.includes(raw.pass as GemmPass));
  need('operand', OPERANDS.includes(raw.operand as Operand));
  need('format', typeof raw.format === 'string');
  for (const f of ['rel_err', 'underflow', 'clipped', 'amax']) need(f, typeof raw[f] === 'number');
  need('snr_db', raw.snr_db === null || typeof raw.snr_db === 'number');
  return raw as unknown as PrecisionEvent;
}

/** A precision event from quantization statistics. */
export function eventFromStats(
  stats: QuantStats,
  fields: { step: number; layer: number; role: string; pass: GemmPass; operand: Operand; format: PrecisionFormat; gemms?: number; t?: number },
): PrecisionEvent {
  return {
    type: 'precision',
    t: fields.t ?? 0,
    step: fields.step,
    layer: fields.layer,
    role: fields.role,
    pass: fields.pass,
    operand: fields.operand,
    format: fields.format,
    gemms: fields.gemms ?? 1,
    elements: stats.elements,
    amax: stats.amax,
    rel_err: stats.rel_err,
    snr_db: Number.isFinite(stats.snr_db) ? stats.snr_db : null,
    underflow: stats.nonzero > 0 ? stats.underflow / stats.nonzero : 0,
    clipped: stats.elements - stats.nonfinite > 0 ? stats.clipped / (stats.elements - stats.nonfinite) : 0,
    nonfinite: stats.nonfinite,
    scale_min: stats.scale_min,
    scale_max: stats.scale_max,
    scale_mean: stats.scale_mean,
    zero_scale_blocks: stats.zero_scale_blocks,
    histogram: stats.log2_histogram,
    histogram_min_exp: HISTOGRAM_MIN_EXPONENT,
    histogram_zeros: stats.histogram_zeros,
  };
}

// ---------------------------------------------------------------------------------------------
// Checkpoint weights
// ---------------------------------------------------------------------------------------------

/** Where a checkpoint tensor sits: main-stack layer (-1 for global / MTP) and its GEMM role. */
export interface ParameterPlace {
  layer: number;
  role: TensorRole;
}

const MIXER_ROLES: ReadonlyArray<[RegExp, TensorRole]> = [
  [/^in_proj\.weight$/, 'mamba.in_proj'],
  [/^out_proj\.weight$/, 'mamba.out_proj'],
  [/^[qkv]_proj\.weight$/, 'attention.qkv'],
  [/^o_proj\.weight$/, 'attention.o'],
  [/^up_proj\.weight$/, 'mlp.fc1'],
  [/^down_proj\.weight$/, 'mlp.fc2'],
  [/^gate\.weight$/, 'moe.router'],
  [/^fc1_latent_proj\.weight$/, 'moe.latent_down'],
  [/^fc2_latent_proj\.weight$/, 'moe.latent_up'],
  [/^experts\.(\d+\.)?up_proj(\.weight)?$/, 'moe.expert_fc1'],
  [/^experts\.(\d+\.)?down_proj(\.weight)?$/, 'moe.expert_fc2'],
  [/^shared_experts\.up_proj\.weight$/, 'moe.shared_fc1'],
  [/^shared_experts\.down_proj\.weight$/, 'moe.shared_fc2'],
];

/**
 * The GEMM role of a checkpoint parameter named as the engine names them (HF nemotron_h names:
 * backbone.layers.{i}.mixer.*, lm_head.weight, mtp.layers.{m}.*); null for parameters no GEMM reads
 * (norms, conv, biases, A_log, ...). The tied embedding is read by the head GEMM: pass `tied`.
 */
export function parameterPlace(name: string, tied = false): ParameterPlace | null {
  if (name === 'lm_head.weight' || (tied && name === 'backbone.embeddings.weight')) return { layer: -1, role: 'head' };
  if (name.startsWith('mtp.layers.')) {
    const inner = /\.blocks\.\d+\.mixer\.(.+)$/.exec(name) ?? /\.(eh_proj\.weight)$/.exec(name);
    if (!inner) return null;
    if (inner[1] === 'eh_proj.weight') return { layer: -1, role: 'mtp' };
    return MIXER_ROLES.some(([re]) => re.test(inner[1]!)) ? { layer: -1, role: 'mtp' } : null;
  }
  const match = /^backbone\.layers\.(\d+)\.mixer\.(.+)$/.exec(name);
  if (!match) return null;
  for (const [re, role] of MIXER_ROLES) if (re.test(match[2]!)) return { layer: Number(match[1]), role };
  return null;
}

/** The quantizer settings of a weight in its fprop GEMM (W stored (out, in): reduction along rows). */
export function weightQuantConfig(format: PrecisionFormat): QuantConfig {
  if (format === 'nvfp4') return { format, layout: 'tile2d' };
  return { format };
}

export interface WeightTensor {
  name: string;
  /** Shape as stored: (out, in) or (experts, out, in). */
  shape: number[];
  values: Float32Array;
}

function rowFor(table: PrecisionTable, place: ParameterPlace): PrecisionRow | undefined {
  if (place.role === 'head') return table.rows.find((r) => r.scope === 'global' && r.role === 'head');
  if (place.role === 'mtp') return table.rows.find((r) => r.scope === 'mtp');
  return table.rows.find((r) => r.scope === 'layer' && r.layer === place.layer && r.role === place.role);
}

/**
 * Quantizes checkpoint weights with the fprop format the table assigns them (TS mirror of the engine's
 * quantizers) and returns one `precision` event per (layer, role), operand 'weight', pass 'fprop'.
 */
export function inspectWeights(tensors: WeightTensor[], table: PrecisionTable, step: number, tied = false): PrecisionEvent[] {
  const merged = new Map<string, { place: ParameterPlace; format: PrecisionFormat; stats: QuantStats; gemms: number }>();
  for (const tensor of tensors) {
    const place = parameterPlace(tensor.name, tied);
    if (!place) continue;
    const row = rowFor(table, place);
    if (!row) continue;
    const format = row.formats.fprop;
    const cols = tensor.shape[tensor.shape.length - 1] ?? 0;
    const rows = tensor.shape.length >= 2 ? tensor.shape[tensor.shape.length - 2]! : 1;
    const matrices = cols * rows > 0 ? tensor.values.length / (rows * cols) : 0;
    for (let m = 0; m < matrices; m++) {
      const values = tensor.values.subarray(m * rows * cols, (m + 1) * rows * cols);
      const { stats } = fakeQuantize(values, rows, cols, weightQuantConfig(format));
      const key = `${place.layer}|${place.role}`;
      const previous = merged.get(key);
      merged.set(key, previous ? { ...previous, stats: mergeStats(previous.stats, stats), gemms: previous.gemms + 1 } : { place, format, stats, gemms: 1 });
    }
  }
  return [...merged.values()]
    .sort((a, b) => a.place.layer - b.place.layer || a.place.role.localeCompare(b.place.role))
    .map((m) => eventFromStats(m.stats, { step, layer: m.place.layer, role: m.place.role, pass: 'fprop', operand: 'weight', format: m.format, gemms: m.gemms }));
}

// ---------------------------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------------------------

/** The events of one step: `step`, or the last step that has precision events. */
export function eventsOfStep(events: PrecisionEvent[], step?: number): { step: number | null; events: PrecisionEvent[] } {
  if (events.length === 0) return { step: null, events: [] };
  const chosen = step ?? Math.max(...events.map((e) => e.step));
  return { step: chosen, events: events.filter((e) => e.step === chosen) };
}

export interface InspectionRow {
  scope: PrecisionRow['scope'];
  layer: number;
  kind: string;
  role: TensorRole;
  formats: Record<GemmPass, PrecisionFormat>;
  /** Measured statistics by `${pass}.${operand}`, when the step has them. */
  measured: Partial<Record<`${GemmPass}.${Operand}`, PrecisionEvent>>;
}

/** Joins the resolved table with the measured events of one step. */
export function inspectionRows(table: PrecisionTable, events: PrecisionEvent[]): InspectionRow[] {
  // The engine tags every GEMM inside MTP modules with the role `mtp`: those records go on the first MTP row.
  const firstMtpRow = table.rows.findIndex((r) => r.scope === 'mtp');
  return table.rows.map((row, index) => {
    const measured: InspectionRow['measured'] = {};
    for (const e of events) {
      const sameRow =
        row.scope === 'layer'
          ? e.layer === row.layer && e.role === row.role
          : row.scope === 'mtp'
            ? e.role === 'mtp' && index === firstMtpRow
            : e.layer < 0 && e.role === row.role;
      if (sameRow) measured[`${e.pass}.${e.operand}`] = e;
    }
    return { scope: row.scope, layer: row.layer, kind: row.kind ?? '-', role: row.role, formats: row.formats, measured };
  });
}

/** The (layer, role, pass, operand) records with the largest underflow share, largest first. */
export function worstUnderflow(events: PrecisionEvent[], count: number): PrecisionEvent[] {
  return [...events].filter((e) => e.underflow > 0).sort((a, b) => b.underflow - a.underflow).slice(0, count);
}

/**
 * Measured records whose format is not the table's for that pass (fp8_e5m2 passes legitimately show
 * fp8_e4m3 on the non-gradient operand: TransformerEngine's HYBRID recipe).
 */
export function formatDisagreements(rows: InspectionRow[]): FormatDisagreement[] {
  const out: FormatDisagreement[] = [];
  for (const r of rows) {
    for (const e of Object.values(r.measured)) {
      const expected = r.formats[e!.pass];
      const hybrid = expected === 'fp8_e5m2' && e!.pass !== 'fprop' && e!.operand !== 'gradient' && e!.format === 'fp8_e4m3';
      if (e!.format !== expected && !hybrid)
        out.push({ layer: r.layer, scope: r.scope, role: r.role, pass: e!.pass, operand: e!.operand, table: expected, engine: e!.format });
    }
  }
  return out;
}

export interface FormatDisagreement {
  layer: number;
  scope: InspectionRow['scope'];
  role: TensorRole;
  pass: GemmPass;
  operand: Operand;
  table: PrecisionFormat;
  engine: PrecisionFormat;
}

function percent(share: number | undefined): string {
  return share === undefined ? '-' : `${(share * 100).toFixed(share > 0 && share < 0.001 ? 3 : 1)}%`;
}

function relErr(e: PrecisionEvent | undefined): string {
  return e ? e.rel_err.toExponential(2) : '-';
}

function place(layer: number, scope: string): string {
  return scope === 'layer' ? String(layer) : scope === 'mtp' ? `mtp${layer}` : '-';
}

/** Aligned text table: formats per pass, then weight / activation / gradient error and underflow. */
/**
 * One line saying which of the table's formats the run's hardware emulates (quantize-dequantize
 * around higher-precision GEMMs) rather than multiplies natively; null when none is emulated.
 */
export function emulationNote(rows: InspectionRow[], target: ComputeTarget): string | null {
  const used = new Set(rows.flatMap((r) => GEMM_PASSES.map((p) => r.formats[p])));
  const emulated = PRECISION_FORMATS.filter((f) => used.has(f) && formatSupport(f, target) === 'emulated');
  if (!emulated.length) return null;
  const where = target === 'cpu' ? 'the CPU engine' : `${target} GPUs`;
  const gemm = target === 'cpu' ? 'fp32' : 'bf16';
  return `${emulated.join(', ')}: emulated on ${where} (quantize-dequantize around ${gemm} GEMMs; numerics as the format, speed not)`;
}

export function renderInspection(rows: InspectionRow[], step: number | null, worst: PrecisionEvent[], target?: ComputeTarget): string {
  const header = ['layer', 'kind', 'role', 'fprop', 'dgrad', 'wgrad', 'W rel_err', 'W underflow', 'X rel_err', 'X underflow', 'dY underflow', 'clipped max'];
  const body = rows.map((r) => {
    const m = r.measured;
    const clipped = Object.values(m).map((e) => e!.clipped);
    const gradient = m['dgrad.gradient'] ?? m['wgrad.gradient'];
    return [
      place(r.layer, r.scope),
      r.kind,
      r.role,
      r.formats.fprop,
      r.formats.dgrad,
      r.formats.wgrad,
      relErr(m['fprop.weight']),
      percent(m['fprop.weight']?.underflow),
      relErr(m['fprop.activation']),
      percent(m['fprop.activation']?.underflow),
      percent(gradient?.underflow),
      clipped.length ? percent(Math.max(...clipped)) : '-',
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < 3 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd();
  const out = [
    step === null ? 'Resolved precision (no precision events: train with inspection on to measure)' : `Resolved precision and quantization at step ${step}`,
    ...(target && emulationNote(rows, target) ? [emulationNote(rows, target)!] : []),
    '',
    line(header),
    ...body.map(line),
  ];
  const disagreements = formatDisagreements(rows);
  if (disagreements.length) {
    out.push('', 'Measured formats that differ from the resolved table (the engine quantized these differently):');
    for (const d of disagreements)
      out.push(`  layer ${place(d.layer, d.scope)} ${d.role} ${d.pass} ${d.operand}: table ${d.table}, engine ${d.engine}`);
  }
  if (worst.length) {
    out.push('', 'Most underflow (share of nonzero values flushed to zero):');
    for (const e of worst)
      out.push(`  ${percent(e.underflow).padStart(6)}  layer ${e.layer < 0 ? '-' : e.layer} ${e.role} ${e.pass} ${e.operand} (${e.format})`);
  }
  return out.join('\n') + '\n';
}
