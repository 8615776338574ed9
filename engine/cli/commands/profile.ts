// `strata profile INPUT [options]`: profiles a design layer by layer on the engine (training step,
// prefill, decode at the given context lengths) and prints the measured tokens/s, per-layer
// forward/backward times and memory beside the analytics' roofline prediction for the same hardware
// profile (--hardware, default the CPU profile the engine runs on). With --json it prints the
// engine's `profile` events (layer index, block kind and op as the graph shows them) with the
// predicted fields added (runtime/profile-prediction.ts); the run folder's events.jsonl holds the
// same annotated rows.
//
// Not here: timing (native engine), the estimates (spec/analytics), the annotation (runtime/profile-prediction.ts).
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { applyOverrides, checkEngineMemory, intListOption, intOption, loadTarget, openRunFolder, requireEngine } from '../../runtime/command-support.js';
import type { EngineEvent, ProfileEvent } from '../../runtime/events.js';
import { type ProfilePrediction, profilePrediction } from '../../runtime/profile-prediction.js';
import { inferenceCheckpoint } from '../../runtime/checkpoints.js';
import { RUN_FILES } from '../../runtime/runs.js';
import { eventPrinter, reportJobError, superviseJob } from '../../runtime/job-runner.js';
import { RUN_FOLDER_OPTIONS, parseCommandArgs } from '../args.js';
import { CliError, EXIT_INTERNAL } from '../errors.js';
import type { CliIO } from '../io.js';
import { EXIT_CANCELLED } from './train.js';

const HELP = `usage: strata profile INPUT [options]

INPUT is a training run folder, a Strata document, a template name, or an HF config.json.
  --mode LIST          comma-separated train,prefill,decode (default: the document's profiling modes)
  --context LIST       context lengths, e.g. 1024,4k (default: the document's)
  --batch N            batch size (default: the document's)
  --hardware ID        hardware profile of the analytics' prediction printed beside the
                       measurements: cpu (default), h100, h200 or b200
  --seed N             initialization seed of a design without weights
  --run-dir DIR / --runs DIR / --name NAME   where the profile run folder goes
  --json               print the engine's JSON events, one per line
`;

const MODES = ['train', 'prefill', 'decode'] as const;

function formatMs(value: unknown): string {
  return typeof value === 'number' && Number.isFinite(value) ? value.toFixed(3) : '';
}

function formatMiB(bytes: unknown): string {
  return typeof bytes === 'number' && Number.isFinite(bytes) ? `${(bytes / 2 ** 20).toFixed(2)} MiB` : 'n/a';
}

/**
 * Human report of profile rows: one section per (mode, context) with the measured total time,
 * tokens/s and memory beside the predicted ones, then a row per layer (label, op, measured forward
 * and backward milliseconds, predicted milliseconds when the rows carry a prediction, and the
 * memory the engine counted for the layer: its activations, or its decode state).
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
    // Step time from the rate (the engine's total `ms` is the same per-step time as its rows).
    const tokensPerStep = (typeof total?.batch === 'number' ? total.batch : 1) * (total?.mode === 'decode' ? 1 : typeof total?.context === 'number' ? total.context : 1);
    const measuredStepMs = typeof total?.tokens_per_s === 'number' && total.tokens_per_s > 0 ? (1000 * tokensPerStep) / total.tokens_per_s : null;
    const rate = typeof total?.tokens_per_s === 'number' ? `, ${Math.round(total.tokens_per_s)} tok/s` : '';
    out.push(`${key}${measuredStepMs !== null ? `: measured ${measuredStepMs.toFixed(2)} ms/step${rate}` : ''}`);
    if (total && typeof total.predicted_ms === 'number') {
      const predictedRate = typeof total.predicted_tokens_per_s === 'number' ? `, ${Math.round(total.predicted_tokens_per_s)} tok/s` : '';
      const ratio = measuredStepMs !== null && total.predicted_ms > 0 ? ` (measured/predicted time ${(measuredStepMs / total.predicted_ms).toFixed(2)}x)` : '';
      out.push(`  predicted on ${String(total.hardware)}: ${total.predicted_ms.toFixed(2)} ms/step${predictedRate}${ratio}`);
    }
    if (total && typeof total.bytes === 'number') {
      const what = String(total.bytes_meaning ?? 'memory');
      // The prediction counts the decode state alone: compare it with the engine's state_bytes.
      const stateLine = typeof total.state_bytes === 'number';
      const predicted = typeof total.predicted_bytes === 'number' && !stateLine ? `, predicted ${formatMiB(total.predicted_bytes)}` : '';
      out.push(`  memory: ${what} ${formatMiB(total.bytes)} measured${predicted}`);
      if (stateLine) {
        const predictedState = typeof total.predicted_bytes === 'number' ? `, predicted ${formatMiB(total.predicted_bytes)}` : '';
        out.push(`  memory: decode state (Mamba state, KV cache) ${formatMiB(total.state_bytes)} measured${predictedState}`);
      }
    }
    const layers = section.filter((r) => r.op !== 'total');
    const predicted = layers.some((r) => typeof r.predicted_ms === 'number');
    const body = layers.map((r) => [
      String(r.label ?? `${r.layer} ${r.kind}`),
      r.op,
      formatMs(r.fwd_ms),
      r.bwd_ms ? formatMs(r.bwd_ms) : '',
      ...(predicted ? [formatMs(r.predicted_ms)] : []),
      typeof r.bytes === 'number' ? (r.bytes / 2 ** 20).toFixed(2) : '',
    ]);
    const header = ['layer', 'op', 'fwd ms', 'bwd ms', ...(predicted ? ['predicted ms'] : []), 'memory MiB'];
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
    hardware: { type: 'string' },
    seed: { type: 'string' },
    ...RUN_FOLDER_OPTIONS,
  });
  if (values.help) {
    io.stdout(HELP);
    return 0;
  }
  if (positionals.length !== 1) throw new CliError(`profile: expected one INPUT, got ${positionals.length} (see strata profile --help)`);
  const target = loadTarget(positionals[0]!, io);
  const seed = intOption('profile', 'seed', values.seed, 0);
  const doc = seed !== undefined ? applyOverrides('profile', target.doc, { seed }, io) : target.doc;
  const profiling = doc.pipeline.profiling;
  const modes = values.mode ? values.mode.split(',').map((m) => m.trim()) : profiling.modes;
  for (const mode of modes) if (!(MODES as readonly string[]).includes(mode)) throw new CliError(`profile: --mode ${mode} is not one of ${MODES.join(', ')}`);
  const contexts = intListOption('profile', 'context', values.context) ?? profiling.contexts;
  const batch = intOption('profile', 'batch', values.batch) ?? profiling.batch;
  let prediction: ProfilePrediction;
  try {
    prediction = profilePrediction(doc, values.hardware ?? 'cpu');
  } catch (error) {
    throw new CliError(`profile: --hardware: ${(error as Error).message}`);
  }
  checkEngineMemory(target.where, doc, modes.includes('train') ? 'backward' : 'inference');
  const engine = requireEngine();
  const runFolder = openRunFolder(doc, 'profile', io, { runDir: values['run-dir'], runs: values.runs, name: values.name });
  const json = Boolean(values.json);
  const rows: ProfileEvent[] = [];
  const printer = eventPrinter(io, { json, runDir: runFolder.dir });
  // This command writes the run's events.jsonl itself (the engine gets no run folder), so the
  // folder holds the rows with their predictions, exactly as --json prints them.
  const eventsFile = join(runFolder.dir, RUN_FILES.events);
  const onEvent = (engineEvent: EngineEvent) => {
    const event = prediction.annotate(engineEvent);
    appendFileSync(eventsFile, `${JSON.stringify(event)}\n`);
    if (event.type === 'profile' && !json) rows.push(event as ProfileEvent);
    else printer.onEvent(event);
  };
  const checkpoint = target.checkpoint ? inferenceCheckpoint(target.checkpoint.path) : undefined;
  const job = engine.profile({ document: doc, modes, contexts, batch, ...(checkpoint ? { checkpoint } : {}) }, onEvent);
  const outcome = await superviseJob(job, printer, io, { json, runDir: runFolder.dir });
  if (outcome.error) {
    reportJobError('profile', outcome, io, json);
    return EXIT_INTERNAL;
  }
  if (outcome.cancelled) return EXIT_CANCELLED;
  if (!json && rows.length) io.stdout(`${profileTable(rows)}\n`);
  return 0;
}
