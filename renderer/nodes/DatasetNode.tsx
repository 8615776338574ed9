// Pipeline node: the dataset (bundled corpus, a file, or a synthetic task). Edited in the inspector.
import type { NodeProps } from '@xyflow/react';
import { memo } from 'react';
import { useDocumentStore } from '../state/stores.js';
import { PipelineFrame } from './PipelineFrame.js';

export const DatasetNode = memo(function DatasetNode({ selected }: NodeProps) {
  const dataset = useDocumentStore((s) => s.doc.pipeline.dataset);
  const lines =
    dataset.source === 'corpus'
      ? ['bundled English corpus', `held-out ${dataset.heldout_fraction * 100}%`]
      : dataset.source === 'file'
        ? [dataset.path, `field "${dataset.text_field}"`]
        : [`synthetic: ${dataset.task}`, dataset.task === 'mqar' ? `${dataset.num_pairs} pairs` : `distance ${dataset.distance}`];
  return <PipelineFrame stage="dataset" title="Dataset" lines={lines} selected={!!selected} input={false} />;
});
