// The shared frame of the pipeline canvas nodes (dataset, tokenizer, model, train, evaluate,
// profile, export): title, summary lines, optional actions, and the left/right handles of the
// fixed pipeline edges. The per-node files supply the content. Not a node type itself.
import { Handle, Position } from '@xyflow/react';
import type { ReactNode } from 'react';

interface Props {
  stage: string;
  title: string;
  lines: string[];
  selected: boolean;
  input?: boolean;
  output?: boolean;
  children?: ReactNode;
}

export function PipelineFrame({ stage, title, lines, selected, input = true, output = true, children }: Props) {
  return (
    <div className={`pipeline-node stage-${stage}${selected ? ' selected' : ''}`} role="group" aria-label={`${title} step`}>
      {input ? <Handle type="target" position={Position.Left} isConnectable={false} /> : null}
      <div className="pipeline-node-title">{title}</div>
      {lines.map((line) => (
        <div className="pipeline-node-line" key={line}>
          {line}
        </div>
      ))}
      {children ? <div className="pipeline-node-actions nodrag">{children}</div> : null}
      {output ? <Handle type="source" position={Position.Right} isConnectable={false} /> : null}
    </div>
  );
}
