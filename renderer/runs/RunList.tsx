// The runs list: every run in the host's runs folder, newest first, filterable, virtualized
// (fixed-height rows, only the visible window is rendered) so thousands of runs scroll smoothly.
// Each row opens the run and has a compare checkbox. Not the run details (RunsPanel.tsx).
import { memo, useMemo, useState } from 'react';
import type { RunSummary } from '../../electron/contract.js';
import { openRun, useRunsStore } from './runs-store.js';

export const ROW_HEIGHT = 30;
const OVERSCAN = 6;

/** Index range [start, end) of rows to render for a scroll position. */
export function visibleRange(scrollTop: number, viewport: number, count: number): [number, number] {
  // A list that shrank under a scrolled viewport (filtering) is shown from its end.
  scrollTop = Math.min(scrollTop, Math.max(0, count * ROW_HEIGHT - viewport));
  const start = Math.max(0, Math.floor(scrollTop / ROW_HEIGHT) - OVERSCAN);
  const end = Math.min(count, Math.ceil((scrollTop + viewport) / ROW_HEIGHT) + OVERSCAN);
  return [start, end];
}

export function filterRuns(runs: readonly RunSummary[], filter: string): RunSummary[] {
  const words = filter.toLowerCase().split(/\s+/).filter(Boolean);
  if (!words.length) return runs as RunSummary[];
  return runs.filter((r) => {
    const text = `${r.runId} ${r.name} ${r.model} ${r.kind} ${r.device} ${r.status}`.toLowerCase();
    return words.every((w) => text.includes(w));
  });
}

const Row = memo(function Row({ run, top, active, compared }: { run: RunSummary; top: number; active: boolean; compared: boolean }) {
  return (
    <div className={`run-row status-${run.status}${active ? ' active' : ''}`} style={{ top, height: ROW_HEIGHT }} role="row" aria-selected={active}>
      <input type="checkbox" aria-label={`Compare run ${run.runId}`} checked={compared} onChange={() => useRunsStore.getState().toggleCompare(run.runId)} />
      <button type="button" className="run-open" aria-label={`Open run ${run.runId}`} onClick={() => void openRun(run.runId)}>
        <span className="run-name">{run.name}</span>
        <span className="run-meta">
          {run.kind} · {run.device} · {run.status}
          {run.totalSteps ? ` · ${run.step}/${run.totalSteps}` : run.step ? ` · step ${run.step}` : ''}
          {run.lastLoss !== null ? ` · loss ${run.lastLoss.toFixed(3)}` : ''}
        </span>
      </button>
    </div>
  );
});

export function RunList({ height = 160 }: { height?: number }) {
  const summaries = useRunsStore((s) => s.summaries);
  const filter = useRunsStore((s) => s.filter);
  const activeId = useRunsStore((s) => s.activeId);
  const compareIds = useRunsStore((s) => s.compareIds);
  const [scrollTop, setScrollTop] = useState(0);
  const runs = useMemo(() => filterRuns(summaries, filter), [summaries, filter]);
  const [start, end] = visibleRange(scrollTop, height, runs.length);
  return (
    <div className="run-list">
      <input type="search" aria-label="Filter runs" placeholder="Filter runs" value={filter} onChange={(e) => useRunsStore.getState().setFilter(e.target.value)} />
      <div className="run-list-viewport" style={{ height }} onScroll={(e) => setScrollTop(e.currentTarget.scrollTop)} role="grid" aria-label="Runs" aria-rowcount={runs.length}>
        <div style={{ height: runs.length * ROW_HEIGHT, position: 'relative' }}>
          {runs.slice(start, end).map((run, i) => (
            <Row key={run.runId} run={run} top={(start + i) * ROW_HEIGHT} active={run.runId === activeId} compared={compareIds.includes(run.runId)} />
          ))}
        </div>
      </div>
      {runs.length === 0 ? <p className="muted">{summaries.length ? 'No run matches the filter.' : 'No runs yet. Start one from the pipeline.'}</p> : null}
    </div>
  );
}
