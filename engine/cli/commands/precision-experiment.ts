// `strata precision-experiment [DESIGN] [--steps N] [--batch B] [--seq-len T] [--seed S] [--inspect-every N]
// [--root DIR] [--out FILE.md] [--json]`: the NVFP4 pretraining paper's small experiment in one command.
// Trains DESIGN (default: the tiny-hybrid template) three times on the same data with the same seed:
// BF16, NVFP4 with the Nemotron 3 recipe's exceptions, NVFP4 without exceptions; then reports the
// final losses, the relative loss gap to BF16 and the layers whose NVFP4 operands flush most values
// to zero (from the engine's precision inspection events). Each arm is a normal run folder under
// --root (default ./runs/precision-experiment), so `strata inspect-precision` opens any of them.
// --out writes the Markdown report atomically (e.g. docs/precision-experiment.md); --json prints the summary.
// An arm whose run folder already holds a finished run with the same design and settings is reused, so
// an interrupted experiment continues where it stopped and the report can be regenerated.
//
// Not here: training (strata train, reused as is), the summary and report (engine/spec/precision-experiment.ts).
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { writeFileAtomic } from '../../runtime/atomic-write.js';
import { RUN_FILES } from '../../runtime/runs.js';
import {
  type ArmEvents,
  EXPERIMENT_ARMS,
  type ExperimentSettings,
  armDocument,
  renderExperiment,
  summarizeExperiment,
} from '../../spec/precision-experiment.js';
import type { StrataDocument } from '../../spec/document.js';
import { resolvePrecision } from '../../spec/precision.js';
import { type PrecisionEvent, asPrecisionEvent, eventsOfStep, formatDisagreements, inspectionRows } from '../../spec/precision-inspect.js';
import { parseCommandArgs } from '../args.js';
import { CliError, EXIT_INTERNAL } from '../errors.js';
import type { CliIO } from '../io.js';
import { loadModelInput } from '../load-input.js';
import { run as train } from './train.js';

const HELP = `usage: strata precision-experiment [DESIGN] [options]

Trains DESIGN (default tiny-hybrid) in BF16, in NVFP4 with the Nemotron 3 recipe and in NVFP4
without exceptions (same data and seed), then reports losses, the gap to BF16 and NVFP4 underflow.
  --steps N          training steps per arm (default 60)
  --batch B          sequences per step (default 4)
  --seq-len T        tokens per sequence (default 128)
  --seed S           seed shared by the arms (default 1234)
  --inspect-every N  steps between precision inspections (default steps / 2)
  --root DIR         folder for the three run folders (default ./runs/precision-experiment)
  --out FILE         write the Markdown report to FILE (atomically) instead of printing it
  --json             print the summary as JSON
`;

function whole(option: string, text: string | undefined, fallback: number, min: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < min)
    throw new CliError(`precision-experiment: ${option} ${JSON.stringify(text)} is not a whole number >= ${min}`);
  return value;
}

/** Step losses, eval losses and precision events of a finished run folder. */
function readArmEvents(dir: string): Omit<ArmEvents, 'arm'> {
  const stepLosses: number[] = [];
  const evalLosses: number[] = [];
  const precision: PrecisionEvent[] = [];
  const path = join(dir, RUN_FILES.events);
  readFileSync(path, 'utf8')
    .split('\n')
    .forEach((line, i) => {
      if (!line.trim()) return;
      const event = JSON.parse(line) as Record<string, unknown>;
      if (event.type === 'step' && typeof event.loss === 'number') stepLosses.push(event.loss);
      if (event.type === 'eval' && typeof event.loss === 'number') evalLosses.push(event.loss);
      const p = asPrecisionEvent(event, `${path} line ${i + 1}`);
      if (p) precision.push(p);
    });
  return { stepLosses, evalLosses, precision };
}

/** True when DIR holds a run that finished all steps of the same design, policy and training settings. */
function finishedWithSameSettings(dir: string, doc: StrataDocument): boolean {
  const documentPath = join(dir, RUN_FILES.document);
  const eventsPath = join(dir, RUN_FILES.events);
  if (!existsSync(documentPath) || !existsSync(eventsPath)) return false;
  const stored = JSON.parse(readFileSync(documentPath, 'utf8')) as StrataDocument;
  const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
  const t = doc.pipeline.training;
  const st = stored.pipeline?.training;
  if (!st || !same(stored.model?.stack, doc.model.stack) || !same(stored.model?.precision, doc.model.precision)) return false;
  if (st.steps !== t.steps || st.batch_size !== t.batch_size || st.seq_len !== t.seq_len || st.seed !== t.seed || st.eval_every !== t.eval_every)
    return false;
  return readFileSync(eventsPath, 'utf8')
    .split('\n')
    .some((line) => line.includes('"type":"done"') && line.includes('"reason":"finished"'));
}

export async function run(argv: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseCommandArgs('precision-experiment', argv, {
    steps: { type: 'string' },
    batch: { type: 'string' },
    'seq-len': { type: 'string' },
    seed: { type: 'string' },
    'inspect-every': { type: 'string' },
    root: { type: 'string' },
    out: { type: 'string' },
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    io.stdout(HELP);
    return 0;
  }
  if (positionals.length > 1) throw new CliError('precision-experiment: give at most one DESIGN');
  const design = positionals[0] ?? 'tiny-hybrid';
  const steps = whole('--steps', values.steps, 60, 2);
  const settings: ExperimentSettings = {
    steps,
    batch: whole('--batch', values.batch, 4, 1),
    seqLen: whole('--seq-len', values['seq-len'], 128, 2),
    seed: whole('--seed', values.seed, 1234, 0),
    inspectEvery: whole('--inspect-every', values['inspect-every'], Math.max(1, Math.floor(steps / 2)), 1),
  };
  const base = loadModelInput(design, io).doc;
  const root = resolve(io.cwd, values.root ?? join('runs', 'precision-experiment'));
  const runs: ArmEvents[] = [];
  const notes = new Set<string>();
  for (const arm of EXPERIMENT_ARMS) {
    const doc = armDocument(base, arm, settings);
    const docPath = join(root, `${arm.id}.strata.json`);
    writeFileAtomic(docPath, JSON.stringify(doc, null, 2) + '\n');
    const runDir = join(root, arm.id);
    if (finishedWithSameSettings(runDir, doc)) {
      io.stderr(`precision-experiment: reusing the finished ${arm.title} run in ${runDir}\n`);
    } else {
      io.stderr(`precision-experiment: training ${arm.title} (${settings.steps} steps) in ${runDir}\n`);
      const quiet: CliIO = { stdout: () => {}, stderr: (text) => io.stderr(text), cwd: io.cwd, isTTY: false };
      const code = await train([docPath, '--run-dir', runDir, '--name', `precision experiment: ${arm.title}`, '--json'], quiet);
      if (code !== 0) {
        io.stderr(`strata: precision-experiment: the ${arm.title} run ended with exit code ${code}; see ${join(runDir, RUN_FILES.log)}\n`);
        return code === 130 ? code : EXIT_INTERNAL;
      }
    }
    const events = readArmEvents(runDir);
    runs.push({ arm, ...events });
    const table = resolvePrecision(doc.model);
    for (const d of formatDisagreements(inspectionRows(table, eventsOfStep(events.precision).events)))
      notes.add(`${arm.title}: ${d.scope === 'layer' ? `layer ${d.layer} ` : ''}${d.role}: table ${d.table}, engine ${d.engine}`);
  }
  const summary = summarizeExperiment(runs);
  if (values.json) {
    io.stdout(JSON.stringify({ design, settings, root, ...summary, notes: [...notes] }) + '\n');
    return 0;
  }
  const data = `${base.pipeline.dataset.source === 'corpus' ? 'the bundled corpus' : base.pipeline.dataset.source} (${base.pipeline.tokenizer.kind} tokenizer)`;
  const command = ['strata precision-experiment', ...argv].join(' ');
  const report = renderExperiment(summary, { design, settings, data, command, notes: [...notes] });
  if (values.out) {
    const out = resolve(io.cwd, values.out);
    writeFileAtomic(out, report);
    io.stdout(`wrote ${out}\n`);
  } else {
    io.stdout(report);
  }
  return 0;
}
