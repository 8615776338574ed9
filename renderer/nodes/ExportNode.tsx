// Pipeline node: export of the design to a Hugging Face `nemotron_h` folder or a Megatron-LM
// launch bundle, through the host's ExportService. The output folder is asked for each time.
import type { NodeProps } from '@xyflow/react';
import { memo, useState } from 'react';
import { describeHostError, host } from '../host/host.js';
import { askPath } from '../state/project-actions.js';
import { useDocumentStore, useViewStore } from '../state/stores.js';
import { PipelineFrame } from './PipelineFrame.js';

async function exportDesign(target: 'hf' | 'megatron', setBusy: (busy: boolean) => void): Promise<void> {
  const doc = useDocumentStore.getState().doc;
  const outDir = await askPath('save', `exports/${doc.model.name.replace(/[^A-Za-z0-9._-]+/g, '-')}-${target}`);
  if (!outDir) return;
  setBusy(true);
  try {
    const result = target === 'hf' ? await host().exports.exportHf({ doc }, outDir) : await host().exports.exportMegatron(doc, outDir, {});
    useViewStore.getState().setStatus(`Exported ${result.files.length} files to ${result.outDir}`);
  } catch (error) {
    useViewStore.getState().setStatus(`Export failed: ${describeHostError(error).message}`, 'error');
  } finally {
    setBusy(false);
  }
}

export const ExportNode = memo(function ExportNode({ selected }: NodeProps) {
  const [busy, setBusy] = useState(false);
  return (
    <PipelineFrame stage="export" title="Export" lines={['HF nemotron_h + safetensors', 'Megatron-LM bundle']} selected={!!selected} output={false}>
      <button type="button" disabled={busy} onClick={() => void exportDesign('hf', setBusy)}>
        Export to Hugging Face
      </button>
      <button type="button" disabled={busy} onClick={() => void exportDesign('megatron', setBusy)}>
        Export to Megatron-LM
      </button>
    </PipelineFrame>
  );
});
