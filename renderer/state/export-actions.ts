// The pipeline's export step: its settings (output folders of the Hugging Face folder and of the
// Megatron-LM scale-out bundle, cluster size, the GPU the planner lays the default layout out for,
// optional TP/PP/EP/CP, whether to replace a non-empty folder) and the outcome of the last export
// of each kind (the folder written, its files, the exporter's notes such as the layout the planner
// chose), and the actions that run them through the host's ExportService.
// Not here: the exporters (strata CLI) or any rendering (nodes/ExportNode.tsx, panels/ExportSettings.tsx).
import { create } from 'zustand';
import type { MegatronExportOptions } from '../../electron/contract.js';
import { describeHostError, host } from '../host/host.js';
import { useDocumentStore, useViewStore } from './stores.js';

export type ExportTarget = 'hf' | 'megatron';
export const PARALLEL_FIELDS = ['tensorParallel', 'pipelineParallel', 'expertParallel', 'contextParallel'] as const;
export type ParallelField = (typeof PARALLEL_FIELDS)[number];
/** GPUs the CLI's planner knows (engine/spec/hardware.ts ids). */
export const PLANNER_GPUS = ['h100', 'h200', 'b200'] as const;

export interface ExportSettings {
  /** Output folders; empty means `exports/<model>-hf` / `exports/<model>-megatron` in the workspace. */
  hfDir: string;
  megatronDir: string;
  nodes: number;
  gpusPerNode: number;
  gpu: (typeof PLANNER_GPUS)[number];
  /** Parallel sizes; null lets the planner choose the fastest layout that fits. */
  parallel: Record<ParallelField, number | null>;
  replace: boolean;
}

export type ExportOutcome =
  | { state: 'running'; outDir: string }
  | { state: 'done'; outDir: string; files: string[]; notes: string[] }
  | { state: 'failed'; outDir: string; message: string };

interface ExportState {
  settings: ExportSettings;
  outcome: Partial<Record<ExportTarget, ExportOutcome>>;
  update(patch: Partial<ExportSettings>): void;
}

export const DEFAULT_EXPORT_SETTINGS: ExportSettings = {
  hfDir: '',
  megatronDir: '',
  nodes: 1,
  gpusPerNode: 8,
  gpu: 'h100',
  parallel: { tensorParallel: null, pipelineParallel: null, expertParallel: null, contextParallel: null },
  replace: false,
};

export const useExportStore = create<ExportState>()((set) => ({
  settings: DEFAULT_EXPORT_SETTINGS,
  outcome: {},
  update: (patch) => set((s) => ({ settings: { ...s.settings, ...patch } })),
}));

const safeName = (name: string) => name.replace(/[^A-Za-z0-9._-]+/g, '-') || 'model';

/** The folder an export of `target` writes (the setting, or the default under exports/). */
export function exportFolder(target: ExportTarget, settings: ExportSettings, modelName: string): string {
  const chosen = (target === 'hf' ? settings.hfDir : settings.megatronDir).trim();
  return chosen || `exports/${safeName(modelName)}-${target}`;
}

/** The Megatron export options of the settings: parallel sizes only where the user set them. */
export function megatronOptions(settings: ExportSettings): MegatronExportOptions {
  const options: MegatronExportOptions = { nodes: settings.nodes, gpusPerNode: settings.gpusPerNode, gpu: settings.gpu, replace: settings.replace };
  for (const field of PARALLEL_FIELDS) {
    const value = settings.parallel[field];
    if (value !== null) options[field] = value;
  }
  return options;
}

/** The exporter's "strata: note: ..." lines (e.g. the layout the planner chose), without the prefix. */
export function exportNotes(log: string): string[] {
  return log
    .split('\n')
    .map((line) => /^strata: note: (.*)$/.exec(line.trim())?.[1])
    .filter((note): note is string => Boolean(note));
}

/** Exports the design in the editor; the outcome (folder, files, notes, or the error) is kept for display. */
export async function exportDesign(target: ExportTarget): Promise<void> {
  const { settings } = useExportStore.getState();
  const doc = useDocumentStore.getState().doc;
  const outDir = exportFolder(target, settings, doc.model.name);
  const setOutcome = (outcome: ExportOutcome) => useExportStore.setState((s) => ({ outcome: { ...s.outcome, [target]: outcome } }));
  const what = target === 'hf' ? 'Hugging Face folder' : 'Megatron-LM bundle';
  setOutcome({ state: 'running', outDir });
  useViewStore.getState().setStatus(`Exporting the ${what} to ${outDir}…`);
  try {
    const result =
      target === 'hf' ? await host().exports.exportHf({ doc }, outDir, { replace: settings.replace }) : await host().exports.exportMegatron(doc, outDir, megatronOptions(settings));
    setOutcome({ state: 'done', outDir: result.outDir, files: result.files, notes: exportNotes(result.log) });
    useViewStore.getState().setStatus(`Wrote the ${what}: ${result.files.length} files in ${result.outDir}`);
  } catch (error) {
    const message = describeHostError(error).message;
    setOutcome({ state: 'failed', outDir, message });
    useViewStore.getState().setStatus(`Export failed: ${message}`, 'error');
  }
}
