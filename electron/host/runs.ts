// RunService (electron/contract.ts) in Node: starts engine jobs by running the `strata` CLI
// (`strata train DOC --json --run-dir DIR`, likewise eval/profile; `strata resume DIR --json`) in
// a separate process through a JobLauncher, follows each live run's events.jsonl and pushes new
// lines to subscribers, stops runs (SIGINT, then kill after a grace period), lists runs from
// their folders alone, and imports run folders made elsewhere (the native CLI on a GPU box) by
// linking them into the runs folder. When the engine process dies without a final event the host appends one
// (`error` with the exit status and stderr tail, or `done` with reason "stopped"), so every run
// folder ends in a terminal event.
// Not here: parsing run folders (run-folders.ts), process spawning details (jobs.ts).
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { basename, isAbsolute, join, resolve, sep } from 'node:path';
import {
  type RunDevice,
  type RunEvent,
  type RunEventMessage,
  type RunHandle,
  type RunKind,
  type RunService,
  type RunSummary,
  StrataHostError,
} from '../contract.js';
import type { StrataDocument } from '../../engine/spec/document.js';
import { readJsonFile, writeFileAtomic } from './files.js';
import { type JobLauncher, type JobProcess, collectTail } from './jobs.js';
import { validateDocument } from './projects.js';
import {
  DOCUMENT_FILE,
  EVENTS_FILE,
  EventsTailer,
  RUN_META_FILE,
  type RunMeta,
  appendEvent,
  assertRunId,
  readEventsFrom,
  readRunMeta,
  summarizeRun,
  terminalStatus,
} from './run-folders.js';

export interface RunServiceOptions {
  runsDir: string;
  /** The `strata` CLI entry (engine/cli/bin.mjs). */
  cliScript: string;
  /** Working folder of engine jobs (the app/repository root, where templates/ and assets/ are). */
  cwd: string;
  launcher: JobLauncher;
  /** How long a stop waits for a clean exit before killing. */
  stopGraceMs?: number;
  /** How often live runs' events.jsonl are re-read (stdout activity also triggers a read). */
  pollMs?: number;
  /** Where a relative path given to importFolder resolves (default: the process's folder). */
  workspaceDir?: string;
}

const RUN_KINDS: readonly RunKind[] = ['train', 'eval', 'profile'];
const DEVICES: readonly RunDevice[] = ['cpu', 'cuda'];
const LIST_CONCURRENCY = 16;
const STDERR_TAIL = 4000;

interface LiveRun {
  job: JobProcess;
  tailer: EventsTailer;
  timer: ReturnType<typeof setInterval>;
  stopRequested: boolean;
  finished: Promise<void>;
}

export interface HostRunService extends RunService {
  /** Stops every live run (host shutdown). */
  dispose(): Promise<void>;
}

function slug(text: string): string {
  return text.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 40) || 'run';
}

function timestamp(date: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${date.getFullYear()}${p(date.getMonth() + 1)}${p(date.getDate())}-${p(date.getHours())}${p(date.getMinutes())}${p(date.getSeconds())}`;
}

export function createRunService(options: RunServiceOptions): HostRunService {
  const live = new Map<string, LiveRun>();
  const listeners = new Set<(message: RunEventMessage) => void>();
  const cache = new Map<string, { key: string; summary: RunSummary }>();
  const grace = options.stopGraceMs ?? 5000;
  const pollMs = options.pollMs ?? 250;
  const runDir = (runId: unknown) => join(options.runsDir, assertRunId(runId));

  async function requireRunFolder(runId: unknown): Promise<string> {
    const dir = runDir(runId);
    const stat = await fs.stat(dir).catch(() => null);
    if (!stat?.isDirectory()) throw new StrataHostError({ code: 'not_found', message: `no run '${String(runId)}' in ${options.runsDir}`, file: dir });
    return dir;
  }

  const emit = (runId: string, items: Array<{ line: number; event: RunEvent }>) => {
    for (const { line, event } of items) for (const listener of [...listeners]) listener({ runId, line, event });
  };

  async function updateMeta(dir: string, patch: Partial<RunMeta>): Promise<void> {
    const meta = (await readRunMeta(dir)) ?? {};
    await writeFileAtomic(join(dir, RUN_META_FILE), JSON.stringify({ ...meta, ...patch }, null, 2));
  }

  /** Runs a CLI job for the run in `dir`, follows its events and finalizes the folder on exit. */
  async function follow(runId: string, dir: string, args: string[]): Promise<void> {
    const tailer = new EventsTailer(join(dir, EVENTS_FILE));
    await tailer.poll(); // skip lines that exist already (resume appends to an old file)
    let job: JobProcess;
    try {
      job = options.launcher.launch({ script: options.cliScript, args, cwd: options.cwd });
    } catch (error) {
      throw new StrataHostError({ code: 'engine', message: `could not start the engine: ${(error as Error).message}` });
    }
    const stderrTail = collectTail(job.stderr, STDERR_TAIL);
    const pump = () => {
      tailer.poll().then((items) => emit(runId, items), () => undefined);
    };
    job.stdout?.on('data', pump);
    const timer = setInterval(pump, pollMs);
    const entry: LiveRun = { job, tailer, timer, stopRequested: false, finished: Promise.resolve() };
    entry.finished = job.exited.then(async ({ code, signal }) => {
      clearInterval(timer);
      emit(runId, await tailer.poll());
      const { lastEvent } = await readEventsFrom(dir, Number.MAX_SAFE_INTEGER); // only the last event
      const ended = lastEvent && (lastEvent.type === 'done' || lastEvent.type === 'error');
      if (!ended) {
        const t = typeof lastEvent?.t === 'number' ? lastEvent.t : 0;
        let final: RunEvent;
        if (entry.stopRequested) final = { type: 'done', t, reason: 'stopped' };
        else if (code === 0) final = { type: 'done', t };
        else {
          const why = signal ? `was killed by ${signal}` : code === null ? 'could not start' : `exited with code ${code}`;
          // The CLI's last line is its one-line error (earlier lines are notes and warnings).
          const detail = stderrTail().trim().split('\n').filter(Boolean).at(-1) ?? '';
          final = { type: 'error', t, message: `engine process ${why}${detail ? `: ${detail}` : ''}`, exit_code: code, signal };
        }
        await appendEvent(dir, final);
        emit(runId, await tailer.poll());
      }
      if (entry.stopRequested) await updateMeta(dir, { stopped: true });
      live.delete(runId);
    });
    live.set(runId, entry);
  }

  async function summary(runId: string, dir: string): Promise<RunSummary | null> {
    const [events, meta] = await Promise.all([
      fs.stat(join(dir, EVENTS_FILE)).catch(() => null),
      fs.stat(join(dir, RUN_META_FILE)).catch(() => null),
    ]);
    if (!events && !meta) return null; // not a run folder
    const isLive = live.has(runId);
    const key = `${events?.size}:${events?.mtimeMs}:${meta?.mtimeMs}:${isLive}`;
    const hit = cache.get(dir);
    if (hit && hit.key === key) return hit.summary;
    const value = await summarizeRun(dir, runId, isLive);
    cache.set(dir, { key, summary: value });
    return value;
  }

  /** Run folder names in runsDir: sub-folders and links to folders (imported runs). */
  async function runFolderNames(): Promise<string[]> {
    const entries = await fs.readdir(options.runsDir, { withFileTypes: true });
    const names: string[] = [];
    for (const entry of entries) {
      if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(entry.name)) continue;
      if (entry.isDirectory()) names.push(entry.name);
      else if (entry.isSymbolicLink() && (await fs.stat(join(options.runsDir, entry.name)).then((s) => s.isDirectory(), () => false))) names.push(entry.name);
    }
    return names;
  }

  /** Links an outside run folder into runsDir (see RunService.importFolder). */
  async function importFolder(path: unknown): Promise<RunHandle> {
    if (typeof path !== 'string' || !path.trim()) throw new StrataHostError({ code: 'bad_request', message: 'runs.importFolder: path must be a non-empty folder path' });
    const given = isAbsolute(path.trim()) ? path.trim() : resolve(options.workspaceDir ?? process.cwd(), path.trim());
    const stat = await fs.stat(given).catch(() => null);
    if (!stat) throw new StrataHostError({ code: 'not_found', message: `${given}: no such folder`, file: given });
    if (!stat.isDirectory()) throw new StrataHostError({ code: 'bad_request', message: `${given}: not a folder (choose the run folder that holds ${EVENTS_FILE})`, file: given });
    if (!(await fs.stat(join(given, EVENTS_FILE)).then((s) => s.isFile(), () => false)))
      throw new StrataHostError({ code: 'bad_request', message: `${given}: not a run folder (it has no ${EVENTS_FILE})`, file: given });
    const real = await fs.realpath(given);
    await fs.mkdir(options.runsDir, { recursive: true });
    const runsReal = await fs.realpath(options.runsDir);
    const names = await runFolderNames();
    if (real.startsWith(runsReal + sep) && !real.slice(runsReal.length + 1).includes(sep) && names.includes(basename(real))) return { runId: basename(real), dir: real };
    for (const name of names) {
      const entry = join(options.runsDir, name);
      if ((await fs.lstat(entry)).isSymbolicLink() && (await fs.realpath(entry).catch(() => null)) === real) return { runId: name, dir: real };
    }
    const base = slug(basename(real)).replace(/^-+/, '') || 'run';
    let runId = base;
    for (let n = 2; names.includes(runId) || (await fs.lstat(join(options.runsDir, runId)).then(() => true, () => false)); n++) runId = `${base}-${n}`;
    try {
      await fs.symlink(real, join(options.runsDir, runId), 'junction');
    } catch (error) {
      throw new StrataHostError({ code: 'io', message: `${options.runsDir}: cannot link ${real} as run '${runId}' (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`, file: real });
    }
    return { runId, dir: real };
  }

  const service: HostRunService = {
    async start(request) {
      if (!request || typeof request !== 'object') throw new StrataHostError({ code: 'bad_request', message: 'runs.start needs a request object' });
      const { kind, device, steps } = request;
      if (!RUN_KINDS.includes(kind)) throw new StrataHostError({ code: 'bad_request', message: `runs.start: kind must be one of ${RUN_KINDS.join(', ')}` });
      if (!DEVICES.includes(device)) throw new StrataHostError({ code: 'bad_request', message: `runs.start: device must be one of ${DEVICES.join(', ')}` });
      if (steps !== undefined && !(Number.isInteger(steps) && steps > 0))
        throw new StrataHostError({ code: 'bad_request', message: `runs.start: steps must be a positive integer, got ${JSON.stringify(steps)}` });
      const { doc } = validateDocument(request.doc, 'run document');
      const asRun: StrataDocument = {
        ...doc,
        pipeline: { ...doc.pipeline, training: { ...doc.pipeline.training, device, ...(steps ? { steps } : {}) } },
      };
      const created = new Date();
      const runId = `${timestamp(created)}-${kind}-${slug(doc.model.name)}-${randomBytes(3).toString('hex')}`;
      const dir = join(options.runsDir, runId);
      await fs.mkdir(dir, { recursive: true });
      const meta: RunMeta = {
        runId,
        name: typeof request.name === 'string' && request.name ? request.name : doc.model.name,
        kind,
        device,
        model: doc.model.name,
        createdAt: created.toISOString(),
        steps: kind === 'train' ? asRun.pipeline.training.steps : null,
      };
      await writeFileAtomic(join(dir, RUN_META_FILE), JSON.stringify(meta, null, 2));
      const docFile = join(dir, DOCUMENT_FILE);
      await writeFileAtomic(docFile, `${JSON.stringify(asRun, null, 2)}\n`);
      await follow(runId, dir, [kind, docFile, '--json', '--run-dir', dir]);
      return { runId, dir } satisfies RunHandle;
    },

    async stop(runId) {
      assertRunId(runId);
      const entry = live.get(runId);
      if (!entry) {
        await requireRunFolder(runId);
        return; // already ended: stopping is idempotent
      }
      entry.stopRequested = true;
      entry.job.interrupt();
      const killer = setTimeout(() => entry.job.kill(), grace);
      try {
        await entry.finished;
      } finally {
        clearTimeout(killer);
      }
    },

    async resume(runId) {
      const dir = await requireRunFolder(runId);
      if (live.has(runId)) throw new StrataHostError({ code: 'conflict', message: `run '${runId}' is still running` });
      const meta = await readRunMeta(dir);
      if (meta?.kind && meta.kind !== 'train') throw new StrataHostError({ code: 'bad_request', message: `run '${runId}' is a ${meta.kind} run; only training runs resume` });
      await updateMeta(dir, { stopped: false });
      await follow(runId, dir, ['resume', dir, '--json']);
      return { runId, dir };
    },

    async list() {
      let valid: string[];
      try {
        valid = await runFolderNames();
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
        throw new StrataHostError({ code: 'io', message: `${options.runsDir}: cannot list runs: ${(error as Error).message}` });
      }
      const out: RunSummary[] = [];
      for (let i = 0; i < valid.length; i += LIST_CONCURRENCY) {
        const batch = await Promise.all(valid.slice(i, i + LIST_CONCURRENCY).map((n) => summary(n, join(options.runsDir, n))));
        for (const s of batch) if (s) out.push(s);
      }
      return out.sort((a, b) => b.createdAt.localeCompare(a.createdAt) || b.runId.localeCompare(a.runId));
    },

    async events(runId, fromLine) {
      const dir = await requireRunFolder(runId);
      if (!Number.isInteger(fromLine) || fromLine < 0)
        throw new StrataHostError({ code: 'bad_request', message: `runs.events: fromLine must be a non-negative integer, got ${JSON.stringify(fromLine)}` });
      const { events, nextLine, lastEvent } = await readEventsFrom(dir, fromLine);
      const status = live.has(runId) ? 'running' : (terminalStatus(lastEvent, await readRunMeta(dir)) ?? 'interrupted');
      return { events, nextLine, status };
    },

    async document(runId) {
      const dir = await requireRunFolder(runId);
      const file = join(dir, DOCUMENT_FILE);
      return validateDocument(await readJsonFile(file), file).doc;
    },

    importFolder,

    onEvent(listener) {
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
      };
    },

    async dispose() {
      await Promise.all([...live.keys()].map((runId) => service.stop(runId)));
    },
  };
  return service;
}
