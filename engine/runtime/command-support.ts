// Shared plumbing of the engine-backed `strata` commands (train, eval, generate, resume, profile,
// export-hf, import-hf): numeric option parsing with one-line errors, resolving the INPUT argument
// (a run folder, or a design through the CLI's loadModelInput), the document overrides the commands
// accept, run-folder creation, loading the engine with a fix-it message, and refusing a design whose
// weights alone cannot fit in this machine's memory before the engine tries to allocate them.
//
// Not here: each command's own logic (engine/cli/commands/*), argument parsing (engine/cli/args.ts).
import { existsSync } from 'node:fs';
import { totalmem } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { CliError, EXIT_INTERNAL } from '../cli/errors.js';
import type { CliIO } from '../cli/io.js';
import { loadModelInput } from '../cli/load-input.js';
import { countParams } from '../spec/analytics/params.js';
import { SYNTHETIC_TASKS, type StrataDocument, type SyntheticTask } from '../spec/document.js';
import { parseDocument } from '../spec/validate.js';
import { type CheckpointRef, latestCheckpoint, newestValidCheckpoint } from './checkpoints.js';
import { type Engine, EngineNotBuiltError, loadEngine } from './engine.js';
import { adoptRun, createRun, defaultRunsRoot, readRunMeta, RUN_FILES, type RunKind, type RunMeta, type RunSummary } from './runs.js';

/** Parses an integer option (undefined when absent); errors name the command and option. */
export function intOption(command: string, name: string, value: string | undefined, min = 1): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new CliError(`${command}: --${name} must be an integer >= ${min}, got ${JSON.stringify(value)}`);
  return n;
}

/** Parses a number option within [min, max]. */
export function numberOption(command: string, name: string, value: string | undefined, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n < min || n > max) throw new CliError(`${command}: --${name} must be a number in [${min}, ${max}], got ${JSON.stringify(value)}`);
  return n;
}

/** Comma-separated positive integers (`1024,4096`); `k` suffix allowed. */
export function intListOption(command: string, name: string, value: string | undefined): number[] | undefined {
  if (value === undefined) return undefined;
  return value.split(',').map((part) => {
    const text = part.trim().toLowerCase();
    const n = text.endsWith('k') ? Number(text.slice(0, -1)) * 1024 : Number(text);
    if (!Number.isInteger(n) || n < 1) throw new CliError(`${command}: --${name} must be a comma-separated list of positive integers, got ${JSON.stringify(value)}`);
    return n;
  });
}

/** What a command works on: a design, a run folder (its document as run and newest checkpoint), or one checkpoint of a run. */
export interface CommandTarget {
  doc: StrataDocument;
  /** How messages name it. */
  where: string;
  runDir?: string;
  runMeta?: RunMeta;
  checkpoint?: CheckpointRef | null;
  /** INPUT named this checkpoint itself (a checkpoint folder or its weights file), not a run. */
  checkpointGiven?: boolean;
}

export function isRunFolder(path: string): boolean {
  return existsSync(join(path, RUN_FILES.meta)) || (existsSync(join(path, RUN_FILES.document)) && existsSync(join(path, RUN_FILES.events)));
}

/** The run folder a checkpoint folder or weights file sits in (RUN/checkpoints/ENTRY[/file]), or null. */
function runOfCheckpoint(path: string): string | null {
  for (let dir = dirname(path), up = 0; up < 3; dir = dirname(dir), up++) {
    if (basename(dir) === RUN_FILES.checkpoints && isRunFolder(dirname(dir))) return dirname(dir);
  }
  return null;
}

function stepOfCheckpoint(path: string): number {
  for (const name of [basename(path), basename(dirname(path))]) {
    const match = /(\d+)(?:\.safetensors)?$/.exec(name);
    if (match) return Number(match[1]);
  }
  return -1;
}

/**
 * Resolves INPUT: a run folder (has run.json, or document.json + events.jsonl), a checkpoint of a
 * run (RUN/checkpoints/step_N or its model.safetensors: the run's document with that checkpoint),
 * else a design.
 */
export function loadTarget(arg: string, io: CliIO): CommandTarget {
  const path = resolve(io.cwd, arg);
  const checkpointRun = existsSync(path) && (existsSync(join(path, 'state.json')) || path.endsWith('.safetensors')) ? runOfCheckpoint(path) : null;
  if (checkpointRun) {
    const target = loadTarget(checkpointRun, io);
    return { ...target, where: arg, checkpoint: { path, step: stepOfCheckpoint(path) }, checkpointGiven: true };
  }
  if (existsSync(path) && isRunFolder(path)) {
    const docFile = join(path, RUN_FILES.document);
    if (!existsSync(docFile)) throw new CliError(`${arg}: run folder has no ${RUN_FILES.document}`);
    const loaded = loadModelInput(docFile, io);
    const runMeta = existsSync(join(path, RUN_FILES.meta)) ? readRunMeta(path) : undefined;
    return { doc: loaded.doc, where: arg, runDir: path, runMeta, checkpoint: latestCheckpoint(path) };
  }
  const loaded = loadModelInput(arg, io);
  for (const note of loaded.notes) io.stderr(`strata: note: ${note}\n`);
  return { doc: loaded.doc, where: loaded.file ?? arg };
}

/**
 * The weights a command loads from a target: the checkpoint INPUT named, else the run's newest
 * checkpoint that verifies; each newer corrupt one is skipped with a note on stderr. Null for a
 * design, or a run without a valid checkpoint.
 */
export function validCheckpoint(target: CommandTarget, io: CliIO): CheckpointRef | null {
  if (target.checkpointGiven || !target.runDir) return target.checkpoint ?? null;
  const { checkpoint, skipped } = newestValidCheckpoint(target.runDir);
  for (const reason of skipped) io.stderr(`strata: note: ${target.where}: skipping a corrupt checkpoint: ${reason}\n`);
  if (checkpoint && skipped.length) io.stderr(`strata: note: ${target.where}: using the newest valid checkpoint ${checkpoint.path}\n`);
  return checkpoint;
}

export interface DocumentOverrides {
  steps?: number;
  data?: string;
  task?: string;
  tokenizer?: string;
  seqLen?: number;
  batch?: number;
  lr?: number;
  device?: string;
  seed?: number;
}

/** Applies command-line overrides to a document and re-validates it; errors name the option. */
export function applyOverrides(command: string, doc: StrataDocument, o: DocumentOverrides, io: CliIO): StrataDocument {
  if (o.data !== undefined && o.task !== undefined) throw new CliError(`${command}: give --data or --task, not both`);
  if (o.task !== undefined && !(SYNTHETIC_TASKS as readonly string[]).includes(o.task))
    throw new CliError(`${command}: --task ${o.task} is not one of ${SYNTHETIC_TASKS.join(', ')}`);
  if (o.tokenizer !== undefined && o.tokenizer !== 'byte' && o.tokenizer !== 'gpt2') throw new CliError(`${command}: --tokenizer must be byte or gpt2, got ${o.tokenizer}`);
  if (o.device !== undefined && o.device !== 'cpu' && o.device !== 'cuda') throw new CliError(`${command}: --device must be cpu or cuda, got ${o.device}`);
  const pipeline = structuredClone(doc.pipeline) as StrataDocument['pipeline'];
  const training = pipeline.training;
  if (o.steps !== undefined) {
    training.steps = o.steps;
    training.warmup_steps = Math.min(training.warmup_steps, o.steps);
  }
  if (o.seqLen !== undefined) training.seq_len = o.seqLen;
  if (o.batch !== undefined) training.batch_size = o.batch;
  if (o.lr !== undefined) training.lr = o.lr;
  if (o.device !== undefined) training.device = o.device as 'cpu' | 'cuda';
  if (o.seed !== undefined) training.seed = o.seed;
  if (o.tokenizer !== undefined) pipeline.tokenizer = { kind: o.tokenizer as 'byte' | 'gpt2' };
  if (o.data !== undefined) {
    pipeline.dataset = o.data === 'corpus' ? { source: 'corpus', heldout_fraction: 0.05 } : { source: 'file', path: resolve(io.cwd, o.data), text_field: 'text', heldout_fraction: 0.05 };
  }
  if (o.task !== undefined) {
    const previous = pipeline.dataset.source === 'task' ? pipeline.dataset : null;
    pipeline.dataset = { source: 'task', task: o.task as SyntheticTask, num_pairs: previous?.num_pairs ?? 8, distance: previous?.distance ?? 256 };
    pipeline.tokenizer = { kind: 'byte' };
  }
  const result = parseDocument({ ...doc, pipeline });
  if (!result.ok) throw new CliError(`${command}: ${result.errors.map((e) => e.message).join('; ')}`);
  return result.doc;
}

/** The run folder of a job: --run-dir (adopted, as the app host passes it) or a new one under --runs. */
export function openRunFolder(doc: StrataDocument, kind: RunKind, io: CliIO, options: { runDir?: string; runs?: string; name?: string; extra?: Partial<RunMeta> }): RunSummary {
  const extra: Partial<RunMeta> = { ...options.extra, ...(options.name ? { name: options.name } : {}) };
  if (options.runDir) return adoptRun(resolve(io.cwd, options.runDir), doc, kind, extra);
  const root = options.runs ? resolve(io.cwd, options.runs) : defaultRunsRoot(io.cwd);
  return createRun(root, doc, kind, extra);
}

/** Short description of a document's data for run.json. */
export function describeData(doc: StrataDocument): string {
  const d = doc.pipeline.dataset;
  if (d.source === 'task') return `task ${d.task}`;
  if (d.source === 'corpus') return `corpus/${doc.pipeline.tokenizer.kind}`;
  return `${d.path} (${doc.pipeline.tokenizer.kind})`;
}

/**
 * Bytes per parameter the CPU engine holds at least: fp32 weights for inference; weights and
 * gradients for a backward pass (profiling a training step); weights, gradients and the two AdamW
 * moments for training (activations come on top).
 */
export const ENGINE_BYTES_PER_PARAM = { inference: 4, backward: 8, train: 16 } as const;
const ENGINE_STATE_NAMES = { inference: 'fp32 weights', backward: 'fp32 weights and gradients', train: 'fp32 weights, gradients and AdamW moments' } as const;

/**
 * Refuses a design whose parameters alone need more than the machine's memory, so a full-size
 * template is explained in one line instead of exhausting memory inside the engine.
 */
export function checkEngineMemory(where: string, doc: StrataDocument, use: keyof typeof ENGINE_BYTES_PER_PARAM, machineBytes = totalmem()): void {
  const counted = countParams(doc.model);
  const params = counted.total + (counted.mtp?.total ?? 0);
  const needed = params * ENGINE_BYTES_PER_PARAM[use];
  if (needed <= machineBytes) return;
  const gib = (bytes: number) => `${(bytes / 2 ** 30).toFixed(1)} GiB`;
  const what = ENGINE_STATE_NAMES[use];
  throw new CliError(
    `${where}: the CPU engine needs at least ${gib(needed)} for ${what} of ${(params / 1e6).toFixed(1)}M parameters, more than this machine's ${gib(machineBytes)} of memory; train or run a smaller design (e.g. a tiny-* template)`,
  );
}

/**
 * The engine, or a CliError (exit 1) that says how to build it. With a document, also refuses a
 * `pipeline.training.device` the build has no backend for (e.g. cuda on a CPU-only build), rather
 * than running the job on another device than the run folder records.
 */
export function requireEngine(doc?: StrataDocument): Engine {
  let engine: Engine;
  try {
    engine = loadEngine();
  } catch (error) {
    if (error instanceof EngineNotBuiltError) throw new CliError(error.message, EXIT_INTERNAL);
    throw error;
  }
  const device = doc?.pipeline.training.device;
  if (device) {
    const backends = engine.info().backends;
    if (!backends.includes(device))
      throw new CliError(
        `device ${device}: this engine build has no ${device} backend (built: ${backends.join(', ')}); ${device === 'cuda' ? 'rebuild with nvcc on PATH (npm run build:engine) or use --device cpu' : 'rebuild the engine'}`,
      );
  }
  return engine;
}
