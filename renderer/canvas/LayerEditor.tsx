// The layer-stack editor: the model's stack as a React Flow graph (one node per block, repeat
// groups as containers that collapse to one line), with the palette and pattern field. Click to
// select (Shift/Ctrl adds), drag a node up or down to reorder, connect an output to an input to
// make that layer follow, drop palette items to insert. Only nodes whose inputs changed get new
// objects (layer-graph.ts), and off-screen nodes are not rendered, so 100+ layer designs stay
// smooth. Not the node visuals (renderer/nodes/).
import {
  Background,
  type Connection,
  Controls,
  MiniMap,
  type NodeChange,
  ReactFlow,
  ReactFlowProvider,
  type XYPosition,
  useReactFlow,
} from '@xyflow/react';
import { useCallback, useMemo, useRef, useState } from 'react';
import type { BlockKind } from '../../engine/spec/document.js';
import { AttentionNode } from '../nodes/AttentionNode.js';
import { Mamba2Node } from '../nodes/Mamba2Node.js';
import { MlpNode } from '../nodes/MlpNode.js';
import { MoeNode } from '../nodes/MoeNode.js';
import { RepeatGroupNode } from '../nodes/RepeatGroupNode.js';
import { addBlock, connect, moveTo } from '../state/document-actions.js';
import { validationOf } from '../state/selectors.js';
import { useDocumentStore, useSelectionStore, useViewStore } from '../state/stores.js';
import { BLOCK_HEIGHT, type LayerNode, type NodeCache, buildLayerGraph, innerIndexAt, slotIndexAt } from './layer-graph.js';
import { PALETTE_MIME, Palette } from './Palette.js';
import { PatternField } from './PatternField.js';

const NO_DRAG: ReadonlyMap<string, XYPosition> = new Map();

const nodeTypes = {
  mamba2: Mamba2Node,
  attention: AttentionNode,
  moe: MoeNode,
  mlp: MlpNode,
  repeat: RepeatGroupNode,
};

export function LayerEditor() {
  return (
    <ReactFlowProvider>
      <LayerEditorFlow />
    </ReactFlowProvider>
  );
}

function LayerEditorFlow() {
  const doc = useDocumentStore((s) => s.doc);
  const selectedIds = useSelectionStore((s) => s.ids);
  const cache = useRef<NodeCache>(new Map());
  const flow = useReactFlow<LayerNode>();
  const stack = doc.model.stack;
  const byNode = validationOf(doc).byNode;
  const selected = useMemo(() => new Set(selectedIds), [selectedIds]);
  const graph = useMemo(() => buildLayerGraph(stack, byNode, selected, cache.current), [stack, byNode, selected]);
  // Positions of nodes being dragged; everything else comes straight from the document, so an
  // edit renders once (no copy of the nodes to sync). The document changes on drop.
  const [dragged, setDragged] = useState<ReadonlyMap<string, XYPosition>>(NO_DRAG);
  const nodes = useMemo(
    () => (dragged.size === 0 ? graph.nodes : graph.nodes.map((n) => (dragged.has(n.id) ? { ...n, position: dragged.get(n.id)!, dragging: true } : n))),
    [graph, dragged],
  );
  // The first view frames the first few blocks and their repeat groups at a readable zoom (fitting
  // every node of a large design would shrink everything).
  const firstBlocks = useMemo(() => {
    const blocks = graph.nodes.filter((n) => n.type !== 'repeat').slice(0, 8);
    const groups = new Set(blocks.map((n) => n.parentId).filter((id): id is string => Boolean(id)));
    return [...groups, ...blocks.map((n) => n.id)].map((id) => ({ id }));
  }, [graph]);

  const onNodesChange = useCallback((changes: NodeChange<LayerNode>[]) => {
    const moves = changes.filter((c) => c.type === 'position' && c.position && c.dragging);
    if (moves.length === 0) return;
    setDragged((current) => {
      const next = new Map(current);
      for (const c of moves) if (c.type === 'position' && c.position) next.set(c.id, c.position);
      return next;
    });
  }, []);

  const onNodeDragStop = useCallback(
    (_: unknown, node: LayerNode) => {
      if (node.parentId) {
        const group = stack.find((i) => i.id === node.parentId);
        if (group?.kind === 'repeat') moveTo(node.id, innerIndexAt(group, node.position.y, node.id));
      } else {
        moveTo(node.id, slotIndexAt(graph.slots, node.position.y + BLOCK_HEIGHT / 2, node.id));
      }
      setDragged(NO_DRAG); // back to the layout (the new one if the node moved)
    },
    [stack, graph],
  );

  const onConnect = useCallback((c: Connection) => {
    if (c.source && c.target) connect(c.source, c.target);
  }, []);

  const onDrop = useCallback(
    (event: React.DragEvent) => {
      const kind = event.dataTransfer.getData(PALETTE_MIME) as BlockKind;
      if (!kind) return;
      event.preventDefault();
      const point = flow.screenToFlowPosition({ x: event.clientX, y: event.clientY });
      addBlock(kind, slotIndexAt(graph.slots, point.y));
    },
    [graph, flow],
  );

  return (
    <div className="layer-editor">
      <div className="layer-editor-bar">
        <button type="button" onClick={() => useViewStore.getState().setScreen('pipeline')}>
          Back to pipeline
        </button>
        <PatternField />
      </div>
      <div className="layer-editor-body">
        <Palette />
        <div
          className="canvas"
          role="region"
          aria-label="Layer stack editor"
          onDragOver={(e) => {
            if (e.dataTransfer.types.includes(PALETTE_MIME)) {
              e.preventDefault();
              e.dataTransfer.dropEffect = 'copy';
            }
          }}
          onDrop={onDrop}
        >
          <ReactFlow<LayerNode>
            nodes={nodes}
            edges={graph.edges}
            nodeTypes={nodeTypes}
            onNodesChange={onNodesChange}
            onNodeDragStop={onNodeDragStop}
            onConnect={onConnect}
            onNodeClick={(event, node) => {
              const s = useSelectionStore.getState();
              if (event.shiftKey || event.metaKey || event.ctrlKey) s.toggle(node.id);
              else s.select([node.id]);
            }}
            onPaneClick={() => useSelectionStore.getState().select([])}
            deleteKeyCode={null}
            selectionKeyCode={null}
            multiSelectionKeyCode={null}
            onlyRenderVisibleElements
            minZoom={0.1}
            fitView
            fitViewOptions={{ maxZoom: 1, minZoom: 0.6, nodes: firstBlocks }}
            proOptions={{ hideAttribution: true }}
          >
            <Background />
            <Controls showInteractive={false} />
            <MiniMap pannable zoomable ariaLabel="Layer stack overview" />
          </ReactFlow>
        </div>
      </div>
    </div>
  );
}
