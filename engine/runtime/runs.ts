// Run folders: one folder per job (train, eval, generate, profile, export) holding everything
// needed to show, compare or resume it, so runs can be listed from their folders alone:
//   run.json         what the run is (runId, name, kind, device, model, createdAt, steps; the same
//                    fields the app host writes, electron/host/run-folders.ts), plus data, parent
//   document.json    the document as run
//   precision.json   the resolved precision table (format per layer, tensor role and GEMM pass)
//   events.jsonl     the job's JSON events (written by the engine as they happen)
//   data/            train.stok / heldout.stok the job read
//   checkpoints/     engine checkpoints
//   log.txt          free-form engine log
// Listing reads run.json and only the tail of events.jsonl, so it stays fast with thousands of runs.
//
// Not here: starting jobs (engine.ts), the event types (events.ts).
import { closeSync, existsSync, fstatSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import type { StrataDocument } from '../spec/document.js';
import { resolvePrecision } from '../spec/precision.js';
import { writeFileAtomic } from './atomic-write.js';
import { type EngineEvent, type EvalEvent, parseEventLine, type StepEvent } from './events.js';

export type RunKind = 'train' | 'eval' | 'generate' | 'profile' | 'export';
/** As the app shows it: stopped = cancelled by the user; interrupted = ended without a final event. */
export type RunStatus = 'running' | 'done' | 'stopped' | 'error' | 'interrupted';

export interface RunMeta {
  runId: string;
  kind: RunKind;
  name: string;
  model: string;
  device: 'cpu' | 'cuda';
  /** ISO 8601 creation time. */
  createdAt: string;
  /** Planned steps of a training run, else null. */
  steps: number | null;
  /** Short description of the data (e.g. "corpus/byte", "task mqar"). */
  data?: string;
  /** The run this one continues or evaluates. */
  parent?: string;
  [field: string]: unknown;
}

export interface RunSummary extends RunMeta {
  dir: string;
  status: RunStatus;
  lastStep: number | null;
  lastLoss: number | null;
  lastEvalLoss: number | null;
  error: string | null;
}

export const RUN_FILES = {
  meta: 'run.json',
  document: 'document.json',
  precision: 'precision.json',
  events: 'events.jsonl',
  data: 'data',
  checkpoints: 'checkpoints',
  log: 'log.txt',
} as const;

/** Default folder that holds run folders: STRATA_RUNS_DIR or <cwd>/runs. */
export function defaultRunsRoot(cwd: string): string {
  return process.env.STRATA_RUNS_DIR ? resolve(cwd, process.env.STRATA_RUNS_DIR) : join(cwd, 'runs');
}

function slug(text: string): string {
  return text.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 40) || 'run';
}

function timestamp(date: Date): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${date.getFullYear()}${p(date.getMonth() + 1)}${p(date.getDate())}-${p(date.getHours())}${p(date.getMinutes())}${p(date.getSeconds())}`;
}

/** The resolved precision table as precision.json holds it: the policy, then one row per layer, role and format. */
export function precisionTableJson(doc: StrataDocument): string {
  const table = resolvePrecision(doc.model);
  const rows = table.rows.map((r) => ({ scope: r.scope, layer: r.layer, kind: r.kind, role: r.role, ...r.formats }));
  return `${JSON.stringify({ policy: doc.model.precision, layers: table.nLayers, rows }, null, 1)}\n`;
}

function writeRunDocuments(dir: string, doc: StrataDocument): void {
  writeFileAtomic(join(dir, RUN_FILES.document), `${JSON.stringify(doc, null, 2)}\n`);
  writeFileAtomic(join(dir, RUN_FILES.precision), precisionTableJson(doc));
}

/** Creates a new run folder with run.json, document.json and precision.json; returns its metadata and path. */
export function createRun(root: string, doc: StrataDocument, kind: RunKind, extra: Partial<RunMeta> = {}): RunSummary {
  mkdirSync(root, { recursive: true });
  const now = new Date();
  const base = `${timestamp(now)}-${kind}-${slug(extra.name ?? doc.model.name)}`;
  let id = base;
  for (let n = 2; existsSync(join(root, id)); n++) id = `${base}-${n}`;
  const dir = join(root, id);
  mkdirSync(join(dir, RUN_FILES.checkpoints), { recursive: true });
  const meta: RunMeta = {
    ...extra,
    runId: id,
    kind,
    name: extra.name ?? doc.model.name,
    model: doc.model.name,
    device: doc.pipeline.training.device,
    createdAt: now.toISOString(),
    steps: kind === 'train' ? doc.pipeline.training.steps : null,
  };
  writeFileAtomic(join(dir, RUN_FILES.meta), `${JSON.stringify(meta, null, 2)}\n`);
  writeRunDocuments(dir, doc);
  return { ...meta, dir, status: 'running', lastStep: null, lastLoss: null, lastEvalLoss: null, error: null };
}

/**
 * Uses a given folder as the run folder (the app host creates it and its run.json before starting
 * the CLI with --run-dir): keeps an existing run.json, adding `extra` fields, or writes a new one
 * whose runId is the folder name; always writes document.json (the document as run) and precision.json.
 */
export function adoptRun(dir: string, doc: StrataDocument, kind: RunKind, extra: Partial<RunMeta> = {}): RunSummary {
  mkdirSync(join(dir, RUN_FILES.checkpoints), { recursive: true });
  const metaPath = join(dir, RUN_FILES.meta);
  let meta: RunMeta;
  if (existsSync(metaPath)) {
    meta = { ...readRunMeta(dir), ...extra };
  } else {
    meta = {
      ...extra,
      runId: basename(dir),
      kind,
      name: extra.name ?? doc.model.name,
      model: doc.model.name,
      device: doc.pipeline.training.device,
      createdAt: new Date().toISOString(),
      steps: kind === 'train' ? doc.pipeline.training.steps : null,
    };
  }
  writeFileAtomic(metaPath, `${JSON.stringify(meta, null, 2)}\n`);
  writeRunDocuments(dir, doc);
  return { ...meta, dir, status: 'running', lastStep: null, lastLoss: null, lastEvalLoss: null, error: null };
}

/** Updates fields of run.json atomically. */
export function updateRunMeta(dir: string, fields: Partial<RunMeta>): void {
  const meta = readRunMeta(dir);
  writeFileAtomic(join(dir, RUN_FILES.meta), `${JSON.stringify({ ...meta, ...fields }, null, 2)}\n`);
}

export function readRunMeta(dir: string): RunMeta {
  const path = join(dir, RUN_FILES.meta);
  let meta: unknown;
  try {
    meta = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new Error(`${path}: cannot read run metadata (${(error as Error).message})`);
  }
  if (!meta || typeof meta !== 'object' || typeof (meta as RunMeta).runId !== 'string') throw new Error(`${path}: field "runId" is missing`);
  return meta as RunMeta;
}

/** Reads the run's document.json as stored (already validated when the run was created). */
export function readRunDocument(dir: string): StrataDocument {
  return JSON.parse(readFileSync(join(dir, RUN_FILES.document), 'utf8')) as StrataDocument;
}

/**
 * All events of a run. A torn last line (the engine was killed mid-write) is ignored; any other
 * malformed line is an error naming the file and line.
 */
export function readEvents(dir: string): EngineEvent[] {
  const path = join(dir, RUN_FILES.events);
  if (!existsSync(path)) return [];
  const lines = readFileSync(path, 'utf8').split('\n');
  const events: EngineEvent[] = [];
  lines.forEach((line, i) => {
    const isLast = i === lines.length - 1;
    try {
      const event = parseEventLine(line, `${path}: line ${i + 1}`);
      if (event) events.push(event);
    } catch (error) {
      if (!isLast) throw error;
    }
  });
  return events;
}

/** Parsed complete events from the last `maxBytes` of events.jsonl (for fast summaries). */
export function readEventsTail(dir: string, maxBytes = 64 * 1024): EngineEvent[] {
  const path = join(dir, RUN_FILES.events);
  if (!existsSync(path)) return [];
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const start = Math.max(0, size - maxBytes);
    const buffer = Buffer.alloc(size - start);
    readSync(fd, buffer, 0, buffer.length, start);
    let lines = buffer.toString('utf8').split('\n');
    if (start > 0) lines = lines.slice(1); // the first line is probably cut
    const events: EngineEvent[] = [];
    for (const line of lines) {
      try {
        const event = parseEventLine(line, path);
        if (event) events.push(event);
      } catch {
        // a torn line at either end of the window; summaries skip it
      }
    }
    return events;
  } finally {
    closeSync(fd);
  }
}

/** Status and last numbers of a run from its folder alone. */
export function summarizeRun(dir: string): RunSummary {
  const meta = readRunMeta(dir);
  const tail = readEventsTail(dir);
  let status: RunStatus = 'interrupted';
  let lastStep: number | null = null;
  let lastLoss: number | null = null;
  let lastEvalLoss: number | null = null;
  let error: string | null = null;
  for (const event of tail) {
    if (event.type === 'step') {
      lastStep = (event as StepEvent).step;
      lastLoss = (event as StepEvent).loss;
    } else if (event.type === 'eval') {
      lastEvalLoss = (event as EvalEvent).loss;
    } else if (event.type === 'done') {
      // A run that stopped on an error (e.g. a non-finite gradient) keeps its error status.
      if (event.reason === 'error') status = 'error';
      else status = event.reason === 'stopped' ? 'stopped' : 'done';
    } else if (event.type === 'error') {
      status = 'error';
      error = String(event.message ?? 'unknown error');
    }
  }
  if (status === 'interrupted' && isFresh(join(dir, RUN_FILES.events))) status = 'running';
  return { ...meta, dir, status, lastStep, lastLoss, lastEvalLoss, error };
}

/** An events file written to within the last minute belongs to a job that is probably still running. */
function isFresh(path: string): boolean {
  return existsSync(path) && Date.now() - statSync(path).mtimeMs < 60_000;
}

/** Summaries of every run folder under `root`, newest first; folders without run.json are skipped. */
export function listRuns(root: string): RunSummary[] {
  if (!existsSync(root)) return [];
  const runs: RunSummary[] = [];
  for (const entry of readdirSync(root, { withFileTypes: true })) {
    if (!entry.isDirectory() || !existsSync(join(root, entry.name, RUN_FILES.meta))) continue;
    try {
      runs.push(summarizeRun(join(root, entry.name)));
    } catch {
      // an unreadable run.json: not a run this listing can describe
    }
  }
  return runs.sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : a.runId < b.runId ? 1 : -1));
}

/** Resolves a run given by path or by id under `root`. */
export function findRun(root: string, idOrPath: string, cwd: string): string {
  const asPath = resolve(cwd, idOrPath);
  if (existsSync(join(asPath, RUN_FILES.meta))) return asPath;
  const underRoot = join(root, idOrPath);
  if (existsSync(join(underRoot, RUN_FILES.meta))) return underRoot;
  throw new Error(`${idOrPath}: no run folder with ${RUN_FILES.meta} (looked in ${asPath} and ${underRoot})`);
}
