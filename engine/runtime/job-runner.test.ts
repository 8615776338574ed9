// Tests of the CLI job supervisor and progress line: JSON output is exactly the events, the bar
// shows step/loss/rate/ETA, Ctrl-C cancels the job, and an engine failure without its own error
// event leaves one in the run folder. The job here is a hand-driven EngineJob (the supervisor is
// what is under test; the native engine has its own tests).
import { EventEmitter } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { EngineJob } from './engine.js';
import type { StepEvent } from './events.js';
import { eventPrinter, recordRunError, reportJobError, stoppedOnError, superviseJob } from './job-runner.js';
import { summarizeRun } from './runs.js';
import { formatDuration, formatRate, progressLine } from './progress.js';

function capture(isTTY = false) {
  const out: string[] = [];
  const err: string[] = [];
  return { stdout: (t: string) => out.push(t), stderr: (t: string) => err.push(t), isTTY, out, err };
}

function manualJob<R>() {
  let resolve!: (value: R) => void;
  let reject!: (error: Error) => void;
  const result = new Promise<R>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  let cancels = 0;
  const job: EngineJob<R> = { cancel: () => void cancels++, result };
  return { job, resolve, reject, cancels: () => cancels };
}

const step = (n: number, t: number): StepEvent => ({ type: 'step', t, step: n, loss: 4 / n, lr: 1e-3, tokens_per_s: 12345 });

describe('progress line', () => {
  it('formats durations and rates', () => {
    expect(formatDuration(65)).toBe('1:05');
    expect(formatDuration(3723)).toBe('1:02:03');
    expect(formatRate(950)).toBe('950');
    expect(formatRate(12345)).toBe('12.3k');
    expect(formatRate(4_560_000)).toBe('4.56M');
  });
  it('shows step, bar, loss, rate and an ETA from the average step time', () => {
    const line = progressLine(step(50, 11), 100, { step: 1, t: 1.2 }, 10);
    expect(line).toBe('step  50/100 [====>     ] loss 0.0800 | 12.3k tok/s | ETA 0:10');
  });
});

describe('superviseJob', () => {
  it('prints exactly the events as JSON lines with --json', async () => {
    const io = capture();
    const printer = eventPrinter(io, { json: true, totalSteps: 2 });
    const { job, resolve } = manualJob<{ steps_done: number }>();
    const done = superviseJob(job, printer, io, { json: true, signals: new EventEmitter() as never });
    printer.onEvent({ type: 'start', t: 0 });
    printer.onEvent(step(1, 0.5));
    printer.onEvent({ type: 'done', t: 1 });
    resolve({ steps_done: 1 });
    const outcome = await done;
    expect(outcome.result).toEqual({ steps_done: 1 });
    expect(io.out.join('').trim().split('\n').map((l) => JSON.parse(l).type)).toEqual(['start', 'step', 'done']);
  });

  it('redraws the bar on a terminal and prints other events on their own line', async () => {
    const io = capture(true);
    const printer = eventPrinter(io, { json: false, totalSteps: 4 });
    const { job, resolve } = manualJob<object>();
    const done = superviseJob(job, printer, io, { json: false, signals: new EventEmitter() as never });
    printer.onEvent(step(1, 1));
    printer.onEvent(step(2, 2));
    printer.onEvent({ type: 'eval', t: 2.5, loss: 1.5, ppl: 4.48, bpb: 2.16 });
    printer.onEvent({ type: 'done', t: 3, reason: 'finished' });
    resolve({});
    await done;
    const text = io.out.join('');
    expect(text).toContain('\rstep 2/4 [');
    expect(text.endsWith('\neval loss 1.5000 ppl 4.48 bpb 2.1600\n')).toBe(true);
    printer.onEvent({ type: 'done', t: 4, reason: 'error' });
    expect(io.out.at(-1)).toBe('stopped on an error\n');
  });

  it('cancels the job on SIGINT and reports it', async () => {
    const io = capture();
    const signals = new EventEmitter();
    const printer = eventPrinter(io, { json: false, totalSteps: 10 });
    const manual = manualJob<object>();
    const done = superviseJob(manual.job, printer, io, { json: false, signals: signals as never });
    signals.emit('SIGINT');
    expect(manual.cancels()).toBe(1);
    manual.resolve({ cancelled: true });
    const outcome = await done;
    expect(outcome.cancelled).toBe(true);
    expect(io.err.join('')).toMatch(/stopping/);
    expect(signals.listenerCount('SIGINT')).toBe(0);
  });

  it('appends an error event to the run folder when the engine failed silently', async () => {
    const runDir = mkdtempSync(join(tmpdir(), 'strata-job-'));
    writeFileSync(join(runDir, 'events.jsonl'), '{"type":"start","t":0}\n');
    const io = capture();
    const printer = eventPrinter(io, { json: false });
    const manual = manualJob<object>();
    const done = superviseJob(manual.job, printer, io, { json: false, runDir, signals: new EventEmitter() as never });
    printer.onEvent({ type: 'start', t: 0.25 });
    manual.reject(new Error('layer 2 (moe): top_k 9 exceeds experts 8'));
    const outcome = await done;
    expect(outcome.error?.message).toMatch(/top_k 9/);
    const lines = readFileSync(join(runDir, 'events.jsonl'), 'utf8').trim().split('\n');
    expect(JSON.parse(lines[1]!)).toEqual({ type: 'error', t: 0.25, message: 'layer 2 (moe): top_k 9 exceeds experts 8' });
  });

  it('keeps the run log: start, throttled steps, eval, checkpoint and done lines, not the engine lines', async () => {
    const runDir = mkdtempSync(join(tmpdir(), 'strata-job-'));
    const io = capture();
    const printer = eventPrinter(io, { json: true, totalSteps: 4, runDir });
    const manual = manualJob<object>();
    const done = superviseJob(manual.job, printer, io, { json: true, runDir, signals: new EventEmitter() as never });
    printer.onEvent({ type: 'start', t: 0, job: 'train' });
    for (const [n, t] of [[1, 1], [2, 2], [3, 7], [4, 8]] as const) printer.onEvent(step(n, t));
    printer.onEvent({ type: 'log', t: 8, message: 'engine line' });
    printer.onEvent({ type: 'eval', t: 9, loss: 1.5 });
    printer.onEvent({ type: 'checkpoint', t: 9.5, step: 4, path: 'checkpoints/step_000004' });
    printer.onEvent({ type: 'done', t: 10, reason: 'finished' });
    manual.resolve({});
    await done;
    const log = readFileSync(join(runDir, 'log.txt'), 'utf8').trim().split('\n');
    expect(log.map((l) => l.replace(/ .*/, ''))).toEqual(['[0s]', '[1s]', '[7s]', '[8s]', '[9s]', '[9.5s]', '[10s]']);
    expect(log[1]).toBe('[1s] step 1 loss 4.0000 lr 1.00e-3 12345 tok/s');
    expect(log.at(-1)).toBe('[10s] done');
    expect(log.join('\n')).not.toContain('engine line');
  });

  it('reports a failure once: not again after the engine printed its own error event', async () => {
    const io = capture();
    const printer = eventPrinter(io, { json: false });
    const manual = manualJob<object>();
    const done = superviseJob(manual.job, printer, io, { json: false, signals: new EventEmitter() as never });
    printer.onEvent({ type: 'error', t: 0.1, message: 'ckpt/model.safetensors: truncated or corrupt file' });
    manual.reject(new Error('ckpt/model.safetensors: truncated or corrupt file'));
    const outcome = await done;
    reportJobError('eval', outcome, io, false);
    expect(io.err).toEqual(['error: ckpt/model.safetensors: truncated or corrupt file\n']);
    const silent = { ...outcome, events: [] };
    reportJobError('eval', silent, io, false);
    expect(io.err.at(-1)).toBe('strata: eval: ckpt/model.safetensors: truncated or corrupt file\n');
  });

  it('tells a run that stopped on an error (NaN) from a finished one', () => {
    const base = { result: {}, error: null, cancelled: false };
    expect(stoppedOnError({ ...base, events: [{ type: 'done', t: 1, reason: 'error' }] })).toBe(true);
    expect(stoppedOnError({ ...base, events: [{ type: 'done', t: 1, reason: 'finished' }] })).toBe(false);
  });

  it('records a job that failed before the engine started in its run folder', () => {
    const runDir = mkdtempSync(join(tmpdir(), 'strata-job-'));
    writeFileSync(join(runDir, 'run.json'), JSON.stringify({ runId: 'r1', kind: 'train', name: 'r1', model: 'm', device: 'cpu', createdAt: '2024-01-01T00:00:00Z', steps: 3 }));
    recordRunError(runDir, 'doc.json: dataset (file nope.txt): file not found');
    expect(summarizeRun(runDir)).toMatchObject({ status: 'error', error: 'doc.json: dataset (file nope.txt): file not found' });
    expect(readFileSync(join(runDir, 'log.txt'), 'utf8')).toBe('error: doc.json: dataset (file nope.txt): file not found\n');
    recordRunError(join(runDir, 'missing'), 'x');
    expect(existsSync(join(runDir, 'missing'))).toBe(false);
  });

  it('stops the job when the reader of its output goes away (EPIPE) instead of crashing', async () => {
    const io = capture();
    const stdout = new EventEmitter();
    const printer = eventPrinter(io, { json: true, totalSteps: 10 });
    const manual = manualJob<object>();
    const done = superviseJob(manual.job, printer, io, { json: true, signals: new EventEmitter() as never, outputStreams: [stdout as never] });
    stdout.emit('error', Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
    expect(manual.cancels()).toBe(1);
    manual.resolve({ cancelled: true });
    const outcome = await done;
    expect(outcome.cancelled).toBe(true);
    // Later writes may fail too: the listener stays so they never become an unhandled 'error'.
    expect(stdout.listenerCount('error')).toBe(1);
  });
});
