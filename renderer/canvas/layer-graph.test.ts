// Tests of the layer graph builder: layout, edges, issue placement, collapse, and that unchanged
// layers keep their node objects across edits (so React Flow skips re-rendering them).
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import type { StackItem } from '../../engine/spec/document.js';
import { loadDocument } from '../../engine/spec/validate.js';
import { defaultBlock } from '../model/block-defaults.js';
import { ensureIds, updateBlock } from '../model/stack-edit.js';
import { validationOf } from '../state/selectors.js';
import { buildLayerGraph, innerIndexAt, slotIndexAt, type NodeCache } from './layer-graph.js';

const stack = (): StackItem[] =>
  ensureIds([
    defaultBlock('mamba2', 128),
    { kind: 'repeat', count: 3, collapsed: false, blocks: [defaultBlock('mamba2', 128), defaultBlock('moe', 128)] },
    defaultBlock('attention', 128),
  ]);

describe('buildLayerGraph', () => {
  it('lays out blocks, groups with children, edges and layer indices', () => {
    const s = stack();
    const g = buildLayerGraph(s, new Map(), new Set(), new Map());
    expect(g.nodes.map((n) => n.type)).toEqual(['mamba2', 'repeat', 'mamba2', 'moe', 'attention']);
    expect(g.nodes.filter((n) => n.parentId === s[1]!.id)).toHaveLength(2);
    expect(g.nodes.map((n) => n.data.layer)).toEqual([0, 1, 1, 2, 7]);
    expect(g.edges.map((e) => `${e.source}->${e.target}`)).toEqual([
      `${s[1]!.kind === 'repeat' ? s[1]!.blocks[0]!.id : ''}->${s[1]!.kind === 'repeat' ? s[1]!.blocks[1]!.id : ''}`,
      `${s[0]!.id}->${s[1]!.id}`,
      `${s[1]!.id}->${s[2]!.id}`,
    ]);
    expect(slotIndexAt(g.slots, -10)).toBe(0);
    expect(slotIndexAt(g.slots, 1e6)).toBe(3);
    expect(slotIndexAt(g.slots, 1e6, s[0]!.id)).toBe(2);
    if (s[1]!.kind === 'repeat') expect(innerIndexAt(s[1]!, 500, s[1]!.blocks[0]!.id!)).toBe(1);
  });

  it('hides the children of a collapsed group', () => {
    const s = stack();
    const collapsed = s.map((i) => (i.kind === 'repeat' ? { ...i, collapsed: true } : i));
    const g = buildLayerGraph(collapsed, new Map(), new Set(), new Map());
    expect(g.nodes.map((n) => n.type)).toEqual(['mamba2', 'repeat', 'attention']);
  });

  it('reuses node objects of unchanged layers after an edit', () => {
    const cache: NodeCache = new Map();
    const s = stack();
    const first = buildLayerGraph(s, new Map(), new Set(), cache);
    const edited = updateBlock(s, s[2]!.id!, (b) => ({ ...b, label: 'x' }));
    const second = buildLayerGraph(edited, new Map(), new Set(), cache);
    expect(second.nodes.slice(0, 4).every((n, i) => n === first.nodes[i])).toBe(true);
    expect(second.nodes[4]).not.toBe(first.nodes[4]);
  });

  it('puts validation issues on the offending node, inside groups too', () => {
    const text = readFileSync(new URL('../../templates/nemotron-3-nano-30b-a3b.json', import.meta.url), 'utf8');
    const doc = loadDocument(JSON.parse(text));
    doc.model.stack = ensureIds(doc.model.stack);
    const group = doc.model.stack.find((i) => i.kind === 'repeat')!;
    if (group.kind !== 'repeat') throw new Error('expected a repeat group');
    const attention = group.blocks.find((b) => b.kind === 'attention')!;
    doc.model.stack = updateBlock(doc.model.stack, attention.id!, (b) => ({ ...b, heads: 5 }));
    const { byNode } = validationOf(doc);
    const g = buildLayerGraph(doc.model.stack, byNode, new Set(), new Map());
    const node = g.nodes.find((n) => n.id === attention.id)!;
    expect(node.data.issues.map((i) => i.message)).toEqual([expect.stringMatching(/heads 5 is not a multiple of kv_heads 2/)]);
    expect(g.nodes.filter((n) => n.data.issues.length > 0)).toHaveLength(1);
  });
});
