// Turns the layer stack into React Flow nodes and edges: a vertical column of block nodes, repeat
// groups as container nodes (their blocks as child nodes when expanded, a one-line summary when
// collapsed), and one edge per consecutive pair (the residual stream order). Node objects are
// reused while their inputs are unchanged, so React Flow re-renders only the edited layers.
// Node sizes are known up front (initialWidth/Height), so nodes show and off-screen culling works
// before React Flow measures them. Node data is plain data (no functions). Not the React
// component (LayerEditor.tsx).
import type { Edge, Node } from '@xyflow/react';
import type { Block, BlockKind, RepeatGroup, StackItem } from '../../engine/spec/document.js';
import type { DocIssue } from '../../engine/spec/validate.js';

export const NODE_WIDTH = 260;
export const BLOCK_HEIGHT = 64;
export const GAP = 18;
export const GROUP_HEADER = 44;
export const GROUP_PAD = 12;
export const COLLAPSED_HEIGHT = 64;

export interface BlockNodeData extends Record<string, unknown> {
  block: Block;
  /** First flattened layer index this block runs as. */
  layer: number;
  /** Repeats of the enclosing group (1 at top level). */
  repeats: number;
  /** Id of the enclosing repeat group, if any. */
  groupId: string | null;
  issues: DocIssue[];
}

export interface GroupNodeData extends Record<string, unknown> {
  group: RepeatGroup;
  layer: number;
  issues: DocIssue[];
}

export type BlockNodeType = Node<BlockNodeData, BlockKind>;
export type GroupNodeType = Node<GroupNodeData, 'repeat'>;
export type LayerNode = BlockNodeType | GroupNodeType;

export interface LayerGraph {
  nodes: LayerNode[];
  edges: Edge[];
  /** Top-level item ids in stack order with their y extent (for drop/reorder by position). */
  slots: Array<{ id: string; top: number; bottom: number }>;
}

const NO_ISSUES: DocIssue[] = [];

/** Height of a top-level item's node. */
export function itemHeight(item: StackItem): number {
  if (item.kind !== 'repeat') return BLOCK_HEIGHT;
  if (item.collapsed) return COLLAPSED_HEIGHT;
  return GROUP_HEADER + item.blocks.length * (BLOCK_HEIGHT + GAP) - GAP + GROUP_PAD;
}

/** A cache of node objects from the previous build, by node id. */
export type NodeCache = Map<string, LayerNode>;

function same(a: LayerNode | undefined, b: LayerNode): boolean {
  if (!a || a.type !== b.type || a.position.x !== b.position.x || a.position.y !== b.position.y) return false;
  if (a.selected !== b.selected || a.parentId !== b.parentId || a.style?.height !== b.style?.height) return false;
  const da = a.data as Record<string, unknown>;
  const db = b.data as Record<string, unknown>;
  for (const key of Object.keys(db)) if (da[key] !== db[key]) return false;
  return true;
}

/**
 * Builds the graph. `cache` holds the previous build's nodes and is updated in place; a node is
 * returned as the same object when nothing it shows changed.
 */
export function buildLayerGraph(
  stack: readonly StackItem[],
  issuesByNode: ReadonlyMap<string, DocIssue[]>,
  selected: ReadonlySet<string>,
  cache: NodeCache,
): LayerGraph {
  const nodes: LayerNode[] = [];
  const edges: Edge[] = [];
  const slots: LayerGraph['slots'] = [];
  const seen = new Set<string>();
  const keep = (node: LayerNode) => {
    const previous = cache.get(node.id);
    const chosen = same(previous, node) ? previous! : node;
    cache.set(node.id, chosen);
    seen.add(node.id);
    nodes.push(chosen);
  };
  let y = 0;
  let layer = 0;
  let previousId: string | null = null;
  for (const item of stack) {
    const id = item.id!;
    const height = itemHeight(item);
    if (item.kind === 'repeat') {
      keep({
        id,
        type: 'repeat',
        position: { x: 0, y },
        selected: selected.has(id),
        initialWidth: NODE_WIDTH + 2 * GROUP_PAD,
        initialHeight: height,
        style: { width: NODE_WIDTH + 2 * GROUP_PAD, height },
        data: { group: item, layer, issues: issuesByNode.get(id) ?? NO_ISSUES },
      });
      if (!item.collapsed) {
        let innerPrevious: string | null = null;
        item.blocks.forEach((block, inner) => {
          const blockId = block.id!;
          keep({
            id: blockId,
            type: block.kind,
            parentId: id,
            extent: 'parent',
            position: { x: GROUP_PAD, y: GROUP_HEADER + inner * (BLOCK_HEIGHT + GAP) },
            initialWidth: NODE_WIDTH,
            initialHeight: BLOCK_HEIGHT,
            selected: selected.has(blockId),
            data: { block, layer: layer + inner, repeats: item.count, groupId: id, issues: issuesByNode.get(blockId) ?? NO_ISSUES },
          });
          if (innerPrevious) edges.push({ id: `${innerPrevious}->${blockId}`, source: innerPrevious, target: blockId });
          innerPrevious = blockId;
        });
      }
      layer += item.count * item.blocks.length;
    } else {
      keep({
        id,
        type: item.kind,
        position: { x: GROUP_PAD, y },
        initialWidth: NODE_WIDTH,
        initialHeight: BLOCK_HEIGHT,
        selected: selected.has(id),
        data: { block: item, layer, repeats: 1, groupId: null, issues: issuesByNode.get(id) ?? NO_ISSUES },
      });
      layer += 1;
    }
    if (previousId) edges.push({ id: `${previousId}->${id}`, source: previousId, target: id });
    previousId = id;
    slots.push({ id, top: y, bottom: y + height });
    y += height + GAP;
  }
  for (const key of [...cache.keys()]) if (!seen.has(key)) cache.delete(key);
  return { nodes, edges, slots };
}

/** Top-level position an item dropped with its top edge at `y` should move to. */
export function slotIndexAt(slots: LayerGraph['slots'], y: number, movingId?: string): number {
  let index = 0;
  for (const slot of slots) {
    if (slot.id === movingId) continue;
    if ((slot.top + slot.bottom) / 2 < y) index++;
  }
  return index;
}

/** Inner position a block dragged to `y` (relative to its group) should move to. */
export function innerIndexAt(group: RepeatGroup, y: number, movingId: string): number {
  const others = group.blocks.filter((b) => b.id !== movingId);
  return others.filter((_, i) => GROUP_HEADER + i * (BLOCK_HEIGHT + GAP) + BLOCK_HEIGHT / 2 < y + BLOCK_HEIGHT / 2).length;
}
