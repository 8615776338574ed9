// Runs one engine job for a command-line tool: prints its events (JSON lines with --json, else a
// progress bar for steps and one line per other event), cancels it cleanly on Ctrl-C (SIGINT) or
// SIGTERM, and records a final `error` event in the run folder when the engine failed without
// writing one itself, so the folder always tells how the job ended.
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
  /** Run folder whose events.jsonl gets a final error event if the engine could not write one. */
  runDir?: string;
  /** Signal source, replaceable in tests. */
  signals?: Pick<NodeJS.Process, 'on' | 'off'>;
}

export interface JobOutcome<Result> {
  result: Result | null;
  error: Error | null;
  cancelled: boolean;
  events: EngineEvent[];
}

/** Creates the onEvent handler and output state for a job about to start. */
export function eventPrinter(out: JobOutput, options: RunJobOptions): { onEvent: (event: EngineEvent) => void; finish: () => void; events: EngineEvent[] } {
  const events: EngineEvent[] = [];
  let firstStep: { step: number; t: number } | null = null;
  let barShown = false;
  let lastPrintedAt = -Infinity;
  const endBar = () => {
    if (barShown && out.isTTY) out.stdout('\n');
    barShown = false;
  };
  const onEvent = (event: EngineEvent) => {
    events.push(event);
    if (options.json) {
      out.stdout(`${JSON.stringify(event)}\n`);
      return;
    }
    if (event.type === 'step') {
      const step = event as StepEvent;
      firstStep ??= { step: step.step, t: step.t };
      const line = progressLine(step, options.totalSteps ?? step.step, firstStep);
      if (out.isTTY) {
        out.stdout(`\r${line}\x1b[K`);
        barShown = true;
      } else if (step.t - lastPrintedAt >= 5 || step.step === options.totalSteps || step.step === firstStep.step) {
        out.stdout(`${line}\n`);
        lastPrintedAt = step.t;
      }
      return;
    }
    // Per-tensor precision statistics and profile rows are for the app and --json, not the terminal.
    if (event.type === 'start' || event.type === 'precision' || event.type === 'profile') return;
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
  if (error && options.runDir && !printer.events.some((e) => e.type === 'error')) {
    const last = printer.events[printer.events.length - 1];
    const event = { type: 'error', t: last?.t ?? 0, message: error.message };
    const path = join(options.runDir, RUN_FILES.events);
    if (existsSync(options.runDir)) appendFileSync(path, `${JSON.stringify(event)}\n`);
    if (options.json) out.stdout(`${JSON.stringify(event)}\n`);
  }
  return { result, error, cancelled, events: printer.events };
}
