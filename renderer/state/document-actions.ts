// The editor's domain edits, each one undoable step on the document slice: add/delete/move
// blocks, connect (reorder), repeat groups, field edits from the inspector, precision painting
// and presets, copy/paste, pattern expansion and shrink-to-trainable-size. They read the selection slice to know what to act on. Plain functions
// (no React), so keyboard shortcuts, menus and tests call the same code.
import { z } from 'zod';
import { BLOCK_KINDS, type Block, type BlockKind, ModelSpec, type PrecisionFormat, StackItem, type StrataDocument } from '../../engine/spec/document.js';
import { type BlockTemplates, PatternError, modelFromPattern, patternFromModel } from '../../engine/spec/megatron-pattern.js';
import { TOKENIZER_VOCAB } from '../../engine/spec/validate.js';
import { type ShrinkResult, shrinkModel } from '../model/shrink.js';
import { type PresetName, paintRule, presetPolicy } from '../../engine/spec/precision.js';
import { blockForInsert } from '../model/block-defaults.js';
import { type PathPart, setIn } from '../model/paths.js';
import {
  cloneWithFreshIds,
  collectIds,
  createIdFactory,
  findById,
  groupAsRepeat,
  insertIntoGroup,
  insertItems,
  moveInner,
  moveItem,
  removeByIds,
  ungroup,
  updateBlock,
  updateGroup,
} from '../model/stack-edit.js';
import { useDocumentStore, useSelectionStore } from './stores.js';

const doc = () => useDocumentStore.getState().doc;
const changeModel = (...args: Parameters<ReturnType<typeof useDocumentStore.getState>['changeModel']>) =>
  useDocumentStore.getState().changeModel(...args);

function idFactory() {
  return createIdFactory(collectIds(doc().model.stack));
}

/** Top-level index after which new blocks go: after the last selected item, else at the end. */
function insertionIndex(): number {
  const { stack } = doc().model;
  let index = stack.length;
  let found = false;
  for (const id of useSelectionStore.getState().ids) {
    const loc = findById(stack, id);
    if (loc && (!found || loc.item + 1 > index)) {
      index = loc.item + 1;
      found = true;
    }
  }
  return index;
}

/** Adds a block of `kind` (after the selection, or at `index`) and selects it. Returns its id. */
export function addBlock(kind: BlockKind, index?: number): string {
  const at = index ?? insertionIndex();
  const id = idFactory()();
  changeModel((model) => ({ ...model, stack: insertItems(model.stack, at, [{ ...blockForInsert(model, kind, at), id }]) }));
  useSelectionStore.getState().select([id]);
  return id;
}

/** Adds a block of `kind` inside a repeat group at inner position `inner` and selects it. */
export function addBlockToGroup(kind: BlockKind, groupId: string, inner: number): string {
  const id = idFactory()();
  changeModel((model) => {
    const loc = findById(model.stack, groupId);
    return { ...model, stack: insertIntoGroup(model.stack, groupId, inner, { ...blockForInsert(model, kind, loc?.item ?? 0), id }) };
  });
  useSelectionStore.getState().select([id]);
  return id;
}

/** Deletes the selected blocks and groups (the last layer cannot be deleted). */
export function deleteSelection(): boolean {
  const ids = new Set(useSelectionStore.getState().ids);
  if (ids.size === 0) return false;
  const before = doc().model.stack;
  changeModel((model) => {
    const stack = removeByIds(model.stack, ids);
    return stack === model.stack ? model : { ...model, stack };
  });
  const removed = doc().model.stack !== before;
  if (removed) useSelectionStore.getState().select([]);
  return removed;
}

/** Moves a block or group to a new position (top level, or inside its own repeat group). */
export function moveTo(id: string, to: number): void {
  changeModel((model) => {
    const loc = findById(model.stack, id);
    if (!loc) return model;
    const stack = loc.inner === undefined ? moveItem(model.stack, loc.item, to) : moveInner(model.stack, loc.item, loc.inner, to);
    return stack === model.stack ? model : { ...model, stack };
  });
}

/** Moves a block or group one step up (-1) or down (+1). */
export function nudge(id: string, delta: -1 | 1): void {
  const loc = findById(doc().model.stack, id);
  if (loc) moveTo(id, (loc.inner ?? loc.item) + delta);
}

/**
 * Connecting an edge from `sourceId` to `targetId` means "target runs right after source": the
 * target is moved to follow the source (both top-level, or both in one repeat group).
 */
export function connect(sourceId: string, targetId: string): boolean {
  const { stack } = doc().model;
  const source = findById(stack, sourceId);
  const target = findById(stack, targetId);
  if (!source || !target || sourceId === targetId) return false;
  if (source.inner === undefined && target.inner === undefined) {
    const to = target.item > source.item ? source.item + 1 : source.item;
    moveTo(targetId, to);
    return true;
  }
  if (source.inner !== undefined && target.inner !== undefined && source.item === target.item) {
    const to = target.inner > source.inner ? source.inner + 1 : source.inner;
    moveTo(targetId, to);
    return true;
  }
  return false;
}

/** Wraps the selected top-level blocks into a repeat group (x`count`) and selects it. */
export function groupSelection(count = 2): string | undefined {
  const ids = new Set(useSelectionStore.getState().ids);
  const groupId = idFactory()();
  let made = false;
  changeModel((model) => {
    const stack = groupAsRepeat(model.stack, ids, count, groupId);
    if (!stack) return model;
    made = true;
    return { ...model, stack };
  });
  if (!made) return undefined;
  useSelectionStore.getState().select([groupId]);
  return groupId;
}

/** Expands a repeat group into plain blocks. */
export function ungroupItem(groupId: string): void {
  const makeId = idFactory();
  changeModel((model) => ({ ...model, stack: ungroup(model.stack, groupId, makeId) }));
  useSelectionStore.getState().select([]);
}

export function setRepeatCount(groupId: string, count: number): void {
  if (!Number.isInteger(count) || count < 1) return;
  changeModel((model) => ({ ...model, stack: updateGroup(model.stack, groupId, (g) => ({ ...g, count })) }), `count:${groupId}`);
}

export function toggleCollapsed(groupId: string): void {
  changeModel((model) => ({ ...model, stack: updateGroup(model.stack, groupId, (g) => ({ ...g, collapsed: !g.collapsed })) }));
}

/** Sets one field of a block (path relative to the block, e.g. ['router', 'type']). */
export function setBlockField(id: string, path: readonly PathPart[], value: unknown): void {
  changeModel((model) => ({ ...model, stack: updateBlock(model.stack, id, (b) => setIn(b, path, value)) }), `block:${id}:${path.join('.')}`);
}

/** Sets one field of the document (path from the root, e.g. ['pipeline', 'training', 'lr']). */
export function setDocumentField(path: readonly PathPart[], value: unknown): void {
  useDocumentStore.getState().change((d) => setIn(d, path, value), `doc:${path.join('.')}`);
}

/** Appends the precision rule "layers from..to use `format`" (what painting the strip does). */
export function paintPrecision(from: number, to: number, format: PrecisionFormat): void {
  changeModel((model) => ({ ...model, precision: { ...model.precision, rules: [...model.precision.rules, paintRule(from, to, format)] } }));
}

/** Replaces the precision policy by a preset's. */
export function applyPreset(name: PresetName): void {
  changeModel((model) => ({ ...model, precision: presetPolicy(name) }));
}

/** Removes precision rule `index`. */
export function removePrecisionRule(index: number): void {
  changeModel((model) => ({ ...model, precision: { ...model.precision, rules: model.precision.rules.filter((_, i) => i !== index) } }));
}

// ---------------------------------------------------------------------------------------------
// Clipboard
// ---------------------------------------------------------------------------------------------

/** The marker of copied layers in clipboard text, so pasting other text does nothing. */
export const CLIPBOARD_FORMAT = 'strata-layers';

/** Serializes the selected top-level items (in stack order) as clipboard text, or null. */
export function copySelection(): string | null {
  const ids = new Set(useSelectionStore.getState().ids);
  const items: StackItem[] = [];
  for (const item of doc().model.stack) {
    if (item.id && ids.has(item.id)) items.push(item);
    else if (item.kind === 'repeat') for (const b of item.blocks) if (b.id && ids.has(b.id)) items.push(b);
  }
  if (items.length === 0) return null;
  return JSON.stringify({ format: CLIPBOARD_FORMAT, items });
}

/**
 * Pastes clipboard text produced by copySelection after the selection; returns the number of
 * items pasted (0 when the text is not Strata layers or its items fail the schema).
 */
export function pasteItems(text: string): number {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return 0;
  }
  if (!parsed || typeof parsed !== 'object' || (parsed as { format?: unknown }).format !== CLIPBOARD_FORMAT) return 0;
  const checked = z.array(StackItem).min(1).safeParse((parsed as { items?: unknown }).items);
  if (!checked.success) return 0;
  const items = checked.data;
  const fresh = cloneWithFreshIds(items, idFactory());
  const at = insertionIndex();
  changeModel((model) => ({ ...model, stack: insertItems(model.stack, at, fresh) }));
  useSelectionStore.getState().select(fresh.map((i) => i.id!));
  return fresh.length;
}

// ---------------------------------------------------------------------------------------------
// Pattern and shrink
// ---------------------------------------------------------------------------------------------

/** One template block per kind for pattern expansion: the model's first block of that kind. */
function blockTemplates(model: StrataDocument['model']): BlockTemplates {
  const templates: Record<string, Block> = {};
  for (const kind of BLOCK_KINDS) {
    const block = blockForInsert(model, kind, 0);
    templates[kind] = block;
  }
  return templates as BlockTemplates;
}

/**
 * Rebuilds the stack from a Megatron pattern (`MEMEM*EMEMEM*E`, `|` cuts, `/` MTP): each letter
 * becomes a copy of the design's existing block of that kind (or a default one), runs are folded
 * into repeat groups. Returns null on success or the pattern error's message.
 */
export function applyPattern(pattern: string): string | null {
  const model = doc().model;
  const trimmed = pattern.replace(/\s+/g, '');
  if (trimmed === patternFromModel(model)) return null;
  try {
    const { stack: _stack, pipeline_cuts: _cuts, mtp, ...fields } = model;
    const built = ModelSpec.parse(
      modelFromPattern(trimmed, {
        ...fields,
        blocks: blockTemplates(model),
        mtp: mtp ? { loss_weight: mtp.loss_weight, shared_weights: mtp.shared_weights } : undefined,
      }),
    );
    changeModel(() => built);
    useSelectionStore.getState().select([]);
    return null;
  } catch (error) {
    if (error instanceof PatternError) return error.message;
    if (error instanceof z.ZodError) return error.issues.map((i) => i.message).join('; ');
    throw error;
  }
}

/** Shrinks the design to `targetParams` (keeping its pattern) as one undo step. */
export function shrinkDesign(targetParams: number): ShrinkResult {
  const current = doc();
  const result = shrinkModel(current.model, {
    targetParams,
    vocabSize: TOKENIZER_VOCAB[current.pipeline.tokenizer.kind],
    maxContext: current.pipeline.training.seq_len,
  });
  changeModel(() => result.model);
  return result;
}
