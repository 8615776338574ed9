// `strata eval INPUT [options]`: evaluates weights on held-out data and prints loss, perplexity and
// bits per byte (text data) or answer accuracy (synthetic tasks). INPUT is a training run folder
// (its newest checkpoint and its held-out data) or a design (fresh initialization, or --checkpoint).
// Each evaluation gets its own run folder (kind eval) with the engine's events.
//
// Not here: the metrics themselves (native engine), data preparation (runtime/data/prepare.ts).
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { inferenceCheckpoint } from '../../runtime/checkpoints.js';
import { applyOverrides, checkEngineMemory, describeData, intOption, loadTarget, openRunFolder, requireEngine, validCheckpoint } from '../../runtime/command-support.js';
import { prepareData } from '../../runtime/data/prepare.js';
import { eventPrinter, recordRunError, reportJobError, superviseJob } from '../../runtime/job-runner.js';
import { RUN_FILES } from '../../runtime/runs.js';
import { RUN_FOLDER_OPTIONS, parseCommandArgs } from '../args.js';
import { CliError, EXIT_INTERNAL } from '../errors.js';
import type { CliIO } from '../io.js';
import { EXIT_CANCELLED } from './train.js';

const HELP = `usage: strata eval INPUT [options]

INPUT is a training run folder or one of its checkpoints, a Strata document, a template name, or an HF config.json.
  --checkpoint PATH    weights to evaluate (default: the run's newest valid checkpoint; fresh init for a design)
  --data PATH          evaluate on this file's held-out part ('corpus' = bundled corpus)
  --task NAME          evaluate on a synthetic task (mqar, needle, copy)
  --batches N          number of batches (default: the document's evaluation setting)
  --seed N             initialization seed of a design evaluated without weights
  --positions N        also print the NLL by position, averaged into N buckets
  --run-dir DIR / --runs DIR / --name NAME   where the eval run folder goes
  --json               print the engine's JSON events, one per line
`;

/** NLL by position averaged into `buckets` equal spans, as `positions a-b: nll` lines (zeros = no target there). */
export function positionBuckets(nll: readonly number[], buckets: number): string[] {
  const lines: string[] = [];
  const n = Math.min(buckets, nll.length);
  for (let b = 0; b < n; b++) {
    const from = Math.floor((b * nll.length) / n);
    const to = Math.floor(((b + 1) * nll.length) / n);
    const counted = nll.slice(from, to).filter((v) => v > 0);
    const mean = counted.length ? counted.reduce((a, v) => a + v, 0) / counted.length : null;
    lines.push(`positions ${from}-${to - 1}: ${mean === null ? 'n/a' : mean.toFixed(4)}`);
  }
  return lines;
}

function formatMetric(value: unknown, digits: number): string {
  return typeof value === 'number' && Number.isFinite(value) ? value.toFixed(digits) : 'n/a';
}

export async function run(argv: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseCommandArgs('eval', argv, {
    checkpoint: { type: 'string' },
    data: { type: 'string' },
    task: { type: 'string' },
    batches: { type: 'string' },
    seed: { type: 'string' },
    positions: { type: 'string' },
    ...RUN_FOLDER_OPTIONS,
  });
  if (values.help) {
    io.stdout(HELP);
    return 0;
  }
  if (positionals.length !== 1) throw new CliError(`eval: expected one INPUT, got ${positionals.length} (see strata eval --help)`);
  const target = loadTarget(positionals[0]!, io);
  const doc = applyOverrides('eval', target.doc, { data: values.data, task: values.task, seed: intOption('eval', 'seed', values.seed, 0) }, io);
  const batches = intOption('eval', 'batches', values.batches) ?? doc.pipeline.evaluations[0]?.batches ?? 8;
  const positionBucketCount = intOption('eval', 'positions', values.positions);
  let checkpoint: string | undefined;
  if (values.checkpoint) {
    checkpoint = resolve(io.cwd, values.checkpoint);
    if (!existsSync(checkpoint)) throw new CliError(`eval: --checkpoint ${values.checkpoint}: no such file or folder`);
  } else if (target.runDir) {
    // Evaluation needs the weights only (an imported checkpoint has no optimizer state); the engine
    // verifies a checkpoint folder's hashes first. A corrupt newest checkpoint is skipped with a note.
    const ref = validCheckpoint(target, io);
    if (!ref) throw new CliError(`${target.where}: the run has no ${target.checkpoint ? 'valid ' : ''}checkpoint yet`);
    checkpoint = inferenceCheckpoint(ref.path);
  }
  checkEngineMemory(target.where, doc, 'inference');
  const engine = requireEngine();
  const runFolder = openRunFolder(doc, 'eval', io, {
    runDir: values['run-dir'],
    runs: values.runs,
    name: values.name,
    extra: { data: describeData(doc), ...(target.runMeta ? { parent: target.runMeta.runId } : {}) },
  });
  const sameData = target.runDir && values.data === undefined && values.task === undefined;
  let heldout = sameData ? join(target.runDir!, RUN_FILES.data, 'heldout.stok') : '';
  if (!heldout || !existsSync(heldout)) {
    try {
      heldout = (await prepareData(doc.pipeline, doc.model.vocab_size, { outDir: join(runFolder.dir, RUN_FILES.data), baseDir: io.cwd })).heldout;
    } catch (error) {
      const message = `${target.where}: ${(error as Error).message}`;
      recordRunError(runFolder.dir, message);
      throw new CliError(message);
    }
  }
  const json = Boolean(values.json);
  const printer = eventPrinter(io, { json, runDir: runFolder.dir });
  const job = engine.eval({ document: doc, run_dir: runFolder.dir, data: heldout, ...(checkpoint ? { checkpoint } : {}), batches }, printer.onEvent);
  const outcome = await superviseJob(job, printer, io, { json, runDir: runFolder.dir });
  if (outcome.error) {
    reportJobError('eval', outcome, io, json);
    return EXIT_INTERNAL;
  }
  if (outcome.cancelled) return EXIT_CANCELLED;
  const r = outcome.result!;
  // The engine's own eval event was already printed as one line; otherwise print the result.
  if (!json && !outcome.events.some((e) => e.type === 'eval')) {
    const lines = [`loss ${formatMetric(r.loss, 4)}`, `ppl ${formatMetric(r.ppl, 3)}`, `bpb ${formatMetric(r.bpb, 4)}`];
    if (typeof r.accuracy === 'number') lines.push(`accuracy ${(r.accuracy * 100).toFixed(2)}%`);
    io.stdout(`${lines.join('\n')}\n`);
  }
  if (!json && positionBucketCount !== undefined && Array.isArray(r.nll_by_position))
    io.stdout(`NLL by position:\n${positionBuckets(r.nll_by_position, positionBucketCount).map((l) => `  ${l}`).join('\n')}\n`);
  return 0;
}
