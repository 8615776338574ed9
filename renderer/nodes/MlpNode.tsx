// Layer-editor node of a dense MLP block: hidden width and activation.
// Rendering only; editing happens in the inspector.
import type { NodeProps } from '@xyflow/react';
import { memo } from 'react';
import type { BlockNodeType } from '../canvas/layer-graph.js';
import { BlockFrame } from './BlockFrame.js';

export const MlpNode = memo(function MlpNode({ data, selected }: NodeProps<BlockNodeType>) {
  const b = data.block;
  if (b.kind !== 'mlp') return null;
  return <BlockFrame kind="mlp" data={data} selected={!!selected} summary={`ffn ${b.ffn}, ${b.activation}`} />;
});
