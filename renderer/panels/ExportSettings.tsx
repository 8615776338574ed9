// The inspector of the pipeline's export step: where the Hugging Face folder and the Megatron-LM
// scale-out bundle go, the cluster (nodes, GPUs per node, the GPU the planner sizes for), optional
// TP/PP/EP/CP (blank: the planner picks the fastest layout that fits), replacing a non-empty
// folder, the two export buttons, and what the last export of each wrote (folder, files, notes).
// Not the export actions (state/export-actions.ts).
import { HARDWARE } from '../../engine/spec/hardware.js';
import {
  type ExportOutcome,
  type ExportTarget,
  PARALLEL_FIELDS,
  PLANNER_GPUS,
  type ParallelField,
  exportDesign,
  exportFolder,
  useExportStore,
} from '../state/export-actions.js';
import { useDocumentStore } from '../state/stores.js';

const PARALLEL_LABELS: Record<ParallelField, string> = {
  tensorParallel: 'Tensor parallel (TP)',
  pipelineParallel: 'Pipeline parallel (PP)',
  expertParallel: 'Expert parallel (EP)',
  contextParallel: 'Context parallel (CP)',
};
const TITLES: Record<ExportTarget, string> = { hf: 'Hugging Face folder', megatron: 'Megatron-LM bundle' };

/** A whole number >= 1 from a field, or null when it is blank or not one. */
function positive(text: string): number | null {
  const n = Number(text);
  return text.trim() && Number.isInteger(n) && n >= 1 ? n : null;
}

export function ExportOutcomeView({ target, outcome }: { target: ExportTarget; outcome: ExportOutcome | undefined }) {
  if (!outcome) return null;
  const label = `Last ${TITLES[target]} export`;
  if (outcome.state === 'running')
    return (
      <p className="muted" role="status" aria-label={label}>
        Writing {outcome.outDir}…
      </p>
    );
  if (outcome.state === 'failed')
    return (
      <div className="issue error" role="alert" aria-label={label}>
        {TITLES[target]} not written to {outcome.outDir}: {outcome.message}
      </div>
    );
  return (
    <div className="export-outcome" role="status" aria-label={label}>
      <p>
        Wrote {outcome.files.length} files to <code>{outcome.outDir}</code>
      </p>
      <ul className="export-files">
        {outcome.files.map((f) => (
          <li key={f}>{f}</li>
        ))}
      </ul>
      {outcome.notes.map((note) => (
        <p key={note} className="muted">
          {note}
        </p>
      ))}
    </div>
  );
}

export function ExportSettingsPanel() {
  const settings = useExportStore((s) => s.settings);
  const outcome = useExportStore((s) => s.outcome);
  const update = useExportStore((s) => s.update);
  const modelName = useDocumentStore((s) => s.doc.model.name);
  const busy = outcome.hf?.state === 'running' || outcome.megatron?.state === 'running';
  return (
    <section aria-label="Export settings" className="export-settings">
      <h2>Export</h2>
      <p className="muted">Relative folders are in the workspace folder.</p>
      <label className="field">
        <span>Hugging Face folder</span>
        <input type="text" value={settings.hfDir} placeholder={exportFolder('hf', { ...settings, hfDir: '' }, modelName)} onChange={(e) => update({ hfDir: e.target.value })} />
      </label>
      <button type="button" disabled={busy} onClick={() => void exportDesign('hf')}>
        Export to Hugging Face
      </button>
      <ExportOutcomeView target="hf" outcome={outcome.hf} />

      <h3>Scale-out (Megatron-LM)</h3>
      <label className="field">
        <span>Megatron-LM bundle folder</span>
        <input
          type="text"
          value={settings.megatronDir}
          placeholder={exportFolder('megatron', { ...settings, megatronDir: '' }, modelName)}
          onChange={(e) => update({ megatronDir: e.target.value })}
        />
      </label>
      <div className="field-row">
        <label className="field">
          <span>Nodes</span>
          <input type="number" min={1} step={1} value={settings.nodes} onChange={(e) => update({ nodes: positive(e.target.value) ?? settings.nodes })} />
        </label>
        <label className="field">
          <span>GPUs per node</span>
          <input type="number" min={1} step={1} value={settings.gpusPerNode} onChange={(e) => update({ gpusPerNode: positive(e.target.value) ?? settings.gpusPerNode })} />
        </label>
      </div>
      <label className="field">
        <span>Planner GPU</span>
        <select value={settings.gpu} onChange={(e) => update({ gpu: e.target.value as (typeof PLANNER_GPUS)[number] })}>
          {PLANNER_GPUS.map((id) => (
            <option key={id} value={id}>
              {HARDWARE[id]?.name ?? id}
            </option>
          ))}
        </select>
      </label>
      <fieldset className="parallel-layout">
        <legend>Layout (blank: chosen by the planner)</legend>
        {PARALLEL_FIELDS.map((field) => (
          <label className="field" key={field}>
            <span>{PARALLEL_LABELS[field]}</span>
            <input
              type="number"
              min={1}
              step={1}
              placeholder="planner"
              value={settings.parallel[field] ?? ''}
              onChange={(e) => update({ parallel: { ...settings.parallel, [field]: positive(e.target.value) } })}
            />
          </label>
        ))}
      </fieldset>
      <label className="check">
        <input type="checkbox" checked={settings.replace} onChange={(e) => update({ replace: e.target.checked })} />
        <span>Replace a folder that already has files</span>
      </label>
      <button type="button" disabled={busy} onClick={() => void exportDesign('megatron')}>
        Export to Megatron-LM
      </button>
      <ExportOutcomeView target="megatron" outcome={outcome.megatron} />
    </section>
  );
}
