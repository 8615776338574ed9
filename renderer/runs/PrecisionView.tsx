// The precision view of the open run: a heat map with one column per layer and one row per tensor
// role, coloured by the quantization error or the underflow (flush-to-zero) share the engine
// measured (the worst operand of the chosen GEMM pass), with format, pass/operand and amax on
// hover. Not the measurement (engine precision inspection events).
import { useMemo, useState } from 'react';
import type { PrecisionPoint } from './run-data.js';
import { useRunsStore } from './runs-store.js';

type Metric = 'error' | 'underflow';

/** 0..1 colour intensity: log-scaled between 1e-4 and 1. */
export function heat(value: number): number {
  if (!(value > 0)) return 0;
  return Math.min(1, Math.max(0, (Math.log10(value) + 4) / 4));
}

export function PrecisionView() {
  const data = useRunsStore((s) => (s.activeId ? s.data[s.activeId] : undefined));
  const [metric, setMetric] = useState<Metric>('error');
  const [pass, setPass] = useState<string>('all');
  const points = data?.precision ?? [];
  const { layers, roles, cells } = useMemo(() => {
    const layerSet = new Set<number>();
    const roleSet = new Set<string>();
    const map = new Map<string, PrecisionPoint>();
    for (const p of points) {
      if (pass !== 'all' && p.pass !== pass) continue;
      layerSet.add(p.layer);
      roleSet.add(p.role);
      const key = `${p.role}|${p.layer}`;
      const seen = map.get(key);
      if (!seen || (p[metric] ?? -1) > (seen[metric] ?? -1)) map.set(key, p);
    }
    return { layers: [...layerSet].sort((a, b) => a - b), roles: [...roleSet].sort(), cells: map };
  }, [points, data?.nextLine, metric, pass]);
  if (points.length === 0) return <p className="muted">Open a run with precision inspection events to see quantization error per layer.</p>;
  return (
    <section className="precision-view" aria-label="Precision heat map">
      <label>
        <span>Metric</span>
        <select aria-label="Heat map metric" value={metric} onChange={(e) => setMetric(e.target.value as Metric)}>
          <option value="error">relative quantization error</option>
          <option value="underflow">underflow (flush-to-zero) share</option>
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
      <table className="heatmap">
        <thead>
          <tr>
            <th>role</th>
            {layers.map((l) => (
              <th key={l}>{l}</th>
            ))}
          </tr>
        </thead>
        <tbody>
          {roles.map((role) => (
            <tr key={role}>
              <th>{role}</th>
              {layers.map((layer) => {
                const p = cells.get(`${role}|${layer}`);
                const value = p ? p[metric] : null;
                const where = p && (p.pass || p.operand) ? ` ${[p.pass, p.operand].filter(Boolean).join(' ')}` : '';
                const label = p ? `Layer ${layer} ${role} (${p.format}): ${metric} ${value === null ? 'n/a' : value.toExponential(2)}${where}${p.amax !== null ? `, amax ${p.amax.toPrecision(3)}` : ''}` : `Layer ${layer} ${role}: not measured`;
                return <td key={layer} aria-label={label} title={label} style={{ ['--heat' as string]: value === null ? 0 : heat(value) }} className={p ? 'heat-cell' : 'heat-cell empty'} />;
              })}
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
