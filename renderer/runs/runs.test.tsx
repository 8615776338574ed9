// @vitest-environment jsdom
// Component tests of the runs views against the real runs store: live events drive the progress
// bar, throughput, ETA and loss curve; the runs list stays virtualized with thousands of runs;
// the compare view overlays runs and diffs their documents; profile and precision views render
// their rows.
import { act, cleanup, fireEvent, render, screen } from '@testing-library/react';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RunEvent, RunSummary } from '../../electron/contract.js';
import { presetPolicy } from '../../engine/spec/precision.js';
import { starterDocument } from '../model/starter.js';
import { PrecisionView } from './PrecisionView.js';
import { ProfileView } from './ProfileView.js';
import { RunCompare } from './RunCompare.js';
import { RunList } from './RunList.js';
import { RunsPanel } from './RunsPanel.js';
import { emptyRunData } from './run-data.js';
import { ingestEvents, useRunsStore } from './runs-store.js';

const summary = (i: number, patch: Partial<RunSummary> = {}): RunSummary => ({
  runId: `run-${i}`,
  dir: `/runs/run-${i}`,
  name: `design ${i}`,
  kind: 'train',
  device: 'cpu',
  status: 'done',
  model: 'm',
  createdAt: '2026-01-01T00:00:00Z',
  step: 100,
  totalSteps: 100,
  lastLoss: 2,
  lastEvalLoss: null,
  tokensPerS: 1000,
  elapsedS: 10,
  ...patch,
});

const steps = (from: number, to: number): RunEvent[] =>
  Array.from({ length: to - from + 1 }, (_, k) => ({ type: 'step', t: (from + k) * 0.5, step: from + k, loss: 5 / (from + k), lr: 1e-3, tokens_per_s: 2048 }));

beforeEach(() => {
  useRunsStore.setState({ summaries: [], data: {}, documents: {}, activeId: null, compareIds: [], filter: '', device: 'cpu' });
});
afterEach(() => cleanup());

describe('RunsPanel', () => {
  it('shows live progress, throughput, ETA and the loss curve of the open run', () => {
    useRunsStore.setState({ summaries: [summary(1, { status: 'running', step: 0 })], activeId: 'run-1', data: { 'run-1': emptyRunData('run-1') } });
    render(<RunsPanel />);
    act(() => ingestEvents('run-1', 0, [{ type: 'start', t: 0, steps: 100 }, ...steps(1, 25)]));
    const bar = screen.getByRole('progressbar', { name: 'Run progress' });
    expect(bar.getAttribute('aria-valuenow')).toBe('25');
    expect(screen.getByLabelText('Tokens per second').textContent).toBe('2.0K tok/s');
    expect(screen.getByLabelText('Estimated time left').textContent).toBe('ETA 38s');
    expect(screen.getByRole('img', { name: 'Loss curve' }).textContent).toMatch(/train loss: 0\.2000 at step 25/);
    expect((screen.getByRole('button', { name: 'Stop run' }) as HTMLButtonElement).disabled).toBe(false);
    act(() => ingestEvents('run-1', 26, [{ type: 'done', t: 13, reason: 'stopped' }]));
    expect((screen.getByRole('button', { name: 'Stop run' }) as HTMLButtonElement).disabled).toBe(true);
    expect((screen.getByRole('button', { name: 'Resume run' }) as HTMLButtonElement).disabled).toBe(false);
  });
});

describe('RunList', () => {
  it('renders only the visible window of thousands of runs and filters them', () => {
    useRunsStore.setState({ summaries: Array.from({ length: 5000 }, (_, i) => summary(i)) });
    render(<RunList height={300} />);
    const rows = () => screen.getAllByRole('row');
    expect(rows().length).toBeLessThan(30);
    const viewport = screen.getByRole('grid', { name: 'Runs' });
    expect(viewport.getAttribute('aria-rowcount')).toBe('5000');
    viewport.scrollTop = 30 * 4000;
    fireEvent.scroll(viewport);
    expect(screen.getByRole('button', { name: 'Open run run-4005' })).toBeTruthy();
    expect(rows().length).toBeLessThan(30);
    fireEvent.change(screen.getByRole('searchbox', { name: 'Filter runs' }), { target: { value: 'run-4999' } });
    expect(rows()).toHaveLength(1);
    fireEvent.click(screen.getByRole('checkbox', { name: 'Compare run run-4999' }));
    expect(useRunsStore.getState().compareIds).toEqual(['run-4999']);
  });
});

describe('RunCompare', () => {
  it('overlays compared runs and diffs their documents and precision', async () => {
    const a = starterDocument();
    const b = structuredClone(a);
    b.model.precision = presetPolicy('nvfp4-all');
    b.pipeline.training.lr = 0.001;
    const dataA = emptyRunData('run-1', 'done');
    const dataB = emptyRunData('run-2', 'done');
    useRunsStore.setState({
      summaries: [summary(1), summary(2)],
      data: { 'run-1': dataA, 'run-2': dataB },
      documents: { 'run-1': a, 'run-2': b },
      compareIds: ['run-1', 'run-2'],
    });
    act(() => {
      ingestEvents('run-1', 0, steps(1, 10));
      ingestEvents('run-2', 0, steps(1, 12));
    });
    render(<RunCompare />);
    expect(await screen.findByRole('table', { name: 'Document differences' })).toBeTruthy();
    expect(screen.getByRole('img', { name: 'Compared loss curves' }).textContent).toMatch(/design 2 \(run-2\): .* at step 12/);
    expect(screen.getByRole('cell', { name: 'pipeline.training.lr' })).toBeTruthy();
    expect(screen.getByRole('list', { name: 'Precision differences' }).textContent).toMatch(/mamba\.in_proj: bf16 -> nvfp4/);
  });
});

describe('ProfileView and PrecisionView', () => {
  it('draws per-layer measured vs predicted times and the quantization heat map', async () => {
    const doc = starterDocument();
    useRunsStore.setState({ summaries: [summary(3, { kind: 'profile' })], activeId: 'run-3', data: { 'run-3': emptyRunData('run-3', 'done') }, documents: { 'run-3': doc } });
    act(() =>
      ingestEvents('run-3', 0, [
        { type: 'profile', t: 1, layer: 0, kind: 'mamba2', op: 'in_proj', fwd_ms: 0.5, bwd_ms: 1 },
        { type: 'profile', t: 1, layer: 0, kind: 'mamba2', op: 'scan', fwd_ms: 0.25 },
        { type: 'profile', t: 1, layer: 1, kind: 'moe', op: 'experts', fwd_ms: 2 },
        { type: 'precision', t: 2, layer: 1, role: 'moe.expert_fc1', pass: 'fprop', operand: 'input', format: 'nvfp4', rel_err: 0.1, underflow: 0.02 },
        { type: 'precision', t: 2, layer: 1, role: 'moe.expert_fc1', pass: 'wgrad', operand: 'grad', format: 'nvfp4', rel_err: 0.3, underflow: 0.01 },
      ]),
    );
    render(<ProfileView />);
    const row = await screen.findByLabelText(/^Layer 0: mamba2, measured 1\.750 ms, predicted [\d.]+ ms$/);
    expect(row).toBeTruthy();
    cleanup();
    render(<PrecisionView />);
    expect(screen.getByLabelText('Layer 1 moe.expert_fc1 (nvfp4): error 3.00e-1 wgrad grad')).toBeTruthy();
    fireEvent.change(screen.getByRole('combobox', { name: 'Heat map metric' }), { target: { value: 'underflow' } });
    expect(screen.getByLabelText('Layer 1 moe.expert_fc1 (nvfp4): underflow 2.00e-2 fprop input')).toBeTruthy();
    fireEvent.change(screen.getByRole('combobox', { name: 'GEMM pass' }), { target: { value: 'wgrad' } });
    expect(screen.getByLabelText('Layer 1 moe.expert_fc1 (nvfp4): underflow 1.00e-2 wgrad grad')).toBeTruthy();
  });
});

describe('PrecisionView with inspection steps', () => {
  const inspect = (step: number, layer: number, role: string, rel_err: number, underflow: number): RunEvent => ({
    type: 'precision',
    t: step,
    step,
    layer,
    role,
    pass: 'fprop',
    operand: 'activation',
    format: 'nvfp4',
    rel_err,
    underflow,
    amax: 3,
  });

  it('shows the latest inspected step, names the worst cell, puts the head last and lets earlier steps be chosen', () => {
    useRunsStore.setState({ summaries: [summary(4)], activeId: 'run-4', data: { 'run-4': emptyRunData('run-4', 'done') } });
    act(() =>
      ingestEvents('run-4', 0, [
        { type: 'precision', t: 0, table: [] },
        inspect(9, -1, 'head', 0.5, 0.2),
        inspect(9, 0, 'mamba.in_proj', 0.1, 0.01),
        inspect(19, -1, 'head', 0.09, 0.04),
        inspect(19, 0, 'mamba.in_proj', 0.12, 0.02),
      ]),
    );
    render(<PrecisionView />);
    expect(screen.getAllByRole('columnheader').map((h) => h.textContent)).toEqual(['role \\ layer', '0', 'head']);
    expect(screen.getByLabelText('Worst cell').textContent).toBe(
      'Worst relative quantization error: Layer 0 mamba.in_proj (nvfp4): error 1.20e-1 fprop activation, amax 3.00, step 19',
    );
    fireEvent.change(screen.getByRole('combobox', { name: 'Inspection step' }), { target: { value: '9' } });
    expect(screen.getByLabelText('LM head (nvfp4): error 5.00e-1 fprop activation, amax 3.00, step 9')).toBeTruthy();
    fireEvent.change(screen.getByRole('combobox', { name: 'Heat map metric' }), { target: { value: 'underflow' } });
    fireEvent.change(screen.getByRole('combobox', { name: 'Inspection step' }), { target: { value: 'all' } });
    expect(screen.getByLabelText('Worst cell').textContent).toContain('LM head (nvfp4): underflow 2.00e-1');
  });

  it('explains a run that has its precision table but no inspection events yet', () => {
    useRunsStore.setState({ summaries: [summary(5)], activeId: 'run-5', data: { 'run-5': emptyRunData('run-5') } });
    act(() => ingestEvents('run-5', 0, [{ type: 'precision', t: 0, table: [{ layer: 0, kind: 'mlp', roles: {} }] }]));
    render(<PrecisionView />);
    expect(screen.getByText(/recorded its precision table but no inspection yet/)).toBeTruthy();
  });
});
