// The runs panel: start training / evaluation / profiling of the current design on CPU or GPU,
// the runs list, and the open run: progress bar, tokens/s, ETA, stop/resume, live loss curve
// (training and eval loss), CSV export of its metrics, export of its weights to a Hugging Face
// folder, its last log lines or error; opening a run folder from any path (a GPU box's run).
// Not the list virtualization (RunList.tsx) or the compare/profile/precision views.
import { useEffect, useMemo } from 'react';
import type { RunDevice } from '../../electron/contract.js';
import { formatRate } from '../../engine/spec/analytics/text.js';
import { type ChartSeries, SeriesChart } from './SeriesChart.js';
import { RunList } from './RunList.js';
import { type RunData, formatDuration, metricsCsv, runProgress } from './run-data.js';
import { exportRunToHf, importRunFolder, refreshRuns, resumeRun, startRun, stopRun, useRunsStore } from './runs-store.js';
import { askPath } from '../state/project-actions.js';

const HF_FOLDER_WORDING = { title: 'Export weights to Hugging Face', label: 'Output folder path', submit: 'Export' };
const RUN_FOLDER_WORDING = { title: 'Open run folder', label: 'Run folder path', submit: 'Open run' };

/** Asks for a run folder (one with events.jsonl, from this or another machine) and adds it to the list. */
async function openRunFolder(): Promise<void> {
  const path = await askPath('folder', '', RUN_FOLDER_WORDING);
  if (path) await importRunFolder(path);
}

/** Saves text as a download (works in Electron and browsers). */
export function downloadText(fileName: string, text: string, type = 'text/csv'): void {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = document.createElement('a');
  a.href = url;
  a.download = fileName;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 0);
}

export function lossSeries(data: RunData, name = 'train loss'): ChartSeries[] {
  const series: ChartSeries[] = [{ name, x: data.steps, y: data.loss }];
  const evals = data.evals.filter((e) => e.loss !== null);
  if (evals.length) series.push({ name: 'eval loss', x: evals.map((e) => e.step), y: evals.map((e) => e.loss!) });
  return series;
}

function ActiveRun({ data }: { data: RunData }) {
  const progress = runProgress(data);
  const summary = useRunsStore((s) => s.summaries.find((r) => r.runId === data.runId));
  const series = useMemo(() => lossSeries(data), [data]);
  const running = data.status === 'running';
  const percent = progress.fraction !== null ? Math.round(progress.fraction * 100) : null;
  return (
    <div className="active-run" aria-label={`Run ${data.runId}`} role="region">
      <div className="run-status-line">
        <strong>{summary?.name ?? data.runId}</strong>
        <span className={`run-badge status-${data.status}`}>{data.status}</span>
        <span>
          step {progress.step}
          {progress.total ? ` / ${progress.total}` : ''}
        </span>
        <span aria-label="Tokens per second">{progress.tokensPerS !== null ? formatRate(progress.tokensPerS) : '-'}</span>
        <span aria-label="Estimated time left">{progress.etaS !== null ? `ETA ${formatDuration(progress.etaS)}` : running ? 'ETA -' : ''}</span>
      </div>
      <div
        className="progress"
        role="progressbar"
        aria-label="Run progress"
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={percent ?? undefined}
        aria-valuetext={percent !== null ? `${percent}%` : `step ${progress.step}`}
      >
        <div className="progress-fill" style={{ width: `${percent ?? 0}%` }} />
      </div>
      <div className="button-row">
        <button type="button" aria-label="Stop run" disabled={!running} onClick={() => void stopRun(data.runId)}>
          Stop
        </button>
        <button type="button" aria-label="Resume run" disabled={running || summary?.kind === 'eval' || summary?.kind === 'profile'} onClick={() => void resumeRun(data.runId)}>
          Resume
        </button>
        <button type="button" disabled={data.steps.length === 0 && data.evals.length === 0} onClick={() => downloadText(`${data.runId}-metrics.csv`, metricsCsv(data))}>
          Export CSV
        </button>
        {summary?.kind === 'train' ? (
          <button type="button" disabled={running || data.steps.length === 0} onClick={() => void exportRunToHf(data.runId, (p) => askPath('save', p, HF_FOLDER_WORDING))}>
            Export weights to Hugging Face
          </button>
        ) : null}
      </div>
      {data.error ? (
        <div className="issue error" role="alert">
          {data.error}
        </div>
      ) : null}
      <SeriesChart label="Loss curve" series={series} version={data.nextLine} />
      {data.evals.length ? (
        <p className="muted">
          last eval:{' '}
          {Object.entries({ loss: data.evals.at(-1)!.loss, ppl: data.evals.at(-1)!.ppl, bpb: data.evals.at(-1)!.bpb, ...data.evals.at(-1)!.extra })
            .filter(([, v]) => v !== null)
            .map(([k, v]) => `${k} ${Number(v).toPrecision(4)}`)
            .join(', ')}
        </p>
      ) : null}
      {data.logs.length ? <pre className="run-log">{data.logs.slice(-5).join('\n')}</pre> : null}
    </div>
  );
}

export function RunsPanel() {
  const device = useRunsStore((s) => s.device);
  const activeId = useRunsStore((s) => s.activeId);
  const active = useRunsStore((s) => (s.activeId ? s.data[s.activeId] : undefined));
  useEffect(() => {
    void refreshRuns();
  }, []);
  return (
    <section className="runs-panel" aria-label="Runs">
      <div className="run-controls">
        <label>
          <span>Device</span>
          <select aria-label="Run device" value={device} onChange={(e) => useRunsStore.getState().setDevice(e.target.value as RunDevice)}>
            <option value="cpu">CPU</option>
            <option value="cuda">GPU (CUDA)</option>
          </select>
        </label>
        <button type="button" onClick={() => void startRun('train')}>
          Start training
        </button>
        <button type="button" onClick={() => void startRun('eval')}>
          Start evaluation
        </button>
        <button type="button" onClick={() => void startRun('profile')}>
          Start profiling
        </button>
        <button type="button" onClick={() => void refreshRuns()}>
          Refresh runs
        </button>
        <button type="button" title="Add a run folder from any path, e.g. one strata-engine wrote on a GPU box" onClick={() => void openRunFolder()}>
          Open run folder…
        </button>
      </div>
      <div className="runs-body">
        <RunList />
        {active ? <ActiveRun data={active} /> : <p className="muted">{activeId ? 'Loading run…' : 'Open a run to see its curves.'}</p>}
      </div>
    </section>
  );
}
