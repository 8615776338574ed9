// `strata train INPUT [options]`: trains a design (a Strata document, template name or HF config.json)
// on the bundled native engine. Prepares the data (bundled corpus, a text/.stok file, or a synthetic
// task) into the run folder, then streams the engine's events: a progress bar with loss, tokens/s
// and ETA, or with --json exactly the JSON events (also in the run folder's events.jsonl).
// Ctrl-C stops cleanly after the current step (exit code 130); `strata resume RUN` continues.
// INPUT may also be a run folder: its document is trained from a fresh initialization (the engine's
// C API cannot start training from existing weights), which a note on stderr says.
//
// Not here: the data pipeline (runtime/data), the engine API (runtime/engine.ts), run folders (runtime/runs.ts).
import { join } from 'node:path';
import { prepareData } from '../../runtime/data/prepare.js';
import { applyOverrides, checkEngineMemory, describeData, intOption, loadTarget, numberOption, openRunFolder, requireEngine } from '../../runtime/command-support.js';
import { eventPrinter, recordRunError, reportJobError, stoppedOnError, superviseJob } from '../../runtime/job-runner.js';
import { RUN_FILES } from '../../runtime/runs.js';
import { parseCommandArgs } from '../args.js';
import { CliError, EXIT_INTERNAL } from '../errors.js';
import type { CliIO } from '../io.js';

const HELP = `usage: strata train INPUT [options]

INPUT is a Strata document, a template name, an HF config.json, or a run folder (its document,
trained from a fresh initialization from --seed).
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
  if (target.checkpoint)
    io.stderr(
      `strata: note: ${target.where}: training starts from a fresh initialization (seed ${doc.pipeline.training.seed}), not from its checkpoint ${target.checkpoint.path}: the engine cannot initialize training from existing weights yet (to continue a stopped run: strata resume)\n`,
    );
  checkEngineMemory(target.where, doc, 'train');
  const engine = requireEngine(doc);
  const runFolder = openRunFolder(doc, 'train', io, { runDir: values['run-dir'], runs: values.runs, name: values.name, extra: { data: describeData(doc) } });
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
  const job = engine.train({ document: doc, run_dir: runFolder.dir, train_data: data.train, heldout_data: data.heldout, steps }, printer.onEvent);
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
