// `strata profile INPUT [options]`: profiles a design layer by layer on the engine (training step,
// prefill, decode at the given context lengths) and prints per-layer forward/backward times, or
// with --json the engine's `profile` events (layer index, block kind and op as the graph shows them).
//
// Not here: timing (native engine), predicted throughput for other hardware (spec/analytics).
import { intListOption, intOption, loadTarget, openRunFolder, requireEngine } from '../../runtime/command-support.js';
import type { ProfileEvent } from '../../runtime/events.js';
import { eventPrinter, superviseJob } from '../../runtime/job-runner.js';
import { parseCommandArgs } from '../args.js';
import { CliError, EXIT_INTERNAL } from '../errors.js';
import type { CliIO } from '../io.js';
import { EXIT_CANCELLED } from './train.js';

const HELP = `usage: strata profile INPUT [options]

INPUT is a training run folder, a Strata document, a template name, or an HF config.json.
  --mode LIST          comma-separated train,prefill,decode (default: the document's profiling modes)
  --context LIST       context lengths, e.g. 1024,4k (default: the document's)
  --batch N            batch size (default: the document's)
  --run-dir DIR / --runs DIR / --name NAME   where the profile run folder goes
  --json               print the engine's JSON events, one per line
`;

const MODES = ['train', 'prefill', 'decode'] as const;

/**
 * Human report of profile rows: one section per (mode, context) with its total time and tokens/s,
 * then a row per layer (label, op, forward and backward milliseconds).
 */
export function profileTable(rows: ProfileEvent[]): string {
  const sections = new Map<string, ProfileEvent[]>();
  for (const row of rows) {
    const key = `${String(row.mode ?? 'run')} @ ${String(row.context ?? '-')} (batch ${String(row.batch ?? '-')})`;
    if (!sections.has(key)) sections.set(key, []);
    sections.get(key)!.push(row);
  }
  const out: string[] = [];
  for (const [key, section] of sections) {
    const total = section.find((r) => r.op === 'total');
    const ms = typeof total?.ms === 'number' ? `${total.ms.toFixed(2)} ms` : '';
    const rate = typeof total?.tokens_per_s === 'number' ? `, ${Math.round(total.tokens_per_s)} tok/s` : '';
    out.push(`${key}${ms ? `: ${ms}${rate}` : ''}`);
    const body = section
      .filter((r) => r.op !== 'total')
      .map((r) => [String(r.label ?? `${r.layer} ${r.kind}`), r.op, r.fwd_ms?.toFixed(3) ?? '', r.bwd_ms ? r.bwd_ms.toFixed(3) : '']);
    const header = ['layer', 'op', 'fwd ms', 'bwd ms'];
    const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
    const line = (cells: string[]) => `  ${cells.map((c, i) => (i >= 2 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd()}`;
    out.push(line(header), ...body.map(line));
  }
  return out.join('\n');
}

export async function run(argv: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseCommandArgs('profile', argv, {
    mode: { type: 'string' },
    context: { type: 'string' },
    batch: { type: 'string' },
    'run-dir': { type: 'string' },
    runs: { type: 'string' },
    name: { type: 'string' },
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    io.stdout(HELP);
    return 0;
  }
  if (positionals.length !== 1) throw new CliError(`profile: expected one INPUT, got ${positionals.length} (see strata profile --help)`);
  const target = loadTarget(positionals[0]!, io);
  const profiling = target.doc.pipeline.profiling;
  const modes = values.mode ? values.mode.split(',').map((m) => m.trim()) : profiling.modes;
  for (const mode of modes) if (!(MODES as readonly string[]).includes(mode)) throw new CliError(`profile: --mode ${mode} is not one of ${MODES.join(', ')}`);
  const contexts = intListOption('profile', 'context', values.context) ?? profiling.contexts;
  const batch = intOption('profile', 'batch', values.batch) ?? profiling.batch;
  const engine = requireEngine();
  const runFolder = openRunFolder(target.doc, 'profile', io, { runDir: values['run-dir'], runs: values.runs, name: values.name });
  const json = Boolean(values.json);
  const rows: ProfileEvent[] = [];
  const printer = eventPrinter(io, { json });
  const onEvent = (event: Parameters<typeof printer.onEvent>[0]) => {
    if (event.type === 'profile' && !json) rows.push(event as ProfileEvent);
    else printer.onEvent(event);
  };
  const job = engine.profile({ document: target.doc, run_dir: runFolder.dir, modes, contexts, batch }, onEvent);
  const outcome = await superviseJob(job, printer, io, { json, runDir: runFolder.dir });
  if (outcome.error) {
    if (!json) io.stderr(`strata: profile: ${outcome.error.message}\n`);
    return EXIT_INTERNAL;
  }
  if (outcome.cancelled) return EXIT_CANCELLED;
  if (!json && rows.length) io.stdout(`${profileTable(rows)}\n`);
  return 0;
}
