// Run comparison: the loss curves of the runs ticked in the runs list overlaid in one chart, a
// table of their last figures, and for two runs the diff of their documents (changed fields) and
// of their resolved precision policies (which layers/roles changed format).
// Not the diff logic (doc-diff.ts).
import { useEffect, useMemo, useState } from 'react';
import type { StrataDocument } from '../../engine/spec/document.js';
import { formatRate } from '../../engine/spec/analytics/text.js';
import { diffJson, diffPrecision, summarizePrecisionChanges } from './doc-diff.js';
import { type ChartSeries, SeriesChart } from './SeriesChart.js';
import { loadRun, runDocument, useRunsStore } from './runs-store.js';

function show(v: unknown): string {
  return v === undefined ? '(absent)' : JSON.stringify(v);
}

function DocumentDiff({ a, b, nameA, nameB }: { a: StrataDocument; b: StrataDocument; nameA: string; nameB: string }) {
  const changes = useMemo(() => diffJson(a, b), [a, b]);
  const precision = useMemo(() => summarizePrecisionChanges(diffPrecision(a, b)), [a, b]);
  return (
    <div className="doc-diff">
      <h3>
        Document diff: {nameA} → {nameB}
      </h3>
      {changes.length === 0 ? <p className="muted">Same document.</p> : null}
      {changes.length ? (
        <table aria-label="Document differences">
          <thead>
            <tr>
              <th>field</th>
              <th>{nameA}</th>
              <th>{nameB}</th>
            </tr>
          </thead>
          <tbody>
            {changes.slice(0, 200).map((c) => (
              <tr key={c.path}>
                <td>
                  <code>{c.path}</code>
                </td>
                <td>{show(c.a)}</td>
                <td>{show(c.b)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      {changes.length > 200 ? <p className="muted">…and {changes.length - 200} more.</p> : null}
      <h3>Precision policy diff</h3>
      {precision.length ? (
        <ul aria-label="Precision differences">
          {precision.map((line) => (
            <li key={line}>{line}</li>
          ))}
        </ul>
      ) : (
        <p className="muted">Both runs resolve to the same precision table.</p>
      )}
    </div>
  );
}

export function RunCompare() {
  const compareIds = useRunsStore((s) => s.compareIds);
  const data = useRunsStore((s) => s.data);
  const summaries = useRunsStore((s) => s.summaries);
  const [docs, setDocs] = useState<Record<string, StrataDocument>>({});
  useEffect(() => {
    for (const id of compareIds) {
      if (!useRunsStore.getState().data[id]) void loadRun(id);
      void runDocument(id).then((doc) => doc && setDocs((d) => ({ ...d, [id]: doc })));
    }
  }, [compareIds]);
  const nameOf = (id: string) => summaries.find((r) => r.runId === id)?.name ?? id;
  const series: ChartSeries[] = compareIds.flatMap((id) => {
    const d = data[id];
    return d ? [{ name: `${nameOf(id)} (${id})`, x: d.steps, y: d.loss }] : [];
  });
  const version = compareIds.reduce((acc, id) => acc + (data[id]?.nextLine ?? 0), 0);
  if (compareIds.length === 0) return <p className="muted">Tick “Compare” on two or more runs in the runs list.</p>;
  const [first, second] = compareIds;
  return (
    <section className="run-compare" aria-label="Run comparison">
      <SeriesChart label="Compared loss curves" series={series} version={version} />
      <table aria-label="Compared runs">
        <thead>
          <tr>
            <th>run</th>
            <th>status</th>
            <th>step</th>
            <th>last loss</th>
            <th>last eval loss</th>
            <th>tokens/s</th>
          </tr>
        </thead>
        <tbody>
          {compareIds.map((id) => {
            const d = data[id];
            const lastEval = d?.evals.filter((e) => e.loss !== null).at(-1);
            return (
              <tr key={id}>
                <td>{nameOf(id)}</td>
                <td>{d?.status ?? '…'}</td>
                <td>{d?.steps.at(-1) ?? '-'}</td>
                <td>{d?.loss.length ? d.loss.at(-1)!.toFixed(4) : '-'}</td>
                <td>{lastEval?.loss != null ? lastEval.loss.toFixed(4) : '-'}</td>
                <td>{d?.tokensPerS.length ? formatRate(d.tokensPerS.at(-1)!) : '-'}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
      {first && second && docs[first] && docs[second] ? <DocumentDiff a={docs[first]} b={docs[second]} nameA={nameOf(first)} nameB={nameOf(second)} /> : null}
    </section>
  );
}
