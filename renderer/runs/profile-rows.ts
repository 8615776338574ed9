// Per-layer times of a profiling run: the measured profile events summed per layer (forward and
// backward milliseconds over the layer's ops) next to the roofline prediction of the analytics for
// the same document, mode, context and batch. Pure. Not the view (ProfileView.tsx).
import type { ProfileEvent } from '../../electron/contract.js';
import { analyzeModel } from '../../engine/spec/analytics/index.js';
import type { StrataDocument } from '../../engine/spec/document.js';

export interface LayerTime {
  layer: number;
  kind: string;
  measuredMs: number;
  predictedMs: number | null;
  /** Measured ops of the layer, e.g. "in_proj 0.12 ms". */
  ops: string[];
}

const ms = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

/**
 * Groups profile rows by layer (rows of the selected `mode` when rows carry a `mode` field).
 * `hardware` names the analytics profile the prediction uses ('cpu' for CPU runs).
 */
export function layerTimes(events: readonly ProfileEvent[], doc: StrataDocument | null, hardware: string, mode?: string): LayerTime[] {
  const rows = events.filter((e) => e.layer >= 0 && (mode === undefined || e.mode === undefined || e.mode === mode));
  const byLayer = new Map<number, LayerTime>();
  for (const e of rows) {
    const t = byLayer.get(e.layer) ?? { layer: e.layer, kind: e.kind, measuredMs: 0, predictedMs: null, ops: [] };
    const total = ms(e.fwd_ms) + ms(e.bwd_ms);
    t.measuredMs += total;
    t.ops.push(`${e.op} ${total.toFixed(3)} ms`);
    byLayer.set(e.layer, t);
  }
  const times = [...byLayer.values()].sort((a, b) => a.layer - b.layer);
  if (doc && times.length) {
    const sample = rows[0]!;
    const context = typeof sample.context === 'number' ? sample.context : doc.pipeline.training.seq_len;
    const batch = typeof sample.batch === 'number' ? sample.batch : doc.pipeline.profiling.batch;
    const hasBackward = rows.some((e) => ms(e.bwd_ms) > 0);
    const which = (mode === 'decode' ? 'decode' : hasBackward || mode === 'train' ? 'train' : 'prefill') as 'decode' | 'train' | 'prefill';
    try {
      const report = analyzeModel(doc.model, { context, batch, hardware });
      const predicted = report.roofline[which].rows;
      for (const t of times) {
        const row = predicted.find((r) => r.index === t.layer);
        if (row) t.predictedMs = row.time_s * 1000;
      }
    } catch {
      // A document the analytics rejects gets measured bars only.
    }
  }
  return times;
}

/** Modes present in profile rows (rows without a mode count as one unnamed mode). */
export function profileModes(events: readonly ProfileEvent[]): string[] {
  const modes = new Set<string>();
  for (const e of events) if (typeof e.mode === 'string') modes.add(e.mode);
  return [...modes];
}
