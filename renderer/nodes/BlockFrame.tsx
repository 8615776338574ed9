// The shared frame of every layer-editor block node: kind colour, title, one summary line, the
// layer index (and xN inside repeat groups), validation issues shown on the node, and the
// top/bottom handles that connect layers in order. The per-kind files (Mamba2Node.tsx, ...)
// only supply the summary. Not a React Flow node type itself.
import { Handle, Position } from '@xyflow/react';
import { memo } from 'react';
import type { BlockKind } from '../../engine/spec/document.js';
import type { DocIssue } from '../../engine/spec/validate.js';
import { BLOCK_KIND_INFO } from '../model/block-defaults.js';
import type { BlockNodeData } from '../canvas/layer-graph.js';

export function IssueBadge({ issues }: { issues: DocIssue[] }) {
  if (issues.length === 0) return null;
  const errors = issues.filter((i) => i.severity === 'error').length;
  const text = issues.map((i) => i.message).join('\n');
  return (
    <span className={errors ? 'issue-badge error' : 'issue-badge warning'} role="status" aria-label={`${issues.length} problem(s): ${text}`} title={text}>
      {errors ? '!' : '?'} {issues.length}
    </span>
  );
}

interface FrameProps {
  kind: BlockKind;
  data: BlockNodeData;
  selected: boolean;
  summary: string;
}

export const BlockFrame = memo(function BlockFrame({ kind, data, selected, summary }: FrameProps) {
  const info = BLOCK_KIND_INFO[kind];
  const where = data.repeats > 1 ? `L${data.layer} x${data.repeats}` : `L${data.layer}`;
  const name = data.block.label || info.title;
  const firstError = data.issues.find((i) => i.severity === 'error');
  return (
    <div
      className={`block-node kind-${kind}${selected ? ' selected' : ''}${firstError ? ' has-error' : ''}`}
      aria-label={`${name} block, layer ${data.layer}${firstError ? `, error: ${firstError.message}` : ''}`}
      role="group"
    >
      <Handle type="target" position={Position.Top} aria-label={`${name} input`} />
      <div className="block-node-head">
        <span className="kind-letter" aria-hidden="true">
          {info.letter}
        </span>
        <span className="block-node-title">{name}</span>
        <span className="block-node-where">{where}</span>
        <IssueBadge issues={data.issues} />
      </div>
      <div className="block-node-summary">{summary}</div>
      {firstError ? <div className="block-node-error">{firstError.message}</div> : null}
      <Handle type="source" position={Position.Bottom} aria-label={`${name} output`} />
    </div>
  );
});
