// The profile view of the open run: one row per layer with a bar of the measured time (forward +
// backward over its ops) and a marker bar of the analytics' roofline prediction for the same
// document, mode and hardware, plus the layer's op breakdown on hover. Not the grouping
// (profile-rows.ts).
import { useEffect, useMemo, useState } from 'react';
import type { StrataDocument } from '../../engine/spec/document.js';
import { layerTimes, profileModes } from './profile-rows.js';
import { runDocument, useRunsStore } from './runs-store.js';

export function ProfileView() {
  const activeId = useRunsStore((s) => s.activeId);
  const data = useRunsStore((s) => (s.activeId ? s.data[s.activeId] : undefined));
  const device = useRunsStore((s) => s.summaries.find((r) => r.runId === s.activeId)?.device ?? 'cpu');
  const [doc, setDoc] = useState<StrataDocument | null>(null);
  const [mode, setMode] = useState<string | undefined>(undefined);
  useEffect(() => {
    setDoc(null);
    if (activeId) void runDocument(activeId).then(setDoc);
  }, [activeId]);
  const modes = useMemo(() => profileModes(data?.profile ?? []), [data]);
  const chosen = mode && modes.includes(mode) ? mode : modes[0];
  const hardware = device === 'cuda' ? (doc?.pipeline.profiling.hardware ?? 'h200') : 'cpu';
  const times = useMemo(() => layerTimes(data?.profile ?? [], doc, hardware, chosen), [data, doc, hardware, chosen]);
  if (!data || data.profile.length === 0) return <p className="muted">Open a profiling run to see per-layer times.</p>;
  const max = Math.max(...times.map((t) => Math.max(t.measuredMs, t.predictedMs ?? 0)), 1e-9);
  const total = times.reduce((a, t) => a + t.measuredMs, 0);
  const predictedTotal = times.reduce((a, t) => a + (t.predictedMs ?? 0), 0);
  return (
    <section className="profile-view" aria-label="Profile">
      <div className="strip-controls">
        {modes.length > 1 ? (
          <label>
            <span>Mode</span>
            <select aria-label="Profile mode" value={chosen} onChange={(e) => setMode(e.target.value)}>
              {modes.map((m) => (
                <option key={m}>{m}</option>
              ))}
            </select>
          </label>
        ) : null}
        <span>
          measured {total.toFixed(2)} ms{predictedTotal ? `, predicted ${predictedTotal.toFixed(2)} ms on ${hardware}` : ''}
        </span>
      </div>
      <ul className="profile-bars" aria-label="Per-layer time">
        {times.map((t) => (
          <li key={t.layer} aria-label={`Layer ${t.layer}: ${t.kind}, measured ${t.measuredMs.toFixed(3)} ms${t.predictedMs !== null ? `, predicted ${t.predictedMs.toFixed(3)} ms` : ''}`} title={t.ops.join('\n')}>
            <span className="profile-label">
              L{t.layer} {t.kind}
            </span>
            <span className="profile-track">
              <span className={`profile-bar kind-${t.kind}`} style={{ width: `${(t.measuredMs / max) * 100}%` }} />
              {t.predictedMs !== null ? <span className="profile-predicted" style={{ width: `${(t.predictedMs / max) * 100}%` }} /> : null}
            </span>
            <span className="profile-value">{t.measuredMs.toFixed(3)} ms</span>
          </li>
        ))}
      </ul>
    </section>
  );
}
