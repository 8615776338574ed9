// Layer-editor node of a Mamba-2 block: heads x head_dim, state size, groups, chunk.
// Rendering only; editing happens in the inspector.
import type { NodeProps } from '@xyflow/react';
import { memo } from 'react';
import type { BlockNodeType } from '../canvas/layer-graph.js';
import { BlockFrame } from './BlockFrame.js';

export const Mamba2Node = memo(function Mamba2Node({ data, selected }: NodeProps<BlockNodeType>) {
  const b = data.block;
  if (b.kind !== 'mamba2') return null;
  const summary = `${b.heads}x${b.head_dim} heads, N=${b.d_state}, G=${b.groups}, chunk ${b.chunk}`;
  return <BlockFrame kind="mamba2" data={data} selected={!!selected} summary={summary} />;
});
