// The pipeline canvas: dataset -> tokenizer -> model -> train -> evaluate / profile / export as a
// fixed React Flow graph. Nodes can be moved (positions are kept in the document's view part),
// clicked to show their settings in the inspector; double-clicking the model opens the
// layer-stack editor. Not the node contents (renderer/nodes/*Node.tsx).
import { Background, Controls, type Edge, type Node, type NodeChange, ReactFlow, applyNodeChanges } from '@xyflow/react';
import { useCallback, useEffect, useMemo, useState } from 'react';
import { DatasetNode } from '../nodes/DatasetNode.js';
import { EvaluateNode } from '../nodes/EvaluateNode.js';
import { ExportNode } from '../nodes/ExportNode.js';
import { ModelNode } from '../nodes/ModelNode.js';
import { ProfileNode } from '../nodes/ProfileNode.js';
import { TokenizerNode } from '../nodes/TokenizerNode.js';
import { TrainNode } from '../nodes/TrainNode.js';
import { setDocumentField } from '../state/document-actions.js';
import { type PipelineNodeId, useDocumentStore, useSelectionStore, useViewStore } from '../state/stores.js';

const nodeTypes = {
  dataset: DatasetNode,
  tokenizer: TokenizerNode,
  model: ModelNode,
  train: TrainNode,
  evaluate: EvaluateNode,
  profile: ProfileNode,
  export: ExportNode,
};

/** Default positions of the pipeline nodes. */
const LAYOUT: Record<PipelineNodeId, { x: number; y: number }> = {
  dataset: { x: 0, y: 120 },
  tokenizer: { x: 240, y: 120 },
  model: { x: 480, y: 120 },
  train: { x: 760, y: 120 },
  evaluate: { x: 1040, y: 0 },
  profile: { x: 1040, y: 150 },
  export: { x: 1040, y: 300 },
};

const EDGES: Edge[] = [
  ['dataset', 'tokenizer'],
  ['tokenizer', 'model'],
  ['model', 'train'],
  ['train', 'evaluate'],
  ['train', 'profile'],
  ['train', 'export'],
].map(([source, target]) => ({ id: `${source}->${target}`, source: source!, target: target!, animated: source === 'train' }));

export const positionKey = (id: PipelineNodeId) => `pipeline:${id}`;

export function PipelineCanvas() {
  const positions = useDocumentStore((s) => s.doc.view.positions);
  const selectedNode = useSelectionStore((s) => s.pipelineNode);
  const built: Node[] = useMemo(
    () =>
      (Object.keys(LAYOUT) as PipelineNodeId[]).map((id) => ({
        id,
        type: id,
        position: positions[positionKey(id)] ?? LAYOUT[id],
        selected: selectedNode === id,
        data: {},
      })),
    [positions, selectedNode],
  );
  // React Flow draws drags from local node state; the document gets the position on drop.
  const [nodes, setNodes] = useState(built);
  useEffect(() => setNodes(built), [built]);
  const onNodesChange = useCallback((changes: NodeChange[]) => {
    setNodes((current) => applyNodeChanges(changes.filter((c) => c.type === 'position' || c.type === 'dimensions'), current));
  }, []);
  const onNodeDragStop = useCallback((_: unknown, node: Node) => {
    setDocumentField(['view', 'positions', positionKey(node.id as PipelineNodeId)], { x: Math.round(node.position.x), y: Math.round(node.position.y) });
  }, []);
  return (
    <div className="canvas" aria-label="Pipeline canvas" role="region">
      <ReactFlow
        nodes={nodes}
        edges={EDGES}
        nodeTypes={nodeTypes}
        onNodesChange={onNodesChange}
        onNodeDragStop={onNodeDragStop}
        onNodeClick={(_, node) => useSelectionStore.getState().selectPipeline(node.id as PipelineNodeId)}
        onNodeDoubleClick={(_, node) => {
          if (node.id === 'model') useViewStore.getState().setScreen('layers');
        }}
        deleteKeyCode={null}
        nodesConnectable={false}
        fitView
        proOptions={{ hideAttribution: true }}
      >
        <Background />
        <Controls showInteractive={false} />
      </ReactFlow>
    </div>
  );
}
