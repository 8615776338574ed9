// `strata resume RUN [--steps N] [--json]`: continues a stopped training run from its newest
// checkpoint, in the same run folder, with the data files it was prepared with (RUN/data/*.stok).
// The engine restores weights, optimizer state, data position and RNG state, so the losses match
// an uninterrupted run. --steps raises the planned total (a synthetic-task run gets new samples for
// the extra steps instead of repeating the first ones). A corrupt newest checkpoint is skipped for
// the newest valid one (the engine says so); --checkpoint picks one.
//
// Not here: checkpoint contents (native engine), event printing (runtime/job-runner.ts).
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type CheckpointRef, newestValidCheckpoint } from '../../runtime/checkpoints.js';
import { applyOverrides, checkEngineMemory, intOption, isRunFolder, loadTarget, requireEngine } from '../../runtime/command-support.js';
import { extendTaskTrainData } from '../../runtime/data/prepare.js';
import { eventPrinter, reportJobError, stoppedOnError, superviseJob } from '../../runtime/job-runner.js';
import { RUN_FILES, updateRunMeta } from '../../runtime/runs.js';
import { parseCommandArgs } from '../args.js';
import { CliError, EXIT_INTERNAL } from '../errors.js';
import type { CliIO } from '../io.js';
import { EXIT_CANCELLED } from './train.js';

const HELP = `usage: strata resume RUN [--steps N] [--checkpoint PATH] [--json]

RUN is a training run folder (it has document.json, events.jsonl and checkpoints/).
  --steps N           new planned total of steps (default: the run's own)
  --checkpoint PATH   resume from this checkpoint folder (default: the newest valid one)
  --json              print the engine's JSON events, one per line
`;

export async function run(argv: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseCommandArgs('resume', argv, {
    steps: { type: 'string' },
    checkpoint: { type: 'string' },
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    io.stdout(HELP);
    return 0;
  }
  if (positionals.length !== 1) throw new CliError(`resume: expected one RUN folder, got ${positionals.length} (see strata resume --help)`);
  const dir = resolve(io.cwd, positionals[0]!);
  if (!existsSync(dir) || !isRunFolder(dir)) throw new CliError(`${positionals[0]}: not a run folder (no ${RUN_FILES.meta} or ${RUN_FILES.document})`);
  const target = loadTarget(dir, io);
  if (target.runMeta && target.runMeta.kind !== 'train') throw new CliError(`${positionals[0]}: is ${/^[aeiou]/.test(target.runMeta.kind) ? 'an' : 'a'} ${target.runMeta.kind} run; only training runs resume`);
  if (!target.checkpoint) throw new CliError(`${positionals[0]}: has no checkpoint to resume from (checkpoint_every is ${target.doc.pipeline.training.checkpoint_every})`);
  let from: CheckpointRef | null;
  if (values.checkpoint !== undefined) {
    const path = resolve(io.cwd, values.checkpoint);
    if (!existsSync(join(path, 'state.json'))) throw new CliError(`resume: --checkpoint ${values.checkpoint}: not a checkpoint folder (no state.json)`);
    from = { path, step: loadTarget(path, io).checkpoint?.step ?? -1 };
  } else {
    // The engine skips corrupt checkpoints itself and says so in its log events.
    from = newestValidCheckpoint(dir).checkpoint;
    if (!from) throw new CliError(`${positionals[0]}: has no valid checkpoint to resume from (${newestValidCheckpoint(dir).skipped[0]})`);
  }
  const trainData = join(dir, RUN_FILES.data, 'train.stok');
  const heldoutData = join(dir, RUN_FILES.data, 'heldout.stok');
  for (const f of [trainData, heldoutData]) if (!existsSync(f)) throw new CliError(`${positionals[0]}: missing ${f}; the run's data is needed to resume`);
  const steps = intOption('resume', 'steps', values.steps);
  const doc = steps === undefined ? target.doc : applyOverrides('resume', target.doc, { steps }, io);
  if (steps !== undefined) updateRunMeta(dir, { steps });
  let extended;
  try {
    extended = extendTaskTrainData(doc.pipeline, trainData);
  } catch (error) {
    throw new CliError(`${positionals[0]}: ${(error as Error).message}`);
  }
  checkEngineMemory(target.where, doc, 'train');
  const engine = requireEngine(doc);
  const json = Boolean(values.json);
  const total = doc.pipeline.training.steps;
  if (!json) {
    io.stdout(`resuming ${dir} from step ${from.step} of ${total}\n`);
    if (extended) io.stdout(`task data: ${extended.before} -> ${extended.after} training samples for the longer run\n`);
  }
  const printer = eventPrinter(io, { json, totalSteps: total, runDir: dir });
  const job = engine.train({ document: doc, run_dir: dir, train_data: trainData, heldout_data: heldoutData, steps: total, resume: true, ...(values.checkpoint !== undefined ? { checkpoint: from.path } : {}) }, printer.onEvent);
  const outcome = await superviseJob(job, printer, io, { json, totalSteps: total, runDir: dir });
  if (outcome.error) {
    reportJobError('resume', outcome, io, json);
    return EXIT_INTERNAL;
  }
  if (stoppedOnError(outcome)) {
    if (!json) io.stderr(`strata: resume: the run stopped on an error; its last good checkpoint is kept in ${dir}\n`);
    return EXIT_INTERNAL;
  }
  if (outcome.cancelled || outcome.result?.cancelled) return EXIT_CANCELLED;
  if (!json) io.stdout(`done: ${dir}\n`);
  return 0;
}
