// The precision view of the open run: a heat map with one column per layer (plus the LM head) and
// one row per tensor role, coloured by the quantization error or the underflow (flush-to-zero)
// share the engine measured at its inspection steps ("precision" events with layer/role/pass/
// operand, written every eval_every steps). Each cell shows the worst operand of the chosen GEMM
// pass at the chosen step (latest by default); a summary names the worst cell; hover or focus
// gives format, pass/operand, amax and step. Not the measurement (engine precision inspection).
import { useMemo, useState } from 'react';
import type { PrecisionPoint } from './run-data.js';
import { useRunsStore } from './runs-store.js';

type Metric = 'error' | 'underflow';
/** Up to this many columns the cells are drawn larger (small designs). */
const ROOMY_LAYERS = 40;
const METRIC_TITLE: Record<Metric, string> = { error: 'relative quantization error', underflow: 'underflow (flush-to-zero) share' };

/** 0..1 colour intensity: log-scaled between 1e-4 and 1. */
export function heat(value: number): number {
  if (!(value > 0)) return 0;
  return Math.min(1, Math.max(0, (Math.log10(value) + 4) / 4));
}

/** Column title of a layer index: the stack's layers by number, -1 is the LM head. */
export const layerTitle = (layer: number) => (layer < 0 ? 'head' : String(layer));

export interface HeatMap {
  layers: number[];
  roles: string[];
  cells: Map<string, PrecisionPoint>;
  worst: PrecisionPoint | null;
}

/** Keeps, per (role, layer), the point with the largest `metric` among those of `pass` and `step`. */
export function buildHeatMap(points: readonly PrecisionPoint[], metric: Metric, pass: string, step: number | 'all'): HeatMap {
  const layerSet = new Set<number>();
  const roleSet = new Set<string>();
  const cells = new Map<string, PrecisionPoint>();
  let worst: PrecisionPoint | null = null;
  for (const p of points) {
    if (pass !== 'all' && p.pass !== pass) continue;
    if (step !== 'all' && p.step !== step) continue;
    layerSet.add(p.layer);
    roleSet.add(p.role);
    const key = `${p.role}|${p.layer}`;
    const seen = cells.get(key);
    if (!seen || (p[metric] ?? -1) > (seen[metric] ?? -1)) cells.set(key, p);
    if ((p[metric] ?? -1) > (worst?.[metric] ?? -1)) worst = p;
  }
  // Stack layers in order, the head last (it runs after them).
  const layers = [...layerSet].sort((a, b) => (a < 0 ? Infinity : a) - (b < 0 ? Infinity : b));
  return { layers, roles: [...roleSet].sort(), cells, worst };
}

function describePoint(p: PrecisionPoint, metric: Metric): string {
  const value = p[metric];
  const where = p.pass || p.operand ? ` ${[p.pass, p.operand].filter(Boolean).join(' ')}` : '';
  const amax = p.amax !== null ? `, amax ${p.amax.toPrecision(3)}` : '';
  const step = p.step !== null ? `, step ${p.step}` : '';
  const what = p.layer < 0 ? (p.role === 'head' ? 'LM head' : `LM head ${p.role}`) : `Layer ${p.layer} ${p.role}`;
  return `${what} (${p.format}): ${metric} ${value === null ? 'n/a' : value.toExponential(2)}${where}${amax}${step}`;
}

export function PrecisionView() {
  const data = useRunsStore((s) => (s.activeId ? s.data[s.activeId] : undefined));
  const [metric, setMetric] = useState<Metric>('error');
  const [pass, setPass] = useState<string>('all');
  const [stepChoice, setStepChoice] = useState<string>('latest');
  const points = data?.precision ?? [];
  const steps = useMemo(() => [...new Set(points.map((p) => p.step).filter((s): s is number => s !== null))].sort((a, b) => a - b), [points, data?.nextLine]);
  const step: number | 'all' = stepChoice === 'all' || steps.length === 0 ? 'all' : stepChoice === 'latest' ? steps.at(-1)! : Number(stepChoice);
  const map = useMemo(() => buildHeatMap(points, metric, pass, step), [points, data?.nextLine, metric, pass, step]);
  if (points.length === 0)
    return (
      <p className="muted">
        {data?.precisionTable
          ? 'This run recorded its precision table but no inspection yet: the engine measures quantization error and underflow at evaluation steps (pipeline.training.eval_every > 0) of runs with a non-BF16 policy.'
          : 'Open a training run with a low-precision policy (e.g. the Nemotron 3 NVFP4 preset) to see quantization error and underflow per layer.'}
      </p>
    );
  return (
    <section className="precision-view" aria-label="Precision heat map">
      <div className="precision-controls">
        <label>
          <span>Metric</span>
          <select aria-label="Heat map metric" value={metric} onChange={(e) => setMetric(e.target.value as Metric)}>
            <option value="error">{METRIC_TITLE.error}</option>
            <option value="underflow">{METRIC_TITLE.underflow}</option>
          </select>
        </label>
        <label>
          <span>Pass</span>
          <select aria-label="GEMM pass" value={pass} onChange={(e) => setPass(e.target.value)}>
            <option value="all">all passes (worst)</option>
            <option value="fprop">fprop</option>
            <option value="dgrad">dgrad</option>
            <option value="wgrad">wgrad</option>
          </select>
        </label>
        {steps.length ? (
          <label>
            <span>Step</span>
            <select aria-label="Inspection step" value={stepChoice} onChange={(e) => setStepChoice(e.target.value)}>
              <option value="latest">latest ({steps.at(-1)})</option>
              {steps.map((s) => (
                <option key={s} value={String(s)}>
                  {s}
                </option>
              ))}
              <option value="all">all steps (worst)</option>
            </select>
          </label>
        ) : null}
        <span className="heat-legend" aria-hidden="true">
          <span>1e-4</span>
          <span className="heat-legend-bar" />
          <span>1</span>
        </span>
      </div>
      {map.worst ? (
        <p className="precision-summary" aria-label="Worst cell">
          Worst {METRIC_TITLE[metric]}: {describePoint(map.worst, metric)}
        </p>
      ) : null}
      <div className="heatmap-scroll">
        <table className={`heatmap${map.layers.length <= ROOMY_LAYERS ? ' roomy' : ''}`}>
          <thead>
            <tr>
              <th scope="col">role \ layer</th>
              {map.layers.map((l) => (
                <th key={l} scope="col">
                  {layerTitle(l)}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {map.roles.map((role) => (
              <tr key={role}>
                <th scope="row">{role}</th>
                {map.layers.map((layer) => {
                  const p = map.cells.get(`${role}|${layer}`);
                  const value = p ? p[metric] : null;
                  const label = p ? describePoint(p, metric) : `${layer < 0 ? 'LM head' : `Layer ${layer}`} ${role}: not measured`;
                  return <td key={layer} aria-label={label} title={label} style={{ ['--heat' as string]: value === null ? 0 : heat(value) }} className={p ? 'heat-cell' : 'heat-cell empty'} />;
                })}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}
