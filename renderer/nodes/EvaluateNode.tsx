// Pipeline node: the evaluations (held-out perplexity/bits per byte, NLL by position, synthetic
// task accuracy) and their run button.
import type { NodeProps } from '@xyflow/react';
import { memo } from 'react';
import { startRun } from '../runs/runs-store.js';
import { useDocumentStore } from '../state/stores.js';
import { PipelineFrame } from './PipelineFrame.js';

export const EvaluateNode = memo(function EvaluateNode({ selected }: NodeProps) {
  const evaluations = useDocumentStore((s) => s.doc.pipeline.evaluations);
  const lines = evaluations.length ? [evaluations.map((e) => e.kind).join(', ')] : ['no evaluations'];
  return (
    <PipelineFrame stage="evaluate" title="Evaluate" lines={lines} selected={!!selected} output={false}>
      <button type="button" onClick={() => void startRun('eval')}>
        Run evaluation
      </button>
    </PipelineFrame>
  );
});
