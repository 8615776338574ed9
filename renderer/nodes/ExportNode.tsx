// Pipeline node: export of the design to a Hugging Face `nemotron_h` folder and to a Megatron-LM
// scale-out bundle, with the settings of the export inspector (panels/ExportSettings.tsx: folders,
// nodes x GPUs, layout or the planner's choice). The node shows where each export last wrote.
// Not the actions (state/export-actions.ts).
import type { NodeProps } from '@xyflow/react';
import { memo } from 'react';
import { type ExportOutcome, exportDesign, useExportStore } from '../state/export-actions.js';
import { PipelineFrame } from './PipelineFrame.js';

function outcomeLine(title: string, outcome: ExportOutcome | undefined): string {
  if (!outcome) return `${title}: not yet`;
  if (outcome.state === 'running') return `${title}: writing…`;
  if (outcome.state === 'failed') return `${title}: failed`;
  const folder = outcome.outDir.split(/[\\/]/).filter(Boolean).at(-1) ?? outcome.outDir;
  return `${title}: ${folder} (${outcome.files.length} files)`;
}

export const ExportNode = memo(function ExportNode({ selected }: NodeProps) {
  const outcome = useExportStore((s) => s.outcome);
  const cluster = useExportStore((s) => `${s.settings.nodes}x${s.settings.gpusPerNode} GPUs`);
  const busy = outcome.hf?.state === 'running' || outcome.megatron?.state === 'running';
  return (
    <PipelineFrame
      stage="export"
      title="Export"
      lines={[outcomeLine('HF', outcome.hf), outcomeLine(`Megatron ${cluster}`, outcome.megatron)]}
      selected={!!selected}
      output={false}
    >
      <button type="button" disabled={busy} onClick={() => void exportDesign('hf')}>
        Export to Hugging Face
      </button>
      <button type="button" disabled={busy} onClick={() => void exportDesign('megatron')}>
        Export to Megatron-LM
      </button>
    </PipelineFrame>
  );
});
