// `strata train INPUT [options]`: trains a design (a Strata document, template name or HF config.json)
// on the bundled native engine. Prepares the data (bundled corpus, a text/.stok file, or a synthetic
// task) into the run folder, then streams the engine's events: a progress bar with loss, tokens/s
// and ETA, or with --json exactly the JSON events (also in the run folder's events.jsonl).
// Ctrl-C stops cleanly after the current step (exit code 130); `strata resume RUN` continues.
// INPUT may also be a run folder or one of its checkpoints: a new run of its document fine-tunes its
// weights (the run's newest valid checkpoint, or the checkpoint given), as --init-from does for a
// design; a template or document alone starts from fresh weights from --seed.
//
// Not here: the data pipeline (runtime/data), the engine API (runtime/engine.ts), run folders (runtime/runs.ts).
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { inferenceCheckpoint } from '../../runtime/checkpoints.js';
import { prepareData } from '../../runtime/data/prepare.js';
import {
  applyOverrides,
  checkEngineMemory,
  type CommandTarget,
  describeData,
  intOption,
  isRunFolder,
  loadTarget,
  numberOption,
  openRunFolder,
  requireEngine,
  validCheckpoint,
} from '../../runtime/command-support.js';
import { eventPrinter, recordRunError, reportJobError, stoppedOnError, superviseJob } from '../../runtime/job-runner.js';
import { RUN_FILES } from '../../runtime/runs.js';
import { RUN_FOLDER_OPTIONS, parseCommandArgs } from '../args.js';
import { CliError, EXIT_INTERNAL } from '../errors.js';
import type { CliIO } from '../io.js';

const HELP = `usage: strata train INPUT [options]

INPUT is a Strata document, a template name, an HF config.json (fresh weights from --seed), or a
run folder or checkpoint (RUN/checkpoints/step_N or its model.safetensors): a new run fine-tunes
those weights (a run's newest valid checkpoint).
  --init-from PATH     start from these weights: a checkpoint folder, a .safetensors file or a run
  --steps N            training steps (default: the document's pipeline.training.steps)
  --data PATH          train on a .txt, .jsonl, .parquet or .stok file ('corpus' = the bundled corpus)
  --task NAME          train on a synthetic task: mqar, needle or copy
  --tokenizer KIND     byte or gpt2
  --seq-len N          sequence length        --batch N   batch size
  --lr X               peak learning rate     --seed N    random seed
  --device cpu|cuda    where to train
  --run-dir DIR        use DIR as the run folder (created if missing)
  --runs DIR           create the run folder under DIR (default: ./runs or $STRATA_RUNS_DIR)
  --name NAME          display name of the run
  --json               print the engine's JSON events, one per line
`;

export const EXIT_CANCELLED = 130;

/**
 * The weights a new training run starts from: --init-from (a checkpoint folder, a .safetensors
 * file, or a run: its newest valid checkpoint), else INPUT's checkpoint when INPUT is a run or a
 * checkpoint, else none (fresh weights from the seed). The engine checks shapes against the document.
 */
function initialWeights(target: CommandTarget, option: string | undefined, io: CliIO): string | undefined {
  if (option !== undefined) {
    const path = resolve(io.cwd, option);
    if (!existsSync(path)) throw new CliError(`train: --init-from ${option}: no such file or folder`);
    if (!isRunFolder(path)) return inferenceCheckpoint(path);
    const ref = validCheckpoint(loadTarget(path, io), io);
    if (!ref) throw new CliError(`train: --init-from ${option}: the run has no valid checkpoint`);
    return inferenceCheckpoint(ref.path);
  }
  if (!target.runDir) return undefined;
  const ref = validCheckpoint(target, io);
  if (!ref) throw new CliError(`${target.where}: the run has no valid checkpoint to start from (train its document file for fresh weights)`);
  return inferenceCheckpoint(ref.path);
}

export async function run(argv: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseCommandArgs('train', argv, {
    steps: { type: 'string' },
    data: { type: 'string' },
    task: { type: 'string' },
    tokenizer: { type: 'string' },
    'seq-len': { type: 'string' },
    batch: { type: 'string' },
    lr: { type: 'string' },
    seed: { type: 'string' },
    device: { type: 'string' },
    'init-from': { type: 'string' },
    ...RUN_FOLDER_OPTIONS,
  });
  if (values.help) {
    io.stdout(HELP);
    return 0;
  }
  if (positionals.length !== 1) throw new CliError(`train: expected one INPUT, got ${positionals.length} (see strata train --help)`);
  const target = loadTarget(positionals[0]!, io);
  const doc = applyOverrides(
    'train',
    target.doc,
    {
      steps: intOption('train', 'steps', values.steps),
      data: values.data,
      task: values.task,
      tokenizer: values.tokenizer,
      seqLen: intOption('train', 'seq-len', values['seq-len'], 2),
      batch: intOption('train', 'batch', values.batch),
      lr: numberOption('train', 'lr', values.lr, 0, 10),
      seed: intOption('train', 'seed', values.seed, 0),
      device: values.device,
    },
    io,
  );
  const initFrom = initialWeights(target, values['init-from'], io);
  if (initFrom)
    io.stderr(`strata: note: ${target.where}: a new run fine-tuning ${initFrom} (optimizer, schedule and data start anew; to continue a stopped run: strata resume)\n`);
  checkEngineMemory(target.where, doc, 'train');
  const engine = requireEngine(doc);
  const runFolder = openRunFolder(doc, 'train', io, { runDir: values['run-dir'], runs: values.runs, name: values.name, extra: { data: describeData(doc), ...(initFrom ? { initFrom, ...(target.runMeta ? { parent: target.runMeta.runId } : {}) } : {}) } });
  let data;
  try {
    data = await prepareData(doc.pipeline, doc.model.vocab_size, { outDir: join(runFolder.dir, RUN_FILES.data), baseDir: io.cwd });
  } catch (error) {
    const message = `${target.where}: ${(error as Error).message}`;
    recordRunError(runFolder.dir, message);
    throw new CliError(message);
  }
  const json = Boolean(values.json);
  if (!json) {
    io.stdout(`run ${runFolder.runId} (${runFolder.dir})\n`);
    io.stdout(`data: ${describeData(doc)}: ${data.trainTokens.toLocaleString('en-US')} train / ${data.heldoutTokens.toLocaleString('en-US')} held-out tokens\n`);
  }
  const steps = doc.pipeline.training.steps;
  const printer = eventPrinter(io, { json, totalSteps: steps, runDir: runFolder.dir });
  const job = engine.train(
    { document: doc, run_dir: runFolder.dir, train_data: data.train, heldout_data: data.heldout, steps, ...(initFrom ? { init_from: initFrom } : {}) },
    printer.onEvent,
  );
  const outcome = await superviseJob(job, printer, io, { json, totalSteps: steps, runDir: runFolder.dir });
  if (outcome.error) {
    reportJobError('train', outcome, io, json);
    return EXIT_INTERNAL;
  }
  if (stoppedOnError(outcome)) {
    if (!json) io.stderr(`strata: train: the run stopped on an error; its last good checkpoint is kept in ${runFolder.dir}\n`);
    return EXIT_INTERNAL;
  }
  if (outcome.cancelled || outcome.result?.cancelled) {
    if (!json) io.stdout(`stopped; continue with: strata resume ${runFolder.dir}\n`);
    return EXIT_CANCELLED;
  }
  if (!json) io.stdout(`done: ${runFolder.dir}\n`);
  return 0;
}
