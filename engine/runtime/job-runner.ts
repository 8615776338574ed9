// Runs one engine job for a command-line tool: prints its events (JSON lines with --json, else a
// progress bar for steps and one line per other event), keeps the run folder's human-readable
// log.txt (the same lines; the engine itself adds its log and error events there), cancels the job
// cleanly on Ctrl-C (SIGINT) or SIGTERM or when its reader goes away (EPIPE on stdout, e.g. `| head`
// or a closed pipe to the app: training then stops at a checkpoint instead of the process dying),
// and records a final `error` event in the run folder when the engine failed without writing one
// itself, so the folder always tells how the job ended.
//
// Not here: building requests (the CLI commands) or the binding (engine.ts).
import { appendFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import type { EngineJob } from './engine.js';
import { describeEvent, type EngineEvent, type StepEvent } from './events.js';
import { progressLine } from './progress.js';
import { RUN_FILES } from './runs.js';

export interface JobOutput {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  isTTY: boolean;
}

export interface RunJobOptions {
  /** Print events as JSON lines (exactly the engine's events) instead of human output. */
  json: boolean;
  /** Planned steps, for the progress bar of training jobs. */
  totalSteps?: number;
  /**
   * Run folder whose events.jsonl gets a final error event if the engine could not write one, and
   * whose log.txt gets the printed lines (given to eventPrinter).
   */
  runDir?: string;
  /** Signal source, replaceable in tests. */
  signals?: Pick<NodeJS.Process, 'on' | 'off'>;
  /** Output streams whose write errors (a closed reader) stop the job; default stdout and stderr. */
  outputStreams?: Pick<NodeJS.WriteStream, 'on' | 'off'>[];
}

export interface JobOutcome<Result> {
  result: Result | null;
  error: Error | null;
  cancelled: boolean;
  events: EngineEvent[];
}

/** Seconds between two step lines in log.txt and in non-terminal output. */
const STEP_LINE_INTERVAL_S = 5;

/** Appends `[t s] text` to the run's log.txt (the engine's own format for its lines there). */
function appendRunLog(runDir: string, t: number, text: string): void {
  if (existsSync(runDir)) appendFileSync(join(runDir, RUN_FILES.log), `[${Number(t.toFixed(3))}s] ${text}\n`);
}

/**
 * Records a job that failed before the engine started (e.g. its data could not be prepared) in its
 * run folder: an `error` event in events.jsonl and the message in log.txt, so the folder tells how
 * the job ended instead of looking interrupted.
 */
export function recordRunError(runDir: string, message: string): void {
  if (!existsSync(runDir)) return;
  appendFileSync(join(runDir, RUN_FILES.events), `${JSON.stringify({ type: 'error', t: 0, message })}\n`);
  appendFileSync(join(runDir, RUN_FILES.log), `error: ${message}\n`);
}

/** True when a training job ended on an error the engine reported as an event (e.g. a NaN stop). */
export function stoppedOnError(outcome: JobOutcome<unknown>): boolean {
  return outcome.events.some((e) => e.type === 'done' && e.reason === 'error');
}

/**
 * Prints a failed job's error once, as one line: the engine's `error` event was already printed
 * when it sent one (and --json output already carries it), else `strata: COMMAND: message`.
 */
export function reportJobError(command: string, outcome: JobOutcome<unknown>, out: JobOutput, json: boolean): void {
  if (json || !outcome.error || outcome.events.some((e) => e.type === 'error')) return;
  out.stderr(`strata: ${command}: ${outcome.error.message}\n`);
}

/** Creates the onEvent handler and output state for a job about to start. */
export function eventPrinter(out: JobOutput, options: RunJobOptions): { onEvent: (event: EngineEvent) => void; finish: () => void; events: EngineEvent[] } {
  const events: EngineEvent[] = [];
  let firstStep: { step: number; t: number } | null = null;
  let barShown = false;
  let lastPrintedAt = -Infinity;
  let lastLoggedAt = -Infinity;
  const runDir = options.runDir;
  const endBar = () => {
    if (barShown && out.isTTY) out.stdout('\n');
    barShown = false;
  };
  // log.txt: the human lines, except the engine's own log and error events (it writes those there).
  const log = (event: EngineEvent) => {
    if (!runDir || event.type === 'log' || event.type === 'error' || event.type === 'precision' || event.type === 'profile') return;
    if (event.type === 'step') {
      const step = event as StepEvent;
      if (step.t - lastLoggedAt < STEP_LINE_INTERVAL_S && step.step !== options.totalSteps && step.step !== firstStep?.step) return;
      lastLoggedAt = step.t;
    }
    appendRunLog(runDir, event.t, describeEvent(event));
  };
  const onEvent = (event: EngineEvent) => {
    events.push(event);
    if (event.type === 'step') firstStep ??= { step: (event as StepEvent).step, t: event.t };
    log(event);
    if (options.json) {
      out.stdout(`${JSON.stringify(event)}\n`);
      return;
    }
    if (event.type === 'step') {
      const step = event as StepEvent;
      const line = progressLine(step, options.totalSteps ?? step.step, firstStep);
      if (out.isTTY) {
        out.stdout(`\r${line}\x1b[K`);
        barShown = true;
      } else if (step.t - lastPrintedAt >= STEP_LINE_INTERVAL_S || step.step === options.totalSteps || step.step === firstStep!.step) {
        out.stdout(`${line}\n`);
        lastPrintedAt = step.t;
      }
      return;
    }
    // Per-tensor precision statistics and profile rows are for the app and --json, not the terminal;
    // a normal end is told by the command itself (e.g. `done: RUN`), a stop or error end is printed.
    if (event.type === 'start' || event.type === 'precision' || event.type === 'profile') return;
    if (event.type === 'done' && event.reason !== 'stopped' && event.reason !== 'error') return;
    endBar();
    const text = describeEvent(event);
    if (event.type === 'error') out.stderr(`${text}\n`);
    else out.stdout(`${text}\n`);
  };
  return { onEvent, finish: endBar, events };
}

/** Waits for a started job with Ctrl-C wired to cancel(); never throws (the outcome carries the error). */
export async function superviseJob<Result>(
  job: EngineJob<Result>,
  printer: ReturnType<typeof eventPrinter>,
  out: JobOutput,
  options: RunJobOptions,
): Promise<JobOutcome<Result>> {
  const signals = options.signals ?? process;
  let cancelled = false;
  const onSignal = () => {
    if (!cancelled) {
      cancelled = true;
      printer.finish();
      if (!options.json) out.stderr('stopping (waiting for the engine to finish its step)...\n');
    }
    job.cancel();
  };
  signals.on('SIGINT', onSignal);
  signals.on('SIGTERM', onSignal);
  // A reader that went away makes every later write fail: nothing more can be shown, so the job
  // stops as on Ctrl-C (the run folder still records everything) and the error is not rethrown.
  const streams = options.outputStreams ?? [process.stdout, process.stderr];
  const onOutputError = () => {
    cancelled = true;
    job.cancel();
  };
  for (const stream of streams) stream.on('error', onOutputError);
  let result: Result | null = null;
  let error: Error | null = null;
  try {
    result = await job.result;
  } catch (e) {
    error = e instanceof Error ? e : new Error(String(e));
  } finally {
    signals.off('SIGINT', onSignal);
    signals.off('SIGTERM', onSignal);
    printer.finish();
  }
  // Listeners stay for the rest of the process: writes after the job (its summary line) may fail too.
  if (!cancelled) for (const stream of streams) stream.off('error', onOutputError);
  if (error && options.runDir && !printer.events.some((e) => e.type === 'error')) {
    const last = printer.events[printer.events.length - 1];
    const event = { type: 'error', t: last?.t ?? 0, message: error.message };
    if (existsSync(options.runDir)) {
      appendFileSync(join(options.runDir, RUN_FILES.events), `${JSON.stringify(event)}\n`);
      appendFileSync(join(options.runDir, RUN_FILES.log), `error: ${error.message}\n`);
    }
    if (options.json) out.stdout(`${JSON.stringify(event)}\n`);
  }
  return { result, error, cancelled, events: printer.events };
}
