// A line chart of one or more (x, y) series drawn with uPlot, e.g. the live loss curve or the
// overlaid curves of compared runs (series with different x values are aligned with uPlot.join).
// The chart is created once and fed new data on updates (no re-creation per step), and resized
// with its container. uPlot is loaded on first draw; where the page cannot draw on a canvas (no 2D
// context) only the labelled frame and a text summary remain. Not the run data (run-data.ts).
import { useEffect, useRef } from 'react';
import type uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

type UPlotClass = typeof uPlot;

export interface ChartSeries {
  name: string;
  x: readonly number[];
  y: readonly number[];
}

const PALETTE = ['#4e9af1', '#f28e2b', '#59a14f', '#e15759', '#b07aa1', '#76b7b2', '#edc948', '#ff9da7'];

function canDraw(): boolean {
  if (typeof document === 'undefined') return false;
  try {
    return document.createElement('canvas').getContext('2d') !== null;
  } catch {
    return false;
  }
}

function aligned(UPlot: UPlotClass, series: readonly ChartSeries[]): uPlot.AlignedData {
  if (series.length === 1) return [series[0]!.x as number[], series[0]!.y as number[]];
  return UPlot.join(series.map((s) => [s.x as number[], s.y as number[]] as uPlot.AlignedData));
}

interface Props {
  label: string;
  series: readonly ChartSeries[];
  /** Bumped by the caller when series arrays grew in place. */
  version: number;
  xLabel?: string;
  yLabel?: string;
  height?: number;
}

export function SeriesChart({ label, series, version, xLabel = 'step', yLabel = 'loss', height = 220 }: Props) {
  const box = useRef<HTMLDivElement>(null);
  const chart = useRef<{ plot: uPlot; UPlot: UPlotClass } | null>(null);
  const names = series.map((s) => s.name).join('\u0000');

  const latest = useRef(series);
  latest.current = series;

  useEffect(() => {
    const el = box.current;
    if (!el || !canDraw()) return;
    let cancelled = false;
    let observer: ResizeObserver | null = null;
    void import('uplot').then(({ default: UPlot }) => {
      if (cancelled) return;
      const current = latest.current;
      const opts: uPlot.Options = {
        width: Math.max(200, el.clientWidth || 480),
        height,
        scales: { x: { time: false } },
        axes: [{ label: xLabel, stroke: 'currentColor' }, { label: yLabel, stroke: 'currentColor' }],
        series: [{ label: xLabel }, ...current.map((s, i) => ({ label: s.name, stroke: PALETTE[i % PALETTE.length], width: 1.5, spanGaps: true }))],
        legend: { show: current.length > 1 },
      };
      const plot = new UPlot(opts, aligned(UPlot, current), el);
      chart.current = { plot, UPlot };
      if (typeof ResizeObserver !== 'undefined') {
        observer = new ResizeObserver(() => plot.setSize({ width: Math.max(200, el.clientWidth), height }));
        observer.observe(el);
      }
    });
    return () => {
      cancelled = true;
      observer?.disconnect();
      chart.current?.plot.destroy();
      chart.current = null;
    };
    // Re-created only when the set of series or the axes change; data updates go through setData.
  }, [names, height, xLabel, yLabel]);

  useEffect(() => {
    const c = chart.current;
    if (c) c.plot.setData(aligned(c.UPlot, series));
  }, [series, version]);

  const last = series.map((s) => (s.y.length ? `${s.name}: ${s.y[s.y.length - 1]!.toFixed(4)} at ${xLabel} ${s.x[s.x.length - 1]}` : `${s.name}: no data`)).join('; ');
  return (
    <figure className="chart" role="img" aria-label={label} title={last}>
      <div ref={box} className="chart-canvas" />
      <figcaption className="muted">{last}</figcaption>
    </figure>
  );
}
