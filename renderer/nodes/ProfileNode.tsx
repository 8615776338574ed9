// Pipeline node: profiling (train/prefill/decode at chosen contexts on a hardware profile) and its
// run button.
import type { NodeProps } from '@xyflow/react';
import { memo } from 'react';
import { startRun } from '../runs/runs-store.js';
import { useDocumentStore } from '../state/stores.js';
import { PipelineFrame } from './PipelineFrame.js';

export const ProfileNode = memo(function ProfileNode({ selected }: NodeProps) {
  const p = useDocumentStore((s) => s.doc.pipeline.profiling);
  return (
    <PipelineFrame stage="profile" title="Profile" lines={[p.modes.join(', '), `contexts ${p.contexts.join(', ')}`]} selected={!!selected} output={false}>
      <button type="button" onClick={() => void startRun('profile')}>
        Run profiling
      </button>
    </PipelineFrame>
  );
});
