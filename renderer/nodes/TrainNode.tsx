// Pipeline node: the training recipe (steps, batch, sequence length, schedule) and its run button.
import type { NodeProps } from '@xyflow/react';
import { memo } from 'react';
import { startRun } from '../runs/runs-store.js';
import { useDocumentStore } from '../state/stores.js';
import { PipelineFrame } from './PipelineFrame.js';

export const TrainNode = memo(function TrainNode({ selected }: NodeProps) {
  const t = useDocumentStore((s) => s.doc.pipeline.training);
  return (
    <PipelineFrame stage="train" title="Train" lines={[`${t.steps} steps, batch ${t.batch_size} x ${t.seq_len}`, `lr ${t.lr} ${t.schedule}, ${t.device}`]} selected={!!selected}>
      <button type="button" onClick={() => void startRun('train')}>
        Run training
      </button>
    </PipelineFrame>
  );
});
