// The renderer's model of one run, folded from its event stream (electron/contract.ts RunEvent,
// as in events.jsonl): loss/lr/throughput series, evals, profile rows, precision rows, status,
// progress and ETA (from event timestamps, never the wall clock), and CSV export of the metrics.
// Pure; events arrive by line number so pages and live pushes can overlap without duplicates.
// Not the store (runs-store.ts) or any chart.
import type { EvalEvent, ProfileEvent, RunEvent, RunStatus } from '../../electron/contract.js';

export interface EvalPoint {
  step: number;
  loss: number | null;
  ppl: number | null;
  bpb: number | null;
  /** Other numeric fields the evaluation reported (accuracy, ...). */
  extra: Record<string, number>;
}

/** One precision-inspection row: quantization error and underflow share of a GEMM operand. */
export interface PrecisionPoint {
  /** Layer index; -1 for the LM head (and MTP heads), which sit outside the stack. */
  layer: number;
  /** Optimizer step the statistics were gathered at, when reported. */
  step: number | null;
  role: string;
  /** GEMM pass (fprop, dgrad, wgrad) and operand, when reported. */
  pass: string;
  operand: string;
  format: string;
  /** Relative quantization error (|q(x) - x| / |x|, RMS), when reported. */
  error: number | null;
  /** Share of non-zero values flushed to zero, when reported. */
  underflow: number | null;
  amax: number | null;
}

export interface RunData {
  runId: string;
  /** Next events.jsonl line expected; earlier lines were applied. */
  nextLine: number;
  status: RunStatus;
  totalSteps: number | null;
  steps: number[];
  loss: number[];
  lr: number[];
  tokensPerS: number[];
  /** Event time (seconds since start) of each step. */
  stepTime: number[];
  evals: EvalPoint[];
  profile: ProfileEvent[];
  precision: PrecisionPoint[];
  /** The run reported its resolved precision table (a precision event with `table`). */
  precisionTable: boolean;
  logs: string[];
  error: string | null;
  lastT: number;
}

export function emptyRunData(runId: string, status: RunStatus = 'running'): RunData {
  return {
    runId,
    nextLine: 0,
    status,
    totalSteps: null,
    steps: [],
    loss: [],
    lr: [],
    tokensPerS: [],
    stepTime: [],
    evals: [],
    profile: [],
    precision: [],
    precisionTable: false,
    logs: [],
    error: null,
    lastT: 0,
  };
}

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

function evalPoint(e: EvalEvent, fallbackStep: number): EvalPoint {
  const extra: Record<string, number> = {};
  for (const [k, v] of Object.entries(e)) {
    if (['type', 't', 'step', 'loss', 'ppl', 'bpb'].includes(k)) continue;
    const n = num(v);
    if (n !== null) extra[k] = n;
  }
  return { step: num(e.step) ?? fallbackStep, loss: num(e.loss), ppl: num(e.ppl), bpb: num(e.bpb), extra };
}

function precisionPoint(e: RunEvent): PrecisionPoint | null {
  const layer = num(e.layer);
  if (layer === null) return null;
  return {
    layer,
    step: num(e.step),
    role: typeof e.role === 'string' ? e.role : '',
    pass: typeof e.pass === 'string' ? e.pass : '',
    operand: typeof e.operand === 'string' ? e.operand : '',
    format: typeof e.format === 'string' ? e.format : '',
    error: num(e.rel_err),
    underflow: num(e.underflow),
    amax: num(e.amax),
  };
}

/**
 * Applies events that start at line `fromLine`. Lines already applied are skipped; a gap (events
 * after a missing line) is ignored and returns the data unchanged, so the caller refetches.
 * Returns a new object when anything changed (arrays are appended in place).
 */
export function applyEvents(data: RunData, fromLine: number, events: readonly RunEvent[]): RunData {
  if (fromLine > data.nextLine) return data;
  let next: RunData | null = null;
  events.forEach((event, i) => {
    const line = fromLine + i;
    const d: RunData = next ?? { ...data };
    if (line < d.nextLine) return;
    next = d;
    d.nextLine = line + 1;
    d.lastT = Math.max(d.lastT, num(event.t) ?? 0);
    switch (event.type) {
      case 'start':
        d.status = 'running';
        d.totalSteps = num(event.steps) ?? d.totalSteps;
        break;
      case 'step':
        d.steps.push(event.step);
        d.loss.push(event.loss);
        d.lr.push(event.lr);
        d.tokensPerS.push(event.tokens_per_s);
        d.stepTime.push(event.t);
        break;
      case 'eval':
        d.evals.push(evalPoint(event as EvalEvent, d.steps.at(-1) ?? 0));
        break;
      case 'profile':
        d.profile.push(event as ProfileEvent);
        break;
      case 'precision': {
        if (Array.isArray(event.table)) d.precisionTable = true;
        const p = precisionPoint(event);
        if (p) d.precision.push(p);
        break;
      }
      case 'log':
        if (typeof event.message === 'string') d.logs.push(event.message);
        break;
      case 'checkpoint':
        d.logs.push(`checkpoint at step ${num(event.step) ?? '?'}`);
        break;
      case 'done':
        d.status = event.reason === 'stopped' ? 'stopped' : 'done';
        break;
      case 'error':
        d.status = 'error';
        d.error = typeof event.message === 'string' ? event.message : 'engine error';
        break;
    }
  });
  return next ?? data;
}

export interface RunProgress {
  step: number;
  total: number | null;
  /** 0..1 when the planned steps are known. */
  fraction: number | null;
  tokensPerS: number | null;
  /** Seconds left at the recent step rate, when it can be estimated. */
  etaS: number | null;
}

/** Progress, throughput and ETA from the step events (rate over the last up-to-20 steps). */
export function runProgress(data: RunData): RunProgress {
  const n = data.steps.length;
  const step = n ? data.steps[n - 1]! : 0;
  const total = data.totalSteps;
  const fraction = total ? Math.min(1, step / total) : null;
  const tokensPerS = n ? data.tokensPerS[n - 1]! : null;
  let etaS: number | null = null;
  if (total && n >= 2 && data.status === 'running') {
    const first = Math.max(0, n - 21);
    const dt = data.stepTime[n - 1]! - data.stepTime[first]!;
    const ds = data.steps[n - 1]! - data.steps[first]!;
    if (dt > 0 && ds > 0) etaS = Math.max(0, ((total - step) * dt) / ds);
  }
  return { step, total, fraction, tokensPerS, etaS };
}

/** "1h 02m", "3m 05s", "12s". */
export function formatDuration(seconds: number): string {
  const s = Math.round(seconds);
  if (s >= 3600) return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  if (s >= 60) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  return `${s}s`;
}

/** Metrics as CSV: one row per training step, eval columns filled at the steps that have one. */
export function metricsCsv(data: RunData): string {
  const evalByStep = new Map(data.evals.map((e) => [e.step, e]));
  const rows = ['step,t_s,loss,lr,tokens_per_s,eval_loss,eval_ppl,eval_bpb'];
  const cell = (v: number | null | undefined) => (v === null || v === undefined ? '' : String(v));
  const stepSet = new Set(data.steps);
  data.steps.forEach((step, i) => {
    const e = evalByStep.get(step);
    rows.push([step, data.stepTime[i], data.loss[i], data.lr[i], data.tokensPerS[i], e?.loss, e?.ppl, e?.bpb].map(cell).join(','));
  });
  for (const e of data.evals) if (!stepSet.has(e.step)) rows.push([e.step, null, null, null, null, e.loss, e.ppl, e.bpb].map(cell).join(','));
  return rows.join('\n') + '\n';
}
