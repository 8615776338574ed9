// Tests of the plain-text rendering helpers and of the grouped per-layer table (the whole report
// is exercised through the CLI in engine/cli/commands/analyze.test.ts).
import { describe, expect, it } from 'vitest';
import { parseModel } from '../document.js';
import { analyzeModel } from './index.js';
import { formatBytesBinary, formatContext, formatCount, formatIndexRanges, renderReport, table } from './text.js';
import { smallMamba, smallMoe } from './testing-models.js';

describe('text helpers', () => {
  it('formats counts, bytes and contexts in the units people use', () => {
    expect(formatCount(31_577_940_288)).toBe('31.58B');
    expect(formatCount(3_580_076_352)).toBe('3.58B');
    expect(formatCount(950)).toBe('950');
    expect(formatBytesBinary(6144)).toBe('6 KiB');
    expect(formatBytesBinary(49_082_368)).toBe('46.8 MiB');
    expect(formatBytesBinary(512)).toBe('512 B');
    expect(formatContext(8192)).toBe('8k');
    expect(formatContext(1024 * 1024)).toBe('1M');
    expect(formatContext(1000)).toBe('1000');
  });

  it('compresses layer indices into ranges', () => {
    expect(formatIndexRanges([0, 1, 2, 3, 7, 9, 10, 11])).toBe('0-3,7,9-11');
    expect(formatIndexRanges([5])).toBe('5');
  });

  it('aligns text columns left and numbers right', () => {
    expect(table(['kind', 'n'], [['moe', '1'], ['attention', '23']])).toEqual(['  kind        n', '  moe         1', '  attention  23']);
  });

  it('groups identical layers of a long stack into one row with their indices', () => {
    const model = parseModel({ name: 'long', vocab_size: 16, d_model: 8, stack: [{ kind: 'repeat', count: 10, blocks: [smallMamba, smallMoe] }] });
    const text = renderReport(analyzeModel(model, { context: 64 }));
    expect(text).toContain('(identical layers grouped)');
    expect(text).toMatch(/\n  10 x 0,2,4,6,8,10,12,14,16,18\s+mamba2 /);
    expect(text).toMatch(/\n  10 x 1,3,5,7,9,11,13,15,17,19\s+moe /);
  });
});
