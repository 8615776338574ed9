// Layer-editor node of an attention block: query/KV heads, head_dim, RoPE or none, window.
// Rendering only; editing happens in the inspector.
import type { NodeProps } from '@xyflow/react';
import { memo } from 'react';
import type { BlockNodeType } from '../canvas/layer-graph.js';
import { BlockFrame } from './BlockFrame.js';

export const AttentionNode = memo(function AttentionNode({ data, selected }: NodeProps<BlockNodeType>) {
  const b = data.block;
  if (b.kind !== 'attention') return null;
  const rope = b.rope ? `RoPE ${b.rope.theta}` : 'no RoPE';
  const window = b.sliding_window ? `, window ${b.sliding_window}` : '';
  const summary = `${b.heads}q/${b.kv_heads}kv x ${b.head_dim}, ${rope}${window}`;
  return <BlockFrame kind="attention" data={data} selected={!!selected} summary={summary} />;
});
