// The analytics of the design in the editor, computed by engine/spec/analytics analyzeModel and
// memoized per (model object, context, hardware): every panel that reads it after an edit shares
// one computation, and panels of unchanged designs cost nothing. A model the analytics cannot
// handle (mid-edit invalid values) yields the error sentence instead of a report.
// Not here: any rendering (panels/AnalyticsPanel.tsx) or the figures' conventions.
import { type AnalysisReport, analyzeModel } from '../../engine/spec/analytics/index.js';
import type { ModelSpec } from '../../engine/spec/document.js';
import { precisionOf } from './selectors.js';

export type AnalysisResult = { ok: true; report: AnalysisReport } | { ok: false; error: string };

const cache = new WeakMap<ModelSpec, Map<string, AnalysisResult>>();

export function analysisOf(model: ModelSpec, context: number, hardware: string): AnalysisResult {
  let byOptions = cache.get(model);
  if (!byOptions) {
    byOptions = new Map();
    cache.set(model, byOptions);
  }
  const key = `${context}|${hardware}`;
  let result = byOptions.get(key);
  if (!result) {
    try {
      result = { ok: true, report: analyzeModel(model, { context, hardware, precision: precisionOf(model) }) };
    } catch (error) {
      result = { ok: false, error: error instanceof Error ? error.message : String(error) };
    }
    byOptions.set(key, result);
  }
  return result;
}
