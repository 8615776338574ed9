// @vitest-environment jsdom
// Component tests of the editor panels against the real stores and spec code: palette search and
// add, pattern expansion, layer strip painting, generated inspector validation and the analytics
// readouts following edits.
import { act, cleanup, fireEvent, render, screen, within } from '@testing-library/react';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { countParams } from '../../engine/spec/analytics/params.js';
import { formatCount } from '../../engine/spec/analytics/text.js';
import { flattenStack } from '../../engine/spec/document.js';
import { patternFromModel } from '../../engine/spec/megatron-pattern.js';
import { Palette } from '../canvas/Palette.js';
import { PatternField } from '../canvas/PatternField.js';
import { resetStores, useDocumentStore, useSelectionStore } from '../state/stores.js';
import { AnalyticsPanel } from './AnalyticsPanel.js';
import { Inspector } from './Inspector.js';
import { LayerStrip } from './LayerStrip.js';
import { Toolbar } from './Toolbar.js';
import { readFileSync } from 'node:fs';
import { loadDocument } from '../../engine/spec/validate.js';

const doc = () => useDocumentStore.getState().doc;

beforeEach(() => resetStores());
afterEach(() => cleanup());

describe('Palette', () => {
  it('adds the first search match on Enter and each kind by its button', () => {
    render(<Palette />);
    const n = flattenStack(doc().model.stack).length;
    const search = screen.getByRole('searchbox', { name: 'Search blocks' });
    fireEvent.change(search, { target: { value: 'attention' } });
    expect(screen.getAllByRole('button').map((b) => b.getAttribute('aria-label'))).toEqual(['Add Attention block']);
    fireEvent.keyDown(search, { key: 'Enter' });
    expect(doc().model.stack.at(-1)!.kind).toBe('attention');
    fireEvent.click(screen.getByRole('button', { name: 'Add Mamba-2 block' }));
    expect(flattenStack(doc().model.stack)).toHaveLength(n + 2);
    expect(useSelectionStore.getState().ids).toEqual([doc().model.stack.at(-1)!.id]);
  });
});

describe('PatternField', () => {
  it('expands a typed pattern into blocks and reports bad letters', () => {
    render(<PatternField />);
    const input = screen.getByRole('textbox', { name: 'Layer pattern' });
    fireEvent.change(input, { target: { value: 'MEMEM*EMEMEM*E' } });
    fireEvent.keyDown(input, { key: 'Enter' });
    expect(patternFromModel(doc().model)).toBe('MEMEM*EMEMEM*E');
    expect(flattenStack(doc().model.stack)).toHaveLength(14);
    fireEvent.change(input, { target: { value: 'MEMX' } });
    fireEvent.keyDown(input, { key: 'Enter' });
    expect(screen.getByRole('alert').textContent).toMatch(/X/);
    expect(patternFromModel(doc().model)).toBe('MEMEM*EMEMEM*E');
    act(() => useDocumentStore.getState().undo());
    expect(patternFromModel(doc().model)).toBe('MEME*EMEME');
  });
});

describe('LayerStrip', () => {
  it('names each cell by layer, kind and precision and paints clicked and dragged ranges', () => {
    render(<LayerStrip />);
    expect(screen.getByRole('button', { name: 'Layer 0: mamba2, bf16' })).toBeTruthy();
    fireEvent.change(screen.getByRole('combobox', { name: 'Paint precision' }), { target: { value: 'nvfp4' } });
    fireEvent.pointerDown(screen.getByRole('button', { name: 'Layer 2: mamba2, bf16' }));
    fireEvent.pointerEnter(screen.getByRole('button', { name: 'Layer 3: moe, bf16' }));
    fireEvent.pointerUp(window);
    expect(screen.getByRole('button', { name: 'Layer 2: mamba2, nvfp4' })).toBeTruthy();
    expect(screen.getByRole('button', { name: 'Layer 3: moe, nvfp4' })).toBeTruthy();
    expect(doc().model.precision.rules.at(-1)).toMatchObject({ select: { layers: { from: 2, to: 3 } }, format: 'nvfp4' });
    fireEvent.change(screen.getByRole('combobox', { name: 'Precision preset' }), { target: { value: 'mxfp8' } });
    fireEvent.click(screen.getByRole('button', { name: 'Apply preset' }));
    expect(screen.getByRole('button', { name: 'Layer 0: mamba2, mxfp8' })).toBeTruthy();
  });
});

describe('Inspector', () => {
  it('validates numbers against the schema, commits valid ones and shows cross-field errors', () => {
    const attention = doc().model.stack.find((i) => i.kind === 'attention')!;
    useSelectionStore.getState().select([attention.id!]);
    render(<Inspector />);
    const heads = screen.getByLabelText('heads') as HTMLInputElement;
    fireEvent.change(heads, { target: { value: '0' } });
    expect(screen.getByRole('alert').textContent).toMatch(/heads/);
    expect(doc().model.stack.find((i) => i.id === attention.id)).toMatchObject({ heads: 4 });
    fireEvent.change(heads, { target: { value: '5' } });
    expect(doc().model.stack.find((i) => i.id === attention.id)).toMatchObject({ heads: 5 });
    expect(screen.getByRole('alert').textContent).toMatch(/heads 5 is not a multiple of kv_heads 2/);
    fireEvent.click(screen.getByLabelText('Use rope'));
    expect(doc().model.stack.find((i) => i.id === attention.id)).toMatchObject({ rope: { theta: 10000, fraction: 1 } });
    const table = screen.getByRole('table', { name: 'Precision of layer 4' });
    expect(within(table).getAllByRole('row').map((r) => r.textContent)).toEqual(['rolefpropdgradwgrad', 'attention.qkvbf16bf16bf16', 'attention.obf16bf16bf16']);
  });

  it('edits pipeline settings of the selected pipeline node', () => {
    useSelectionStore.getState().selectPipeline('train');
    render(<Inspector />);
    fireEvent.change(screen.getByLabelText('schedule'), { target: { value: 'wsd' } });
    expect(doc().pipeline.training.schedule).toBe('wsd');
    const section = screen.getByRole('region', { name: 'Training settings' });
    expect(within(section).getByLabelText('steps')).toBeTruthy();
  });
});

describe('AnalyticsPanel', () => {
  it('shows total parameters and follows edits', () => {
    render(<AnalyticsPanel />);
    const total = () => screen.getByLabelText('Total parameters').textContent;
    expect(total()).toBe(formatCount(countParams(doc().model).total));
    act(() => useDocumentStore.getState().changeModel((m) => ({ ...m, d_model: 256 })));
    expect(total()).toBe(formatCount(countParams(doc().model).total));
    expect(screen.getByRole('status', { name: 'Fits verdict' }).textContent).toMatch(/Fits on NVIDIA H200/);
  });
});

describe('Toolbar', () => {
  it('shrinks a published design to the chosen budget, keeping its pattern, as one undo step', () => {
    const nano = loadDocument(JSON.parse(readFileSync(`${process.cwd()}/templates/nemotron-3-nano-30b-a3b.json`, 'utf8')));
    act(() => useDocumentStore.getState().load(nano, null, false));
    render(<Toolbar />);
    fireEvent.change(screen.getByRole('combobox', { name: 'Shrink target parameters' }), { target: { value: '16000000' } });
    fireEvent.click(screen.getByRole('button', { name: 'Shrink to trainable size' }));
    const total = countParams(doc().model).total;
    expect(total).toBeLessThanOrEqual(16_000_000);
    expect(total).toBeGreaterThan(4_000_000);
    expect(patternFromModel(doc().model)).toBe(patternFromModel(nano.model));
    fireEvent.click(screen.getByRole('button', { name: 'Undo' }));
    expect(doc().model.d_model).toBe(2688);
  });
});

describe('Evaluations inspector', () => {
  it('adds and removes evaluations with named controls', () => {
    useSelectionStore.getState().selectPipeline('evaluate');
    render(<Inspector />);
    fireEvent.click(screen.getByRole('button', { name: 'Add evaluations' }));
    expect(doc().pipeline.evaluations).toHaveLength(2);
    fireEvent.change(screen.getAllByLabelText('evaluations.#2.kind')[0]!, { target: { value: 'mqar' } });
    expect(doc().pipeline.evaluations[1]).toEqual({ kind: 'mqar', batches: 8 });
    fireEvent.click(screen.getByRole('button', { name: 'Remove evaluations #1' }));
    expect(doc().pipeline.evaluations).toEqual([{ kind: 'mqar', batches: 8 }]);
  });
});
