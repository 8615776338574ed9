// The analytics' prediction beside the engine's measured profile rows: for each (mode, context)
// the roofline estimate of the same design on a hardware profile (engine/spec/analytics/roofline.ts)
// is computed once, and every `profile` event the engine emits gets the predicted numbers added:
//   per-layer rows (op "block"): predicted_ms, the layer's roofline time for the same step
//     (forward for prefill/decode, forward + backward for train: compare with fwd_ms + bwd_ms);
//   total rows (op "total"): predicted_ms, predicted_tokens_per_s, hardware; for decode also
//     predicted_bytes, the KV cache + Mamba state the analytics count for `batch` sequences
//     (fp32, as the CPU engine keeps them), beside the measured decode-state bytes (state_bytes).
// Measured fields are never changed. The CPU engine runs in fp32, so on the `cpu` profile every
// format runs at the fp32 rate (hardware.ts).
//
// Not here: the estimates themselves (spec/analytics), measuring (native engine), printing (cli/commands/profile.ts).
import type { StrataDocument } from '../spec/document.js';
import { countMemory } from '../spec/analytics/memory.js';
import { estimateRoofline, type Mode, type ModeEstimate } from '../spec/analytics/roofline.js';
import { hardwareProfile, type HardwareProfile } from '../spec/hardware.js';
import { resolvePrecision } from '../spec/precision.js';
import type { EngineEvent, ProfileEvent } from './events.js';

/** Bytes per element of the decode state and KV cache the CPU engine keeps (fp32). */
const ENGINE_STATE_BYTES = 4;

export interface ProfilePrediction {
  hardware: HardwareProfile;
  /** The event with predicted fields added (a copy), or the event itself when it is not a profile row. */
  annotate(event: EngineEvent): EngineEvent;
}

/** Predictions for `doc` on the hardware profile `hardwareId` (throws listing the known ids). */
export function profilePrediction(doc: StrataDocument, hardwareId: string): ProfilePrediction {
  const hardware = hardwareProfile(hardwareId);
  const table = resolvePrecision(doc.model);
  const estimates = new Map<string, ModeEstimate>();
  const estimateFor = (mode: Mode, context: number, batch: number): ModeEstimate => {
    const key = `${mode}/${context}/${batch}`;
    let estimate = estimates.get(key);
    if (!estimate) {
      const report = estimateRoofline(doc.model, table, hardware, { context, batch, cacheBytes: ENGINE_STATE_BYTES, ssmStateBytes: ENGINE_STATE_BYTES });
      estimate = report[mode];
      estimates.set(key, estimate);
    }
    return estimate;
  };
  const decodeStateBytes = (context: number, batch: number): number => {
    const memory = countMemory(doc.model, { context, batch: 1, precision: table, contexts: [context], cacheBytes: ENGINE_STATE_BYTES, ssmStateBytes: ENGINE_STATE_BYTES });
    const perSequence = memory.at_context[0]!;
    return (perSequence.kv_cache_bytes + perSequence.state_bytes) * batch;
  };

  const annotate = (event: EngineEvent): EngineEvent => {
    if (event.type !== 'profile') return event;
    const row = event as ProfileEvent;
    const mode = row.mode;
    const context = row.context;
    const batch = row.batch;
    if ((mode !== 'train' && mode !== 'prefill' && mode !== 'decode') || typeof context !== 'number' || typeof batch !== 'number') return event;
    const estimate = estimateFor(mode, context, batch);
    if (row.op === 'total') {
      return {
        ...row,
        hardware: hardware.id,
        predicted_ms: estimate.step_s * 1000,
        predicted_tokens_per_s: estimate.tokens_per_s,
        ...(mode === 'decode' ? { predicted_bytes: decodeStateBytes(context, batch) } : {}),
      };
    }
    const layer = estimate.rows.find((r) => r.index === row.layer);
    return layer ? { ...row, predicted_ms: layer.time_s * 1000 } : event;
  };
  return { hardware, annotate };
}
