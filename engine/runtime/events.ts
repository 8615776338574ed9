// The JSON events every engine job streams (one object per line in the run folder's events.jsonl,
// on the CLI's --json output and to the app): a `type` and `t` (seconds since the job started),
// plus per-type fields. This is the TypeScript view of the contract the native engine writes;
// unknown fields are kept, unknown types are passed through as `EngineEvent` with their raw fields.
//
// Not here: reading run folders (runs.ts) or starting jobs (engine.ts).

export const EVENT_TYPES = ['start', 'step', 'eval', 'profile', 'precision', 'checkpoint', 'log', 'done', 'error'] as const;
export type EventType = (typeof EVENT_TYPES)[number];

interface EventBase {
  type: string;
  /** Seconds since the job started. */
  t: number;
  [field: string]: unknown;
}

export interface StartEvent extends EventBase {
  type: 'start';
  job?: string;
  steps?: number;
  params?: number;
}
export interface StepEvent extends EventBase {
  type: 'step';
  step: number;
  loss: number;
  lr: number;
  tokens_per_s: number;
  grad_norm?: number;
}
export interface EvalEvent extends EventBase {
  type: 'eval';
  step?: number;
  loss: number;
  ppl?: number;
  bpb?: number | null;
  accuracy?: number | null;
}
export interface ProfileEvent extends EventBase {
  type: 'profile';
  layer: number;
  kind: string;
  op: string;
  fwd_ms?: number;
  bwd_ms?: number;
  flops?: number;
  bytes?: number;
}
export interface CheckpointEvent extends EventBase {
  type: 'checkpoint';
  step: number;
  path: string;
}
export interface LogEvent extends EventBase {
  type: 'log';
  message: string;
  level?: string;
}
export interface DoneEvent extends EventBase {
  type: 'done';
  /** 'stopped' when the job was cancelled before finishing, 'error' when it stopped on one (e.g. NaN). */
  reason?: string;
}
export interface ErrorEvent extends EventBase {
  type: 'error';
  message: string;
}

export type EngineEvent =
  | StartEvent
  | StepEvent
  | EvalEvent
  | ProfileEvent
  | CheckpointEvent
  | LogEvent
  | DoneEvent
  | ErrorEvent
  | (EventBase & { type: 'precision' });

/** Parses one events.jsonl line; returns null for a blank line and throws naming `where` otherwise. */
export function parseEventLine(line: string, where: string): EngineEvent | null {
  if (!line.trim()) return null;
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (error) {
    throw new Error(`${where}: not a JSON event (${(error as Error).message})`);
  }
  if (!value || typeof value !== 'object' || typeof (value as { type?: unknown }).type !== 'string')
    throw new Error(`${where}: event has no "type" field`);
  const event = value as EngineEvent;
  if (typeof event.t !== 'number') (event as EventBase).t = 0;
  return event;
}

/** Human one-liner of an event for logs and terminals. */
export function describeEvent(event: EngineEvent): string {
  switch (event.type) {
    case 'step': {
      const e = event as StepEvent;
      return `step ${e.step} loss ${e.loss.toFixed(4)} lr ${e.lr.toExponential(2)} ${Math.round(e.tokens_per_s)} tok/s`;
    }
    case 'eval': {
      const e = event as EvalEvent;
      const parts = [`eval loss ${e.loss.toFixed(4)}`];
      if (typeof e.ppl === 'number') parts.push(`ppl ${e.ppl.toFixed(2)}`);
      if (typeof e.bpb === 'number') parts.push(`bpb ${e.bpb.toFixed(4)}`);
      if (typeof e.accuracy === 'number') parts.push(`accuracy ${(e.accuracy * 100).toFixed(1)}%`);
      return parts.join(' ');
    }
    case 'checkpoint':
      return `checkpoint at step ${(event as CheckpointEvent).step}: ${(event as CheckpointEvent).path}`;
    case 'log':
      return (event as LogEvent).message;
    case 'error':
      return `error: ${(event as ErrorEvent).message}`;
    case 'done':
      return (event as DoneEvent).reason === 'stopped' ? 'stopped' : (event as DoneEvent).reason === 'error' ? 'stopped on an error' : 'done';
    default:
      return `${event.type} ${JSON.stringify(event)}`;
  }
}
