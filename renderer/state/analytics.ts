// The analytics of the design in the editor (engine/spec/analytics analyzeModel), memoized per
// (model object, context, hardware). In a browser window the analysis runs in a Web Worker
// (analytics-worker.ts) so edits of large designs paint at once and the figures follow when ready
// (the previous figures stay on screen meanwhile); where Worker is unavailable (tests) or fails to
// start, it is computed synchronously. A model the analytics rejects yields the error sentence.
// Not here: any rendering (panels/AnalyticsPanel.tsx) or the figures' conventions.
import { useEffect, useReducer, useRef } from 'react';
import { type AnalysisReport, analyzeModel } from '../../engine/spec/analytics/index.js';
import type { ModelSpec } from '../../engine/spec/document.js';
import type { AnalysisRequest, AnalysisResponse } from './analytics-worker.js';
import { precisionOf } from './selectors.js';

export type AnalysisResult = { ok: true; report: AnalysisReport } | { ok: false; error: string };

const cache = new WeakMap<ModelSpec, Map<string, AnalysisResult>>();
const keyOf = (context: number, hardware: string) => `${context}|${hardware}`;

function cached(model: ModelSpec, context: number, hardware: string): AnalysisResult | undefined {
  return cache.get(model)?.get(keyOf(context, hardware));
}

function store(model: ModelSpec, context: number, hardware: string, result: AnalysisResult): void {
  let byOptions = cache.get(model);
  if (!byOptions) {
    byOptions = new Map();
    cache.set(model, byOptions);
  }
  byOptions.set(keyOf(context, hardware), result);
}

/** The analysis, computed on this thread when not cached. */
export function analysisOf(model: ModelSpec, context: number, hardware: string): AnalysisResult {
  let result = cached(model, context, hardware);
  if (!result) {
    try {
      result = { ok: true, report: analyzeModel(model, { context, hardware, precision: precisionOf(model) }) };
    } catch (error) {
      result = { ok: false, error: error instanceof Error ? error.message : String(error) };
    }
    store(model, context, hardware, result);
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// Worker
// ---------------------------------------------------------------------------------------------

interface Pending {
  model: ModelSpec;
  context: number;
  hardware: string;
  done: () => void;
}

let worker: Worker | null = null;
let workerBroken = typeof Worker === 'undefined';
let nextId = 1;
const pending = new Map<number, Pending>();

function failOver(): void {
  workerBroken = true;
  worker?.terminate();
  worker = null;
  for (const p of pending.values()) {
    analysisOf(p.model, p.context, p.hardware);
    p.done();
  }
  pending.clear();
}

function getWorker(): Worker | null {
  if (workerBroken) return null;
  if (!worker) {
    try {
      worker = new Worker(new URL('./analytics-worker.ts', import.meta.url), { type: 'module' });
    } catch {
      failOver();
      return null;
    }
    worker.onmessage = (event: MessageEvent<AnalysisResponse>) => {
      const p = pending.get(event.data.id);
      if (!p) return;
      pending.delete(event.data.id);
      store(p.model, p.context, p.hardware, event.data.result);
      p.done();
    };
    worker.onerror = () => failOver();
  }
  return worker;
}

/** Asks the worker for an analysis; `done` runs once it is cached (or computed here on failure). */
function request(model: ModelSpec, context: number, hardware: string, done: () => void): void {
  const w = getWorker();
  if (!w) {
    analysisOf(model, context, hardware);
    done();
    return;
  }
  for (const p of pending.values()) {
    if (p.model === model && p.context === context && p.hardware === hardware) {
      const previous = p.done;
      p.done = () => {
        previous();
        done();
      };
      return;
    }
  }
  const id = nextId++;
  pending.set(id, { model, context, hardware, done });
  const message: AnalysisRequest = { id, model, context, hardware };
  w.postMessage(message);
}

/**
 * The analysis for a component: the current one when ready, else the last one this component
 * showed (marked stale) while the worker computes. Synchronous where no worker runs.
 */
export function useAnalysis(model: ModelSpec, context: number, hardware: string): { result: AnalysisResult | null; stale: boolean } {
  const [, rerender] = useReducer((n: number) => n + 1, 0);
  const last = useRef<AnalysisResult | null>(null);
  const ready = workerBroken ? analysisOf(model, context, hardware) : cached(model, context, hardware);
  useEffect(() => {
    if (ready) return;
    let active = true;
    request(model, context, hardware, () => {
      if (active) rerender();
    });
    return () => {
      active = false;
    };
  }, [model, context, hardware, ready]);
  if (ready) last.current = ready;
  return { result: ready ?? last.current, stale: !ready };
}
