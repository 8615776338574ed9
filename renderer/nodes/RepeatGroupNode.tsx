// Layer-editor node of a repeat group (xN): a container for its blocks when expanded, a one-line
// pattern summary when collapsed; the header edits the count and toggles collapse.
// Not the blocks inside (their own node kinds).
import { Handle, type NodeProps, Position } from '@xyflow/react';
import { memo } from 'react';
import { BLOCK_KIND_INFO } from '../model/block-defaults.js';
import type { GroupNodeType } from '../canvas/layer-graph.js';
import { setRepeatCount, toggleCollapsed } from '../state/document-actions.js';
import { IssueBadge } from './BlockFrame.js';

export const RepeatGroupNode = memo(function RepeatGroupNode({ data, selected }: NodeProps<GroupNodeType>) {
  const g = data.group;
  const id = g.id!;
  const pattern = g.blocks.map((b) => BLOCK_KIND_INFO[b.kind].letter).join('');
  const layers = g.count * g.blocks.length;
  const name = g.label || `Repeat ${pattern}`;
  return (
    <div className={`group-node${selected ? ' selected' : ''}${g.collapsed ? ' collapsed' : ''}`} role="group" aria-label={`${name} x${g.count}, layers ${data.layer} to ${data.layer + layers - 1}`}>
      <Handle type="target" position={Position.Top} aria-label={`${name} input`} />
      <div className="group-node-head">
        <button
          type="button"
          className="icon-button nodrag"
          aria-label={g.collapsed ? `Expand ${name}` : `Collapse ${name}`}
          aria-expanded={!g.collapsed}
          onClick={() => toggleCollapsed(id)}
        >
          {g.collapsed ? '▸' : '▾'}
        </button>
        <span className="group-node-title">{name}</span>
        <label className="group-count nodrag">
          <span aria-hidden="true">x</span>
          <input
            type="number"
            min={1}
            step={1}
            aria-label={`Repeat count of ${name}`}
            value={g.count}
            onChange={(e) => setRepeatCount(id, Number(e.target.value))}
          />
        </label>
        <IssueBadge issues={data.issues} />
      </div>
      {g.collapsed ? (
        <div className="group-node-summary">
          <code>{pattern}</code> x{g.count} = {layers} layers (L{data.layer}-L{data.layer + layers - 1})
        </div>
      ) : null}
      <Handle type="source" position={Position.Bottom} aria-label={`${name} output`} />
    </div>
  );
});
