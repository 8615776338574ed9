// Pure edits of a model's layer stack for the editor: stable ids, find, insert, delete, move,
// group into / ungroup repeat groups, update one block. Every function returns a new array and
// keeps untouched items by identity, so memoized graph nodes of unchanged layers do not re-render.
// It is not the store (state/document-store.ts) and knows nothing of React.
import type { Block, RepeatGroup, StackItem } from '../../engine/spec/document.js';

/** Where a block or group lives: top-level item index, and inner index inside a repeat group. */
export interface StackLocation {
  item: number;
  inner?: number;
  node: StackItem | Block;
}

export type IdFactory = () => string;

const ID_PATTERN = /^n(\d+)$/;

/** Every id used by a stack (groups, their blocks and top-level blocks). */
export function collectIds(stack: readonly StackItem[]): Set<string> {
  const ids = new Set<string>();
  for (const item of stack) {
    if (item.id) ids.add(item.id);
    if (item.kind === 'repeat') for (const b of item.blocks) if (b.id) ids.add(b.id);
  }
  return ids;
}

/** An id factory (`n1`, `n2`, ...) that never repeats an id already in `taken`. */
export function createIdFactory(taken: Iterable<string>): IdFactory {
  let next = 1;
  const used = new Set(taken);
  for (const id of used) {
    const m = ID_PATTERN.exec(id);
    if (m) next = Math.max(next, Number(m[1]) + 1);
  }
  return () => {
    let id = `n${next++}`;
    while (used.has(id)) id = `n${next++}`;
    used.add(id);
    return id;
  };
}

/**
 * Gives every item and inner block a unique id (keeping existing unique ids). Returns the same
 * array when nothing needed an id.
 */
export function ensureIds(stack: readonly StackItem[]): StackItem[] {
  const seen = new Set<string>();
  let needs = false;
  const visit = (id: string | undefined) => {
    if (!id || seen.has(id)) needs = true;
    else seen.add(id);
  };
  for (const item of stack) {
    visit(item.id);
    if (item.kind === 'repeat') item.blocks.forEach((b) => visit(b.id));
  }
  if (!needs) return stack as StackItem[];
  const makeId = createIdFactory(seen);
  const assigned = new Set<string>();
  const fix = <T extends { id?: string }>(node: T): T => {
    if (node.id && !assigned.has(node.id)) {
      assigned.add(node.id);
      return node;
    }
    const id = makeId();
    assigned.add(id);
    return { ...node, id };
  };
  return stack.map((item) => {
    const fixed = fix(item);
    if (fixed.kind !== 'repeat') return fixed;
    const blocks = fixed.blocks.map(fix);
    return blocks.every((b, i) => b === fixed.blocks[i]) ? fixed : { ...fixed, blocks };
  });
}

/** Finds a group or block by id. */
export function findById(stack: readonly StackItem[], id: string): StackLocation | undefined {
  for (let i = 0; i < stack.length; i++) {
    const item = stack[i]!;
    if (item.id === id) return { item: i, node: item };
    if (item.kind === 'repeat') {
      const inner = item.blocks.findIndex((b) => b.id === id);
      if (inner >= 0) return { item: i, inner, node: item.blocks[inner]! };
    }
  }
  return undefined;
}

/** Inserts items before top-level position `index` (clamped to the stack length). */
export function insertItems(stack: readonly StackItem[], index: number, items: readonly StackItem[]): StackItem[] {
  const at = Math.max(0, Math.min(stack.length, index));
  return [...stack.slice(0, at), ...items, ...stack.slice(at)];
}

/**
 * Inserts a block inside a repeat group before inner position `inner`.
 * Throws when `groupId` is not a repeat group.
 */
export function insertIntoGroup(stack: readonly StackItem[], groupId: string, inner: number, block: Block): StackItem[] {
  const loc = findById(stack, groupId);
  if (!loc || loc.inner !== undefined || loc.node.kind !== 'repeat') throw new Error(`no repeat group with id '${groupId}'`);
  const group = loc.node as RepeatGroup;
  const at = Math.max(0, Math.min(group.blocks.length, inner));
  const blocks = [...group.blocks.slice(0, at), block, ...group.blocks.slice(at)];
  return replaceAt(stack, loc.item, { ...group, blocks });
}

function replaceAt(stack: readonly StackItem[], index: number, item: StackItem): StackItem[] {
  const out = stack.slice();
  out[index] = item;
  return out;
}

/**
 * Removes groups and blocks by id. A repeat group left without blocks disappears. Never returns
 * an empty stack: the schema needs at least one layer, so removing everything is refused (the
 * stack comes back unchanged).
 */
export function removeByIds(stack: readonly StackItem[], ids: ReadonlySet<string>): StackItem[] {
  const out: StackItem[] = [];
  for (const item of stack) {
    if (item.id && ids.has(item.id)) continue;
    if (item.kind === 'repeat') {
      const blocks = item.blocks.filter((b) => !(b.id && ids.has(b.id)));
      if (blocks.length === 0) continue;
      out.push(blocks.length === item.blocks.length ? item : { ...item, blocks });
    } else {
      out.push(item);
    }
  }
  return out.length === 0 ? (stack as StackItem[]) : out;
}

/** Moves the top-level item at `from` so that it ends up at position `to`. */
export function moveItem(stack: readonly StackItem[], from: number, to: number): StackItem[] {
  if (from < 0 || from >= stack.length) return stack as StackItem[];
  const target = Math.max(0, Math.min(stack.length - 1, to));
  if (target === from) return stack as StackItem[];
  const out = stack.slice();
  const [moved] = out.splice(from, 1);
  out.splice(target, 0, moved!);
  return out;
}

/** Moves a block inside its repeat group to inner position `to`. */
export function moveInner(stack: readonly StackItem[], groupIndex: number, from: number, to: number): StackItem[] {
  const group = stack[groupIndex];
  if (!group || group.kind !== 'repeat') return stack as StackItem[];
  const target = Math.max(0, Math.min(group.blocks.length - 1, to));
  if (from === target || from < 0 || from >= group.blocks.length) return stack as StackItem[];
  const blocks = group.blocks.slice();
  const [moved] = blocks.splice(from, 1);
  blocks.splice(target, 0, moved!);
  return replaceAt(stack, groupIndex, { ...group, blocks });
}

/** Replaces the block with `id` (top level or inside a group) by `update(block)`. */
export function updateBlock(stack: readonly StackItem[], id: string, update: (block: Block) => Block): StackItem[] {
  const loc = findById(stack, id);
  if (!loc || loc.node.kind === 'repeat') return stack as StackItem[];
  if (loc.inner === undefined) return replaceAt(stack, loc.item, update(loc.node as Block));
  const group = stack[loc.item] as RepeatGroup;
  const blocks = group.blocks.slice();
  blocks[loc.inner] = update(blocks[loc.inner]!);
  return replaceAt(stack, loc.item, { ...group, blocks });
}

/** Replaces the repeat group with `id` by `update(group)`. */
export function updateGroup(stack: readonly StackItem[], id: string, update: (group: RepeatGroup) => RepeatGroup): StackItem[] {
  const loc = findById(stack, id);
  if (!loc || loc.inner !== undefined || loc.node.kind !== 'repeat') return stack as StackItem[];
  return replaceAt(stack, loc.item, update(loc.node as RepeatGroup));
}

/**
 * Wraps the top-level blocks with the given ids into one repeat group (x`count`). The blocks must
 * be plain blocks (not groups); they are gathered in stack order at the position of the first.
 * Returns undefined when fewer than one block qualifies.
 */
export function groupAsRepeat(stack: readonly StackItem[], ids: ReadonlySet<string>, count: number, groupId: string): StackItem[] | undefined {
  const picked: number[] = [];
  stack.forEach((item, i) => {
    if (item.kind !== 'repeat' && item.id && ids.has(item.id)) picked.push(i);
  });
  if (picked.length === 0) return undefined;
  const blocks = picked.map((i) => stack[i] as Block);
  const group: RepeatGroup = { kind: 'repeat', id: groupId, count: Math.max(1, Math.floor(count)), collapsed: false, blocks };
  const pickedSet = new Set(picked);
  const out: StackItem[] = [];
  stack.forEach((item, i) => {
    if (i === picked[0]) out.push(group);
    else if (!pickedSet.has(i)) out.push(item);
  });
  return out;
}

/** Replaces a repeat group by `count` copies of its blocks (the first copy keeps the ids). */
export function ungroup(stack: readonly StackItem[], groupId: string, makeId: IdFactory): StackItem[] {
  const loc = findById(stack, groupId);
  if (!loc || loc.inner !== undefined || loc.node.kind !== 'repeat') return stack as StackItem[];
  const group = loc.node as RepeatGroup;
  const expanded: Block[] = [];
  for (let r = 0; r < group.count; r++) {
    for (const block of group.blocks) expanded.push(r === 0 ? block : { ...structuredClone(block), id: makeId() });
  }
  return [...stack.slice(0, loc.item), ...expanded, ...stack.slice(loc.item + 1)];
}

/** Deep copies of items with fresh ids on every group and block (for paste and duplicate). */
export function cloneWithFreshIds(items: readonly StackItem[], makeId: IdFactory): StackItem[] {
  return items.map((item) => {
    const copy = structuredClone(item);
    copy.id = makeId();
    if (copy.kind === 'repeat') copy.blocks = copy.blocks.map((b) => ({ ...b, id: makeId() }));
    return copy;
  });
}
