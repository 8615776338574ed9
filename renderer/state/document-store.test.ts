// Tests of the document slice's history (undo/redo, coalescing) and of the domain edits in
// document-actions.ts as the editor and keyboard shortcuts call them.
import { beforeEach, describe, expect, it } from 'vitest';
import { flattenStack } from '../../engine/spec/document.js';
import { resolvePrecision } from '../../engine/spec/precision.js';
import { HISTORY_LIMIT, pushHistory, startHistory, undoHistory } from './history.js';
import {
  addBlock,
  addBlockToGroup,
  applyPreset,
  connect,
  copySelection,
  deleteSelection,
  groupSelection,
  paintPrecision,
  pasteItems,
  setBlockField,
  setRepeatCount,
} from './document-actions.js';
import { isDirty } from './document-store.js';
import { resetStores, useDocumentStore, useSelectionStore } from './stores.js';

const state = () => useDocumentStore.getState();
const layerKinds = () => flattenStack(state().doc.model.stack).map((l) => l.block.kind);

beforeEach(() => resetStores());

describe('history', () => {
  it('coalesces same-key edits and caps its length', () => {
    let h = startHistory(0);
    h = pushHistory(h, 1, 'k');
    h = pushHistory(h, 2, 'k');
    expect(h.past).toEqual([0]);
    h = undoHistory(h);
    expect(h.present).toBe(0);
    for (let i = 0; i < HISTORY_LIMIT + 10; i++) h = pushHistory(h, i + 10);
    expect(h.past.length).toBe(HISTORY_LIMIT);
  });
});

describe('document edits', () => {
  it('adds a block after the selection and undoes/redoes it', () => {
    const before = layerKinds();
    const firstId = state().doc.model.stack[0]!.id!;
    useSelectionStore.getState().select([firstId]);
    addBlock('attention');
    expect(state().doc.model.stack[1]!.kind).toBe('attention');
    expect(layerKinds()).toHaveLength(before.length + 1);
    state().undo();
    expect(layerKinds()).toEqual(before);
    state().redo();
    expect(state().doc.model.stack[1]!.kind).toBe('attention');
  });

  it('merges consecutive edits of one field into one undo step', () => {
    const id = addBlock('mlp');
    const ffnBefore = (state().doc.model.stack.find((i) => i.id === id) as { ffn: number }).ffn;
    setBlockField(id, ['ffn'], 7);
    setBlockField(id, ['ffn'], 77);
    setBlockField(id, ['ffn'], 777);
    expect(state().doc.model.stack.find((i) => i.id === id)).toMatchObject({ ffn: 777 });
    state().undo();
    expect(state().doc.model.stack.find((i) => i.id === id)).toMatchObject({ ffn: ffnBefore, kind: 'mlp' });
    state().undo();
    expect(state().doc.model.stack.some((i) => i.id === id)).toBe(false);
  });

  it('deletes the selection, connects to reorder, and groups into repeats', () => {
    const x = addBlock('mlp', 0);
    const y = addBlock('attention', 0);
    expect(state().doc.model.stack.slice(0, 2).map((i) => i.id)).toEqual([y, x]);
    expect(connect(x, y)).toBe(true);
    expect(state().doc.model.stack.slice(0, 2).map((i) => i.id)).toEqual([x, y]);
    useSelectionStore.getState().select([x, y]);
    const g = groupSelection(3)!;
    const group = state().doc.model.stack[0]!;
    expect(group).toMatchObject({ kind: 'repeat', count: 3, id: g });
    setRepeatCount(g, 5);
    expect(state().doc.model.stack[0]).toMatchObject({ count: 5 });
    useSelectionStore.getState().select([g]);
    expect(deleteSelection()).toBe(true);
    expect(state().doc.model.stack.some((i) => i.id === g)).toBe(false);
  });

  it('adds a block inside a repeat group, repeated with it', () => {
    const group = state().doc.model.stack[0]!;
    if (group.kind !== 'repeat') throw new Error('starter design starts with a repeat group');
    const before = layerKinds().length;
    const id = addBlockToGroup('mlp', group.id!, 1);
    const updated = state().doc.model.stack[0]!;
    expect(updated.kind === 'repeat' && updated.blocks.map((b) => b.kind)).toEqual(['mamba2', 'mlp', 'moe']);
    expect(layerKinds()).toHaveLength(before + group.count);
    expect(useSelectionStore.getState().ids).toEqual([id]);
  });

  it('paints precision by appending a rule the resolver honours, and applies presets', () => {
    paintPrecision(2, 0, 'nvfp4');
    const rules = state().doc.model.precision.rules;
    expect(rules.at(-1)).toMatchObject({ select: { layers: { from: 0, to: 2 } }, format: 'nvfp4' });
    const table = resolvePrecision(state().doc.model);
    const formats = table.rows.filter((r) => r.scope === 'layer' && r.layer <= 2).map((r) => r.formats.fprop);
    expect(new Set(formats)).toEqual(new Set(['nvfp4']));
    applyPreset('mxfp8');
    expect(state().doc.model.precision.preset).toBe('mxfp8');
  });

  it('copies and pastes layers with fresh ids, ignoring foreign text', () => {
    const id = state().doc.model.stack[1]!.id!;
    useSelectionStore.getState().select([id]);
    const text = copySelection()!;
    expect(pasteItems('hello')).toBe(0);
    expect(pasteItems(JSON.stringify({ format: 'strata-layers', items: [{ kind: 'bogus' }] }))).toBe(0);
    const n = state().doc.model.stack.length;
    expect(pasteItems(text)).toBe(1);
    expect(state().doc.model.stack).toHaveLength(n + 1);
    expect(state().doc.model.stack[2]!.id).not.toBe(id);
    expect(state().doc.model.stack[2]!.kind).toBe(state().doc.model.stack[1]!.kind);
  });

  it('tracks dirty state against the saved document', () => {
    expect(isDirty(state())).toBe(true);
    state().markSaved('/tmp/x.strata.json', state().doc);
    expect(isDirty(state())).toBe(false);
    addBlock('mlp');
    expect(isDirty(state())).toBe(true);
  });
});
