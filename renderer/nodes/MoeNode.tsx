// Layer-editor node of a MoE block: experts, top-k, expert width, shared experts, LatentMoE size.
// Rendering only; editing happens in the inspector.
import type { NodeProps } from '@xyflow/react';
import { memo } from 'react';
import type { BlockNodeType } from '../canvas/layer-graph.js';
import { BlockFrame } from './BlockFrame.js';

export const MoeNode = memo(function MoeNode({ data, selected }: NodeProps<BlockNodeType>) {
  const b = data.block;
  if (b.kind !== 'moe') return null;
  const shared = b.shared_experts ? ` +${b.shared_experts} shared` : '';
  const latent = b.latent !== null ? `, latent ${b.latent}` : '';
  const summary = `${b.experts} experts top-${b.top_k}, ffn ${b.expert_ffn}${shared}${latent}`;
  return <BlockFrame kind="moe" data={data} selected={!!selected} summary={summary} />;
});
