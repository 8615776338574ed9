// Tests of the pure stack edits: ids, insert/remove/move, repeat groups, cloning.
import { describe, expect, it } from 'vitest';
import type { Block, StackItem } from '../../engine/spec/document.js';
import { defaultBlock } from './block-defaults.js';
import {
  cloneWithFreshIds,
  collectIds,
  createIdFactory,
  ensureIds,
  findById,
  groupAsRepeat,
  insertIntoGroup,
  moveInner,
  moveItem,
  removeByIds,
  ungroup,
  updateBlock,
} from './stack-edit.js';

const m = (id: string): Block => ({ ...defaultBlock('mamba2', 128), id });
const e = (id: string): Block => ({ ...defaultBlock('moe', 128), id });
const a = (id: string): Block => ({ ...defaultBlock('attention', 128), id });

function sample(): StackItem[] {
  return [m('m0'), { kind: 'repeat', id: 'g', count: 3, collapsed: false, blocks: [m('gm'), e('ge')] }, a('a0')];
}

const kinds = (stack: StackItem[]) => stack.map((i) => (i.kind === 'repeat' ? `x${i.count}(${i.blocks.map((b) => b.id).join(',')})` : i.id));

describe('ids', () => {
  it('assigns unique ids to items and inner blocks without touching valid ones', () => {
    const raw: StackItem[] = [defaultBlock('mamba2', 64), { kind: 'repeat', count: 2, collapsed: false, blocks: [defaultBlock('mlp', 64), { ...defaultBlock('mlp', 64), id: 'n7' }] }, { ...defaultBlock('mlp', 64), id: 'n7' }];
    const fixed = ensureIds(raw);
    const ids = [...collectIds(fixed)];
    expect(ids).toHaveLength(5);
    expect(new Set(ids).size).toBe(5);
    expect(ids).toContain('n7');
    expect(ids.filter((x) => x === 'n7')).toHaveLength(1);
  });
  it('returns the same array when every id is present and unique', () => {
    const stack = sample();
    expect(ensureIds(stack)).toBe(stack);
  });
  it('id factory skips taken ids', () => {
    const make = createIdFactory(['n3', 'x']);
    expect([make(), make()]).toEqual(['n4', 'n5']);
  });
});

describe('edits', () => {
  it('finds blocks at top level and inside groups', () => {
    expect(findById(sample(), 'ge')).toMatchObject({ item: 1, inner: 1 });
    expect(findById(sample(), 'a0')).toMatchObject({ item: 2 });
    expect(findById(sample(), 'nope')).toBeUndefined();
  });
  it('removes blocks, drops empty groups, and refuses to empty the stack', () => {
    expect(kinds(removeByIds(sample(), new Set(['gm'])))).toEqual(['m0', 'x3(ge)', 'a0']);
    expect(kinds(removeByIds(sample(), new Set(['gm', 'ge'])))).toEqual(['m0', 'a0']);
    const stack = sample();
    expect(removeByIds(stack, new Set(['m0', 'g', 'a0']))).toBe(stack);
  });
  it('moves items and keeps untouched items by identity', () => {
    const stack = sample();
    const moved = moveItem(stack, 0, 2);
    expect(kinds(moved)).toEqual(['x3(gm,ge)', 'a0', 'm0']);
    expect(moved[0]).toBe(stack[1]);
    expect(kinds(moveInner(stack, 1, 1, 0))).toEqual(['m0', 'x3(ge,gm)', 'a0']);
  });
  it('updates one inner block and leaves siblings alone', () => {
    const stack = sample();
    const next = updateBlock(stack, 'ge', (b) => ({ ...b, label: 'changed' }));
    expect((next[1] as { blocks: Block[] }).blocks[1]!.label).toBe('changed');
    expect((next[1] as { blocks: Block[] }).blocks[0]).toBe((stack[1] as { blocks: Block[] }).blocks[0]);
    expect(next[0]).toBe(stack[0]);
  });
  it('groups selected top-level blocks and ungroups into copies with fresh ids', () => {
    const grouped = groupAsRepeat(sample(), new Set(['m0', 'a0']), 4, 'G2')!;
    expect(kinds(grouped)).toEqual(['x4(m0,a0)', 'x3(gm,ge)']);
    const flat = ungroup(sample(), 'g', createIdFactory(collectIds(sample())));
    expect(flat).toHaveLength(1 + 6 + 1);
    expect(new Set(collectIds(flat)).size).toBe(8);
    expect(groupAsRepeat(sample(), new Set(['g']), 2, 'G3')).toBeUndefined();
  });
  it('inserts into a group and clones with fresh ids', () => {
    const stack = insertIntoGroup(sample(), 'g', 1, a('new'));
    expect(kinds(stack)).toEqual(['m0', 'x3(gm,new,ge)', 'a0']);
    expect(() => insertIntoGroup(sample(), 'm0', 0, a('z'))).toThrow(/no repeat group/);
    const clones = cloneWithFreshIds([sample()[1]!], createIdFactory(collectIds(sample())));
    const ids = collectIds(clones);
    expect(ids.size).toBe(3);
    for (const id of ids) expect(collectIds(sample()).has(id)).toBe(false);
  });
});
