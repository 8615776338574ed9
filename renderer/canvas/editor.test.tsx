// @vitest-environment jsdom
// The layer-stack editor in a DOM with the keyboard shortcuts installed: nodes for every block and
// group, collapse/expand, repeat count, selection by click, Delete, undo/redo, copy/paste and
// grouping from the keyboard, and validation errors shown on the offending node.
// jsdom has no ResizeObserver (React Flow measures nodes with it); a no-op observer stands in,
// so this exercises behaviour, not layout (nodes carry their sizes, so they show unmeasured).
import { act, cleanup, fireEvent, render, screen } from '@testing-library/react';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { flattenStack } from '../../engine/spec/document.js';
import { setBlockField } from '../state/document-actions.js';
import { installShortcuts } from '../state/shortcuts.js';
import { resetStores, useDocumentStore, useSelectionStore, useViewStore } from '../state/stores.js';
import { LayerEditor } from './LayerEditor.js';

class NoLayoutResizeObserver {
  observe(): void {}
  unobserve(): void {}
  disconnect(): void {}
}

let removeShortcuts: () => void = () => undefined;
beforeAll(() => {
  globalThis.ResizeObserver ??= NoLayoutResizeObserver as unknown as typeof ResizeObserver;
});
beforeEach(() => {
  resetStores();
  useViewStore.getState().setScreen('layers');
  removeShortcuts = installShortcuts();
});
afterEach(() => {
  removeShortcuts();
  cleanup();
});

const layers = () => flattenStack(useDocumentStore.getState().doc.model.stack);
const key = (k: string, mods: Partial<KeyboardEventInit> = {}) => fireEvent.keyDown(window, { key: k, ...mods });

describe('LayerEditor', () => {
  it('shows blocks and groups, and edits through clicks and shortcuts', () => {
    render(<LayerEditor />);
    expect(screen.getAllByRole('group', { name: /^Repeat ME x2/ })).toHaveLength(2);
    expect(screen.getByRole('group', { name: 'Attention block, layer 4' })).toBeTruthy();
    const n = layers().length;

    fireEvent.click(screen.getByRole('group', { name: 'Attention block, layer 4' }));
    expect(useSelectionStore.getState().ids).toHaveLength(1);
    key('Delete');
    expect(layers()).toHaveLength(n - 1);
    expect(layers().some((l) => l.block.kind === 'attention')).toBe(false);
    key('z', { ctrlKey: true });
    expect(layers()).toHaveLength(n);
    key('z', { ctrlKey: true, shiftKey: true });
    expect(layers()).toHaveLength(n - 1);
    key('z', { ctrlKey: true });

    const attentionId = layers().find((l) => l.block.kind === 'attention')!.block.id!;
    act(() => useSelectionStore.getState().select([attentionId]));
    key('c', { ctrlKey: true });
    key('d', { ctrlKey: true });
    expect(layers().filter((l) => l.block.kind === 'attention')).toHaveLength(2);

    const stack = useDocumentStore.getState().doc.model.stack;
    act(() => useSelectionStore.getState().select([stack[1]!.id!]));
    key('ArrowUp', { altKey: true });
    expect(useDocumentStore.getState().doc.model.stack[0]!.id).toBe(stack[1]!.id);
  });

  it('collapses groups and edits their repeat count', () => {
    render(<LayerEditor />);
    const [first] = screen.getAllByRole('button', { name: 'Collapse Repeat ME' });
    fireEvent.click(first!);
    expect(screen.getByRole('button', { name: 'Expand Repeat ME' })).toBeTruthy();
    expect(screen.getByText(/= 4 layers/)).toBeTruthy();
    const [count] = screen.getAllByRole('spinbutton', { name: 'Repeat count of Repeat ME' });
    fireEvent.change(count!, { target: { value: '5' } });
    expect(useDocumentStore.getState().doc.model.stack[0]).toMatchObject({ kind: 'repeat', count: 5, collapsed: true });
  });

  it('groups selected blocks with Ctrl+G and shows validation errors on the node', () => {
    render(<LayerEditor />);
    const stack = useDocumentStore.getState().doc.model.stack;
    act(() => useSelectionStore.getState().select([stack[1]!.id!, stack[2]!.id!]));
    key('g', { ctrlKey: true });
    expect(useDocumentStore.getState().doc.model.stack[1]).toMatchObject({ kind: 'repeat', count: 2 });
    const attention = layers().find((l) => l.block.kind === 'attention')!.block;
    act(() => setBlockField(attention.id!, ['kv_heads'], 3));
    expect(screen.getByRole('group', { name: /^Attention block, layer \d+, error: .*heads 4 is not a multiple of kv_heads 3/ })).toBeTruthy();
  });
});

describe('palette drop and text fields', () => {
  it('inserts a block dragged from the palette at the drop position', () => {
    render(<LayerEditor />);
    const canvas = screen.getByRole('region', { name: 'Layer stack editor' });
    const n = layers().length;
    const dataTransfer = { types: ['application/x-strata-block'], getData: () => 'mlp', dropEffect: 'none' };
    fireEvent.dragOver(canvas, { dataTransfer });
    fireEvent.drop(canvas, { dataTransfer, clientX: 10, clientY: -1000 });
    expect(layers()).toHaveLength(n + 1);
    expect(useDocumentStore.getState().doc.model.stack[0]!.kind).toBe('mlp');
  });

  it('leaves undo and delete keys to text fields', () => {
    render(<LayerEditor />);
    const search = screen.getByRole('searchbox', { name: 'Search blocks' });
    const id = useDocumentStore.getState().doc.model.stack[1]!.id!;
    act(() => useSelectionStore.getState().select([id]));
    const n = layers().length;
    fireEvent.keyDown(search, { key: 'Backspace' });
    expect(layers()).toHaveLength(n);
    fireEvent.click(screen.getByRole('button', { name: 'Add MLP block' }));
    fireEvent.keyDown(search, { key: 'z', ctrlKey: true });
    expect(layers()).toHaveLength(n + 1);
  });
});
