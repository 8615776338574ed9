// The analytics Web Worker: runs engine/spec/analytics analyzeModel off the UI thread (a 100+
// layer design takes tens of milliseconds, more than a frame). Receives {id, model, context,
// hardware}, answers {id, result}. Started by state/analytics.ts; not used where Worker is absent.
import '../zod-jitless.js';
import { analyzeModel } from '../../engine/spec/analytics/index.js';
import type { ModelSpec } from '../../engine/spec/document.js';
import type { AnalysisResult } from './analytics.js';

export interface AnalysisRequest {
  id: number;
  model: ModelSpec;
  context: number;
  hardware: string;
}

export interface AnalysisResponse {
  id: number;
  result: AnalysisResult;
}

self.onmessage = (event: MessageEvent<AnalysisRequest>) => {
  const { id, model, context, hardware } = event.data;
  let result: AnalysisResult;
  try {
    result = { ok: true, report: analyzeModel(model, { context, hardware }) };
  } catch (error) {
    result = { ok: false, error: error instanceof Error ? error.message : String(error) };
  }
  const response: AnalysisResponse = { id, result };
  self.postMessage(response);
};
