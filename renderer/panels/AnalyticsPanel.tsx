// The live analytics panel: total and active parameters, FLOPs per token, memory at a chosen
// context (weights, KV cache vs Mamba state), whether it fits on the chosen GPU, roofline
// throughput (prefill, decode, training) and a per-layer breakdown. Reads the analysis through
// useAnalysis (state/analytics.ts: memoized, computed in a worker in the browser), so an edit
// paints first and the figures follow. Not the figures themselves.
import { memo, useState } from 'react';
import { formatBytesBinary, formatContext, formatCount, formatFlops, formatRate } from '../../engine/spec/analytics/text.js';
import { HARDWARE, HARDWARE_IDS } from '../../engine/spec/hardware.js';
import { useAnalysis } from '../state/analytics.js';
import { useDocumentStore, usePrefsStore } from '../state/stores.js';
import type { AnalysisReport } from '../../engine/spec/analytics/index.js';

export const CONTEXT_CHOICES = [2048, 8192, 32768, 131072, 262144, 1048576] as const;

function Readout({ label, value, hint }: { label: string; value: string; hint?: string }) {
  return (
    <div className="readout">
      <span className="readout-label" aria-hidden="true">
        {label}
      </span>
      <output aria-label={label} title={hint}>
        {value}
      </output>
    </div>
  );
}

const LayerTable = memo(function LayerTable({ report }: { report: AnalysisReport }) {
  // Rows are rendered only while the breakdown is open (a 100+ layer table costs every edit).
  const [open, setOpen] = useState(false);
  return (
    <details className="layer-table" open={open} onToggle={(e) => setOpen(e.currentTarget.open)}>
      <summary>Per-layer breakdown ({report.layers.length} layers)</summary>
      {open ? (
      <table aria-label="Per-layer breakdown">
        <thead>
          <tr>
            <th>#</th>
            <th>kind</th>
            <th>params</th>
            <th>active</th>
            <th>FLOPs/token</th>
            <th>KV/token</th>
            <th>state</th>
            <th>decode</th>
          </tr>
        </thead>
        <tbody>
          {report.layers.map((l) => (
            <tr key={l.index}>
              <td>{l.index}</td>
              <td>{l.kind}</td>
              <td>{formatCount(l.params)}</td>
              <td>{formatCount(l.active_params)}</td>
              <td>{formatFlops(l.forward_flops_per_token)}</td>
              <td>{l.kv_cache_bytes_per_token ? formatBytesBinary(l.kv_cache_bytes_per_token) : '-'}</td>
              <td>{l.state_bytes_per_sequence ? formatBytesBinary(l.state_bytes_per_sequence) : '-'}</td>
              <td>{l.decode.bound}</td>
            </tr>
          ))}
        </tbody>
      </table>
      ) : null}
    </details>
  );
});

export function AnalyticsPanel() {
  const model = useDocumentStore((s) => s.doc.model);
  const context = usePrefsStore((s) => s.context);
  const hardware = usePrefsStore((s) => s.hardware);
  const { result, stale } = useAnalysis(model, context, hardware);
  const hw = HARDWARE[hardware];
  return (
    <section className={`analytics${stale ? ' stale' : ''}`} aria-label="Analytics" aria-busy={stale}>
      <div className="analytics-controls">
        <label>
          <span>Context</span>
          <select aria-label="Context length" value={context} onChange={(e) => usePrefsStore.getState().setContext(Number(e.target.value))}>
            {CONTEXT_CHOICES.map((c) => (
              <option key={c} value={c}>
                {formatContext(c)}
              </option>
            ))}
          </select>
        </label>
        <label>
          <span>GPU</span>
          <select aria-label="Hardware profile" value={hardware} onChange={(e) => usePrefsStore.getState().setHardware(e.target.value)}>
            {HARDWARE_IDS.map((id) => (
              <option key={id} value={id}>
                {HARDWARE[id]!.name}
              </option>
            ))}
          </select>
        </label>
      </div>
      {result === null ? (
        <p className="muted">Analysing…</p>
      ) : result.ok ? (
        <Report report={result.report} gpuName={hw?.name ?? hardware} />
      ) : (
        <div className="issue error" role="alert">
          Analytics unavailable: {result.error}
        </div>
      )}
    </section>
  );
}

function Report({ report, gpuName }: { report: AnalysisReport; gpuName: string }) {
  const p = report.params;
  const atContext = report.memory.at_context.find((m) => m.context === report.context);
  const inference = atContext ?? {
    weight_bytes: report.memory.weights.total_bytes,
    kv_cache_bytes: report.memory.kv_cache_bytes_per_token * report.context,
    state_bytes: report.memory.state_bytes_per_sequence,
    total_bytes: report.memory.weights.total_bytes + report.memory.kv_cache_bytes_per_token * report.context + report.memory.state_bytes_per_sequence,
  };
  const device = report.roofline.hardware.memory_bytes;
  const fits = inference.total_bytes <= device;
  const trainFits = report.memory.training.total_bytes <= device;
  const r = report.roofline;
  return (
    <>
      <div className="readouts">
        <Readout label="Total parameters" value={formatCount(p.total)} hint={`${p.total.toLocaleString('en-US')} parameters${p.mtp ? ` (+${formatCount(p.mtp.total)} MTP)` : ''}`} />
        <Readout label="Active parameters" value={formatCount(p.active)} hint={`${formatCount(p.active_without_embedding)} without the input embedding`} />
        <Readout label="FLOPs per token" value={formatFlops(report.flops.forward_per_token)} hint={`forward at ${formatContext(report.context)} context; training ${formatFlops(report.flops.training_per_token)}`} />
        <Readout label="Weights" value={formatBytesBinary(report.memory.weights.total_bytes)} />
        <Readout label="KV cache" value={formatBytesBinary(inference.kv_cache_bytes)} hint={`${formatBytesBinary(report.memory.kv_cache_bytes_per_token)} per token`} />
        <Readout label="Mamba state" value={formatBytesBinary(inference.state_bytes)} hint="per sequence, whatever the context" />
        <Readout label="Inference memory" value={formatBytesBinary(inference.total_bytes)} hint={`one sequence of ${formatContext(report.context)} tokens`} />
        <Readout label="Training memory" value={formatBytesBinary(report.memory.training.total_bytes)} hint="weights, fp32 master/grads/AdamW, activations" />
      </div>
      <p className={`verdict ${fits ? 'ok' : 'bad'}`} role="status" aria-label="Fits verdict">
        {fits
          ? `Fits on ${gpuName}: ${formatContext(report.context)} context, up to ${r.max_batch_in_memory} sequences in memory.`
          : `Does not fit on ${gpuName}: needs ${formatBytesBinary(inference.total_bytes)} of ${formatBytesBinary(device)}.`}{' '}
        {trainFits ? 'Training fits on one GPU.' : 'Training needs more than one GPU.'}
      </p>
      <div className="readouts">
        <Readout label="Prefill throughput" value={formatRate(r.prefill.tokens_per_s)} hint={`${Math.round(r.prefill.compute_bound_share * 100)}% compute-bound`} />
        <Readout label="Decode throughput" value={formatRate(r.decode.tokens_per_s)} hint={`batch ${r.decode.batch}, ${Math.round(r.decode.compute_bound_share * 100)}% compute-bound`} />
        <Readout label="Training throughput" value={formatRate(r.train.tokens_per_s)} />
      </div>
      {r.hardware.emulated.length ? (
        <p className="muted">
          {r.hardware.name}: {r.hardware.emulated.join(', ')} emulated (quantize-dequantize) at the {r.hardware.native.includes('bf16') ? 'BF16' : 'native'} rate.
        </p>
      ) : null}
      <LayerTable report={report} />
    </>
  );
}
