// Reading run folders (DESIGN.md "Runs and events"): a run is a folder with events.jsonl (one JSON
// event per line, written by the engine), document.json (the document as run), checkpoints/, a log,
// and run.json (written by this host when it starts a run: name, kind, device, planned steps). This
// file derives everything the app shows from those files alone: summaries for the runs list (from
// the head and tail of events.jsonl, cached by size and mtime so listing thousands stays cheap),
// event pages by line number, and an incremental tailer for live runs.
// Not here: starting or stopping processes (runs.ts).
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import {
  RUN_EVENT_TYPES,
  type RunDevice,
  type RunEvent,
  type RunKind,
  type RunStatus,
  type RunSummary,
  StrataHostError,
} from '../contract.js';

export const EVENTS_FILE = 'events.jsonl';
export const DOCUMENT_FILE = 'document.json';
export const RUN_META_FILE = 'run.json';

/** What the host records about a run it started (run.json). All fields optional when read. */
export interface RunMeta {
  runId: string;
  name: string;
  kind: RunKind;
  device: RunDevice;
  model: string;
  createdAt: string;
  steps: number | null;
  /** Set when the user stopped the run. */
  stopped?: boolean;
}

const RUN_ID = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

export function assertRunId(runId: unknown): string {
  if (typeof runId !== 'string' || !RUN_ID.test(runId))
    throw new StrataHostError({ code: 'bad_request', message: `run id ${JSON.stringify(runId)} is not a run folder name` });
  return runId;
}

/** Parses one events.jsonl line; null for blank, malformed or non-event lines. */
export function parseEventLine(line: string): RunEvent | null {
  if (!line.trim()) return null;
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return null;
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) return null;
  const event = value as { type?: unknown; t?: unknown };
  if (!(RUN_EVENT_TYPES as readonly unknown[]).includes(event.type)) return null;
  if (typeof event.t !== 'number') (event as { t: number }).t = 0;
  return value as RunEvent;
}

/**
 * Splits a chunk of events.jsonl into complete lines. A last line without a newline counts only if
 * it parses (an engine may end the file without one; a half-written line never parses).
 */
export function splitCompleteLines(text: string): { lines: string[]; consumed: number } {
  const lines: string[] = [];
  let start = 0;
  for (let nl = text.indexOf('\n', start); nl >= 0; nl = text.indexOf('\n', start)) {
    lines.push(text.slice(start, nl).replace(/\r$/, ''));
    start = nl + 1;
  }
  const rest = text.slice(start);
  if (rest.trim() && parseEventLine(rest)) {
    lines.push(rest);
    start = text.length;
  }
  return { lines, consumed: Buffer.byteLength(text.slice(0, start)) };
}

/** Terminal-event status: done, stopped or error; null while the run has not ended. */
export function terminalStatus(event: RunEvent | null, meta: Partial<RunMeta> | null): RunStatus | null {
  if (!event) return null;
  if (event.type === 'error') return 'error';
  if (event.type === 'done') return event.reason === 'stopped' || event.stopped === true || meta?.stopped ? 'stopped' : 'done';
  return null;
}

async function readText(file: string): Promise<string | null> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}

export async function readRunMeta(dir: string): Promise<Partial<RunMeta> | null> {
  const text = await readText(join(dir, RUN_META_FILE));
  if (text === null) return null;
  try {
    const value = JSON.parse(text) as unknown;
    return value && typeof value === 'object' ? (value as Partial<RunMeta>) : null;
  } catch {
    return null; // a damaged run.json falls back to what events.jsonl and document.json say
  }
}

/** Reads `bytes` from the start and the end of a file (the whole file when it is small). */
async function headAndTail(file: string, bytes: number): Promise<{ head: string; tail: string; whole: boolean; size: number } | null> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(file, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  try {
    const { size } = await handle.stat();
    if (size <= 2 * bytes) {
      const buf = Buffer.alloc(size);
      await handle.read(buf, 0, size, 0);
      const text = buf.toString('utf8');
      return { head: text, tail: text, whole: true, size };
    }
    const head = Buffer.alloc(bytes);
    const tail = Buffer.alloc(bytes);
    await handle.read(head, 0, bytes, 0);
    await handle.read(tail, 0, bytes, size - bytes);
    // Drop the partial first line of the tail window.
    const tailText = tail.toString('utf8');
    return { head: head.toString('utf8'), tail: tailText.slice(tailText.indexOf('\n') + 1), whole: false, size };
  } finally {
    await handle.close();
  }
}

/** Bytes read from each end of events.jsonl for a summary, widened while no step is found. */
const SUMMARY_WINDOWS = [64 * 1024, 1024 * 1024, 16 * 1024 * 1024, Number.MAX_SAFE_INTEGER];

function num(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

/** Builds the summary of one run folder from run.json, document.json and events.jsonl. */
export async function summarizeRun(dir: string, runId: string, live: boolean): Promise<RunSummary> {
  const meta = await readRunMeta(dir);
  let headEvents: Array<RunEvent | null> = [];
  let lastStep: RunEvent | null = null;
  let lastEval: RunEvent | null = null;
  let terminal: RunEvent | null = null;
  let lastT = 0;
  // The tail usually holds the last step; a run whose last steps are followed by many other events
  // (precision inspection, profile rows) is read further back, up to the whole file.
  for (const window of SUMMARY_WINDOWS) {
    const chunk = await headAndTail(join(dir, EVENTS_FILE), window);
    headEvents = chunk ? splitCompleteLines(chunk.head).lines.map(parseEventLine) : [];
    const tailEvents = chunk ? (chunk.whole ? headEvents : splitCompleteLines(chunk.tail).lines.map(parseEventLine)) : [];
    lastStep = lastEval = terminal = null;
    lastT = 0;
    // A resumed run appends a new `start` after its old terminal event: only a terminal event after
    // the last start ends the run.
    let terminalSearchOver = false;
    for (let i = tailEvents.length - 1; i >= 0; i--) {
      const e = tailEvents[i];
      if (!e) continue;
      if (lastT === 0 && e.t > 0) lastT = e.t;
      if (!lastStep && e.type === 'step') lastStep = e;
      if (!lastEval && e.type === 'eval' && num(e.loss) !== null) lastEval = e;
      if (!terminal && !terminalSearchOver && (e.type === 'done' || e.type === 'error')) terminal = e;
      if (e.type === 'start') terminalSearchOver = true;
      if (lastStep && lastEval && (terminal || terminalSearchOver) && lastT) break;
    }
    if (!chunk || chunk.whole || lastStep) break;
  }
  const start = headEvents.find((e) => e?.type === 'start') ?? null;

  // Folders from elsewhere (the native CLI on a GPU box) have no run.json: ask document.json.
  let docModel: string | null = null;
  let docSteps: number | null = null;
  let docDevice: RunDevice | null = null;
  if (!meta?.model || meta.steps === undefined || !meta.device) {
    const text = await readText(join(dir, DOCUMENT_FILE));
    if (text !== null) {
      try {
        const doc = JSON.parse(text) as { model?: { name?: unknown }; pipeline?: { training?: { steps?: unknown; device?: unknown } } };
        docModel = typeof doc.model?.name === 'string' ? doc.model.name : null;
        docSteps = num(doc.pipeline?.training?.steps);
        const device = doc.pipeline?.training?.device;
        docDevice = device === 'cuda' || device === 'cpu' ? device : null;
      } catch {
        /* an unreadable document.json leaves those fields unknown */
      }
    }
  }

  let createdAt = typeof meta?.createdAt === 'string' ? meta.createdAt : null;
  if (!createdAt) {
    const stat = await fs.stat(dir);
    createdAt = new Date(stat.birthtimeMs || stat.mtimeMs).toISOString();
  }
  const ended = terminalStatus(terminal, meta);
  const status: RunStatus = ended ?? (live ? 'running' : 'interrupted');
  const kind = meta?.kind ?? (start?.kind === 'eval' || start?.kind === 'profile' || start?.kind === 'train' ? start.kind : 'train');
  const startDevice = start?.device === 'cuda' || start?.device === 'cpu' ? start.device : null;
  const summary: RunSummary = {
    runId,
    dir,
    name: meta?.name ?? docModel ?? runId,
    kind,
    device: meta?.device ?? startDevice ?? docDevice ?? 'cpu',
    status,
    model: meta?.model ?? docModel ?? (typeof start?.model === 'string' ? start.model : ''),
    createdAt,
    step: num(lastStep?.step) ?? 0,
    totalSteps: num(meta?.steps) ?? num(start?.steps) ?? num(start?.total_steps) ?? docSteps,
    lastLoss: num(lastStep?.loss),
    lastEvalLoss: num(lastEval?.loss),
    tokensPerS: num(lastStep?.tokens_per_s),
    elapsedS: lastT,
  };
  if (terminal?.type === 'error') summary.error = typeof terminal.message === 'string' ? terminal.message : 'the engine reported an error';
  return summary;
}

/** Byte offsets of the complete lines of one events.jsonl, extended as the file grows. */
interface LineIndex {
  /** starts[i] is where line i begins; starts[count] is the end of the last complete line. */
  starts: number[];
  size: number;
}
const lineIndexes = new Map<string, LineIndex>();
const INDEX_CHUNK = 1 << 20;

/** Brings the line index of `file` up to date, reading only bytes it has not seen. */
async function indexLines(handle: fs.FileHandle, file: string): Promise<LineIndex> {
  const { size } = await handle.stat();
  let index = lineIndexes.get(file);
  if (!index || size < index.size) index = { starts: [0], size: 0 }; // new, truncated or replaced
  let scanned = index.starts[index.starts.length - 1]!;
  const buf = Buffer.alloc(INDEX_CHUNK);
  while (scanned < size) {
    const { bytesRead } = await handle.read(buf, 0, Math.min(INDEX_CHUNK, size - scanned), scanned);
    if (bytesRead === 0) break;
    let lastNewline = -1;
    for (let i = buf.indexOf(10, 0); i >= 0 && i < bytesRead; i = buf.indexOf(10, i + 1)) {
      index.starts.push(scanned + i + 1);
      lastNewline = i;
    }
    if (lastNewline < 0 && bytesRead === INDEX_CHUNK) {
      scanned += bytesRead; // one very long line: keep scanning from here
      continue;
    }
    if (lastNewline < 0) break;
    scanned += lastNewline + 1;
  }
  index.size = size;
  lineIndexes.set(file, index);
  return index;
}

async function readRange(handle: fs.FileHandle, from: number, to: number): Promise<string> {
  const buf = Buffer.alloc(Math.max(0, to - from));
  if (buf.length) await handle.read(buf, 0, buf.length, from);
  return buf.toString('utf8');
}

/** Most events one page carries; callers continue from nextLine. */
export const EVENTS_PAGE_LINES = 5000;

/**
 * Events of lines [fromLine, nextLine) of a run's events.jsonl (0-based; every complete line
 * counts, malformed ones are skipped), at most `limit` lines, plus the file's last event. A final
 * line without a newline counts once it parses. Reads only the requested byte range.
 */
export async function readEventsFrom(
  dir: string,
  fromLine: number,
  limit = EVENTS_PAGE_LINES,
): Promise<{ events: RunEvent[]; nextLine: number; lastEvent: RunEvent | null }> {
  const file = join(dir, EVENTS_FILE);
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(file, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { events: [], nextLine: 0, lastEvent: null };
    throw error;
  }
  try {
    const index = await indexLines(handle, file);
    const complete = index.starts.length - 1;
    const endOfLines = index.starts[complete]!;
    const trailing = endOfLines < index.size ? await readRange(handle, endOfLines, index.size) : '';
    const trailingEvent = trailing.trim() ? parseEventLine(trailing) : null;
    const total = complete + (trailingEvent ? 1 : 0);
    const first = Math.min(Math.max(0, fromLine), total);
    const last = Math.min(total, first + limit);
    const events: RunEvent[] = [];
    if (first < Math.min(last, complete)) {
      const text = await readRange(handle, index.starts[first]!, index.starts[Math.min(last, complete)]!);
      for (const line of text.split('\n')) {
        const event = parseEventLine(line.replace(/\r$/, ''));
        if (event) events.push(event);
      }
    }
    if (trailingEvent && first <= complete && complete < last) events.push(trailingEvent); // its line number is `complete`
    let lastEvent = trailingEvent;
    for (let i = complete - 1; i >= 0 && !lastEvent; i--) lastEvent = parseEventLine((await readRange(handle, index.starts[i]!, index.starts[i + 1]!)).trim());
    return { events, nextLine: last, lastEvent };
  } finally {
    await handle.close();
  }
}

/**
 * Follows a growing events.jsonl: each `poll()` returns the complete lines added since the last
 * one, numbered like readEventsFrom.
 */
export class EventsTailer {
  private offset = 0;
  private line = 0;
  private reading: Promise<Array<{ line: number; event: RunEvent }>> | null = null;

  constructor(private readonly file: string) {}

  poll(): Promise<Array<{ line: number; event: RunEvent }>> {
    // Serialize reads so two pollers never return the same lines twice.
    const next = (this.reading ?? Promise.resolve([])).then(() => this.readNew());
    this.reading = next;
    return next;
  }

  private async readNew(): Promise<Array<{ line: number; event: RunEvent }>> {
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(this.file, 'r');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
    try {
      const { size } = await handle.stat();
      if (size <= this.offset) return [];
      const buf = Buffer.alloc(size - this.offset);
      await handle.read(buf, 0, buf.length, this.offset);
      const { lines, consumed } = splitCompleteLines(buf.toString('utf8'));
      this.offset += consumed;
      const out: Array<{ line: number; event: RunEvent }> = [];
      for (const text of lines) {
        const event = parseEventLine(text);
        if (event) out.push({ line: this.line, event });
        this.line++;
      }
      return out;
    } finally {
      await handle.close();
    }
  }
}

/** Appends one event line (used by the host only after the engine process has exited). */
export async function appendEvent(dir: string, event: RunEvent): Promise<void> {
  const file = join(dir, EVENTS_FILE);
  const existing = await readText(file);
  const needsNewline = existing !== null && existing.length > 0 && !existing.endsWith('\n');
  await fs.appendFile(file, `${needsNewline ? '\n' : ''}${JSON.stringify(event)}\n`);
}
