// Renders an AnalysisReport as readable, aligned plain-text tables (what `strata analyze` prints
// without --json): summary, per block kind, per layer (identical layers collapsed for long
// stacks), memory at several contexts, training memory, and the roofline.
//
// Units: parameter counts in K/M/B/T (powers of 1000); FLOPs in GFLOP/TFLOP (powers of 1000);
// memory in KiB/MiB/GiB/TiB (powers of 1024); throughput in tokens/s.
//
// Not here: the figures themselves (index.ts and the files it calls) and argument handling (the CLI).
import type { PrecisionFormat } from '../document.js';
import type { AnalysisReport, LayerReport } from './index.js';

export function formatCount(n: number): string {
  const units: Array<[number, string]> = [
    [1e12, 'T'],
    [1e9, 'B'],
    [1e6, 'M'],
    [1e3, 'K'],
  ];
  for (const [scale, unit] of units) if (Math.abs(n) >= scale) return `${(n / scale).toFixed(2)}${unit}`;
  return String(Math.round(n));
}

export function formatBytesBinary(bytes: number): string {
  const units = ['TiB', 'GiB', 'MiB', 'KiB'];
  for (let i = 0; i < units.length; i++) {
    const scale = 1024 ** (units.length - i);
    if (Math.abs(bytes) >= scale) {
      const v = bytes / scale;
      return `${Number.isInteger(v) ? v : v.toFixed(v >= 100 ? 0 : 1)} ${units[i]}`;
    }
  }
  return `${Math.round(bytes)} B`;
}

export function formatFlops(flops: number): string {
  if (flops >= 1e12) return `${(flops / 1e12).toFixed(2)} TFLOP`;
  if (flops >= 1e9) return `${(flops / 1e9).toFixed(2)} GFLOP`;
  if (flops >= 1e6) return `${(flops / 1e6).toFixed(2)} MFLOP`;
  if (flops >= 1e3) return `${(flops / 1e3).toFixed(2)} KFLOP`;
  return `${Math.round(flops)} FLOP`;
}

export function formatRate(tokensPerSecond: number): string {
  if (tokensPerSecond >= 1e6) return `${(tokensPerSecond / 1e6).toFixed(2)}M tok/s`;
  if (tokensPerSecond >= 1e3) return `${(tokensPerSecond / 1e3).toFixed(1)}K tok/s`;
  return `${tokensPerSecond.toFixed(1)} tok/s`;
}

export function formatSeconds(s: number): string {
  if (s >= 1) return `${s.toFixed(2)} s`;
  if (s >= 1e-3) return `${(s * 1e3).toFixed(2)} ms`;
  return `${(s * 1e6).toFixed(1)} us`;
}

/** Context lengths as people say them: 8k, 128k, 1M (powers of 1024), else the number. */
export function formatContext(n: number): string {
  if (n >= 1024 * 1024 && n % (1024 * 1024) === 0) return `${n / (1024 * 1024)}M`;
  if (n >= 1024 && n % 1024 === 0) return `${n / 1024}k`;
  return String(n);
}

/** Aligned table: text columns left-aligned, the rest right-aligned; `left` lists the text columns. */
export function table(header: string[], rows: string[][], left: number[] = [0]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (left.includes(i) ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].map((l) => `  ${l}`);
}

/** `0-3,7,9-11` */
export function formatIndexRanges(indices: number[]): string {
  const parts: string[] = [];
  let start = indices[0]!;
  let prev = start;
  for (const i of [...indices.slice(1), Number.NaN]) {
    if (i === prev + 1) {
      prev = i;
      continue;
    }
    parts.push(start === prev ? String(start) : `${start}-${prev}`);
    start = i;
    prev = i;
  }
  return parts.join(',');
}

function layerFormats(layer: LayerReport): string {
  const counts = new Map<PrecisionFormat, number>();
  for (const f of Object.values(layer.formats)) if (f) counts.set(f, (counts.get(f) ?? 0) + 1);
  return [...counts.entries()]
    .sort((a, b) => b[1] - a[1])
    .map(([f]) => f)
    .join('/');
}

/** Stacks longer than this print one row per group of identical layers. */
const COLLAPSE_ABOVE = 16;

function layerRows(report: AnalysisReport): { header: string[]; rows: string[][]; collapsed: boolean } {
  const header = ['layers', 'kind', 'params', 'active', 'FLOP/token', 'weights', 'formats', 'KV/token', 'state/seq', 'prefill', 'decode'];
  const describe = (l: LayerReport) => [
    l.kind,
    formatCount(l.params),
    formatCount(l.active_params),
    formatFlops(l.forward_flops_per_token),
    formatBytesBinary(l.weight_bytes),
    layerFormats(l),
    l.kv_cache_bytes_per_token ? formatBytesBinary(l.kv_cache_bytes_per_token) : '-',
    l.state_bytes_per_sequence ? formatBytesBinary(l.state_bytes_per_sequence) : '-',
    `${l.prefill.bound} ${l.prefill.intensity.toFixed(0)}`,
    `${l.decode.bound} ${l.decode.intensity.toFixed(1)}`,
  ];
  if (report.layers.length <= COLLAPSE_ABOVE) {
    return { header, rows: report.layers.map((l) => [String(l.index), ...describe(l)]), collapsed: false };
  }
  const groups = new Map<string, { indices: number[]; cells: string[] }>();
  for (const l of report.layers) {
    const cells = describe(l);
    const key = cells.join('|');
    const group = groups.get(key);
    if (group) group.indices.push(l.index);
    else groups.set(key, { indices: [l.index], cells });
  }
  const rows = [...groups.values()].map((g) => {
    const ranges = formatIndexRanges(g.indices);
    const shown = ranges.length > 28 ? `${ranges.slice(0, 26).replace(/,[^,]*$/, '')},…` : ranges;
    return [`${g.indices.length} x ${shown}`, ...g.cells];
  });
  return { header: header.map((h) => (h === 'layers' ? 'layers (count x indices)' : h)), rows, collapsed: true };
}

export function renderReport(report: AnalysisReport, sourceLine?: string): string {
  const { params: p, flops: f, memory: m, roofline: r } = report;
  const out: string[] = [];
  out.push(report.model.name + (sourceLine ? `  (${sourceLine})` : ''));
  out.push(`  ${report.model.layers} layers  ${report.model.pattern}`);
  out.push(`  d_model ${report.model.d_model}  vocab ${report.model.vocab_size}  context ${formatContext(report.context)}  batch ${report.batch}`);
  out.push('');
  out.push('Summary');
  const formats = Object.entries(m.weights.by_format)
    .filter(([, s]) => s && s.bytes > 0)
    .sort((a, b) => b[1]!.bytes - a[1]!.bytes)
    .map(([fmt, s]) => `${fmt} ${formatBytesBinary(s!.bytes)}`)
    .join(', ');
  out.push(
    ...table(
      ['figure', 'value'],
      [
        ['parameters', `${formatCount(p.total)} total / ${formatCount(p.active)} active (${formatCount(p.active_without_embedding)} without input embedding)`],
        ['embedding / head', `${formatCount(p.embedding)} / ${p.head ? formatCount(p.head) : 'tied'}`],
        ['MTP modules', p.mtp ? `${formatCount(p.mtp.total)} (depth ${p.mtp.depth}${p.mtp.shared_weights ? ', shared weights' : ''}), not in total` : 'none'],
        ['forward FLOPs', `${formatFlops(f.forward_per_token)} per token at context ${formatContext(f.context)}${f.mtp ? ` (+ MTP ${formatFlops(f.mtp.forward_per_token)})` : ''}`],
        ['training FLOPs', `${formatFlops(f.training_per_token)} per token (3 x forward)`],
        ['weights', `${formatBytesBinary(m.weights.total_bytes)} (${formats})`],
        ['KV cache', `${formatBytesBinary(m.kv_cache_bytes_per_token)} per token (bf16)`],
        ['Mamba state', `${formatBytesBinary(m.state_bytes_per_sequence)} per sequence (fp32 SSM + bf16 conv), any context`],
      ],
      [0, 1],
    ).slice(1),
  );
  out.push('');
  out.push('Per block kind');
  const kinds = Object.entries(p.by_kind).filter(([, k]) => k.layers > 0);
  out.push(
    ...table(
      ['kind', 'layers', 'params', 'active', 'FLOP/token', 'share'],
      kinds.map(([kind, k]) => [
        kind,
        String(k.layers),
        formatCount(k.total),
        formatCount(k.active),
        formatFlops(f.by_kind[kind as keyof typeof f.by_kind]),
        `${((100 * f.by_kind[kind as keyof typeof f.by_kind]) / f.forward_per_token).toFixed(1)}%`,
      ]),
    ),
  );
  out.push(`  LM head: ${formatFlops(f.head_per_token)} per token (${((100 * f.head_per_token) / f.forward_per_token).toFixed(1)}%)`);
  out.push('');
  const layers = layerRows(report);
  out.push(`Per layer${layers.collapsed ? ' (identical layers grouped)' : ''}; prefill/decode: bottleneck and FLOP/byte on ${r.hardware.name}`);
  out.push(...table(layers.header, layers.rows, [0, 1, 6, 9, 10]));
  out.push('');
  out.push(`Memory for inference (batch ${report.batch}; weights + KV cache + Mamba state)`);
  out.push(
    ...table(
      ['context', 'weights', 'KV cache', 'Mamba state', 'total', `fits ${r.hardware.id}`],
      m.at_context.map((c) => [
        formatContext(c.context),
        formatBytesBinary(c.weight_bytes),
        formatBytesBinary(c.kv_cache_bytes),
        formatBytesBinary(c.state_bytes),
        formatBytesBinary(c.total_bytes),
        c.total_bytes <= r.hardware.memory_bytes ? 'yes' : 'no',
      ]),
    ),
  );
  out.push('');
  const t = m.training;
  out.push(`Memory for training (micro-batch ${t.batch} x ${formatContext(t.context)} tokens, no sharding, no recomputation)`);
  out.push(
    ...table(
      ['part', 'bytes'],
      [
        ['compute weights', formatBytesBinary(t.weight_bytes)],
        ['fp32 master + grad + AdamW m, v', formatBytesBinary(t.master_grad_optimizer_bytes)],
        [`activations (${formatBytesBinary(t.activation_bytes_per_token)}/token)`, formatBytesBinary(t.activation_bytes)],
        ['total', formatBytesBinary(t.total_bytes)],
      ],
    ).slice(1),
  );
  out.push('');
  out.push(
    `Roofline on ${r.hardware.name} (${r.hardware.rates} rates; native ${r.hardware.native.join(', ')}; emulated ${r.hardware.emulated.join(', ')})`,
  );
  out.push(
    ...table(
      ['mode', 'batch', 'context', 'tokens/step', 'step', 'throughput', 'compute-bound time'],
      [r.prefill, r.decode, r.train].map((e) => [
        e.mode,
        String(e.batch),
        formatContext(e.context),
        formatCount(e.tokens_per_step),
        formatSeconds(e.step_s),
        formatRate(e.tokens_per_s),
        `${(100 * e.compute_bound_share).toFixed(0)}%`,
      ]),
    ),
  );
  out.push(`  ridge point ${r.hardware.ridge_intensity.toFixed(0)} FLOP/byte at the BF16 rate (higher for native low-precision GEMMs); up to ${r.max_batch_in_memory >= Number.MAX_SAFE_INTEGER ? 'any number of' : r.max_batch_in_memory} sequences of ${formatContext(report.context)} fit in memory`);
  return `${out.join('\n')}\n`;
}
