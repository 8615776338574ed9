// Tests of Megatron hybrid layer patterns: parsing (letters, `|` cuts, `/` MTP), error positions,
// model <-> pattern round trips, and compressStack's lossless repeat detection.
import { describe, expect, it } from 'vitest';
import { type Block, type ModelSpec, flattenStack, parseModel } from './document.js';
import {
  type PatternDefaults,
  PatternError,
  compressBlocks,
  compressStack,
  modelFromPattern,
  parsePattern,
  patternFromModel,
} from './megatron-pattern.js';

const DEFAULTS: PatternDefaults = {
  name: 'pattern-test',
  vocab_size: 512,
  d_model: 64,
  blocks: {
    mamba2: { kind: 'mamba2', heads: 4, head_dim: 16, d_state: 16, groups: 1, conv_kernel: 4, chunk: 32 },
    attention: { kind: 'attention', heads: 4, kv_heads: 2, head_dim: 16 },
    mlp: { kind: 'mlp', ffn: 128 },
    moe: { kind: 'moe', experts: 8, top_k: 2, expert_ffn: 32, shared_experts: 1, shared_ffn: 64, router: { type: 'sigmoid', expert_bias: true } },
  },
};

function errorOf(fn: () => unknown): PatternError {
  try {
    fn();
  } catch (error) {
    if (error instanceof PatternError) return error;
    throw error;
  }
  throw new Error('expected a PatternError');
}

describe('parsePattern', () => {
  it('reads letters, pipeline cuts and MTP segments', () => {
    expect(parsePattern('MEME*E/*E/*E')).toEqual({
      main: ['mamba2', 'moe', 'mamba2', 'moe', 'attention', 'moe'],
      pipelineCuts: [],
      mtp: { kinds: ['attention', 'moe'], depth: 2 },
    });
    expect(parsePattern('M-M*|M-|-E')).toEqual({
      main: ['mamba2', 'mlp', 'mamba2', 'attention', 'mamba2', 'mlp', 'mlp', 'moe'],
      pipelineCuts: [4, 6],
      mtp: null,
    });
  });

  it('names the position and the bad character', () => {
    const bad = errorOf(() => parsePattern('MMXM'));
    expect(bad.position).toBe(3);
    expect(bad.character).toBe('X');
    expect(bad.message).toContain("bad character 'X' at position 3");
    const inMtp = errorOf(() => parsePattern('MM/*Q'));
    expect(inMtp.position).toBe(5);
    expect(inMtp.character).toBe('Q');
  });

  it('rejects empty stages, empty or differing MTP segments and empty patterns', () => {
    expect(errorOf(() => parsePattern('|MM')).position).toBe(1);
    expect(errorOf(() => parsePattern('MM|')).position).toBe(3);
    expect(errorOf(() => parsePattern('M||M')).position).toBe(2);
    expect(errorOf(() => parsePattern('MM/')).message).toContain('MTP segment');
    expect(errorOf(() => parsePattern('/*E')).message).toContain('main pattern');
    const differ = errorOf(() => parsePattern('MM/*E/*-'));
    expect(differ.message).toContain('differs from the first MTP segment');
    expect(differ.position).toBe(8);
    expect(differ.character).toBe('-');
    expect(errorOf(() => parsePattern('MM/*|E')).character).toBe('|');
    expect(errorOf(() => parsePattern('')).message).toBe('pattern is empty');
  });
});

describe('model <-> pattern', () => {
  const patterns = [
    'MEMEM*EMEMEM*EMEMEM*EMEMEM*EMEMEM*EMEMEMEM*EMEMEMEME',
    'M-M-M-M*-M-M-M-M-M*-M-M-M-M-M*-M-M-M-M-M*-M-M-M-M-M-',
    'MEME*E/*E/*E',
    'MM*|E-M|*E/*',
    '*',
  ];
  it.each(patterns)('round-trips %s', (pattern) => {
    const model = parseModel(modelFromPattern(pattern, DEFAULTS));
    expect(patternFromModel(model)).toBe(pattern);
  });

  it('maps | to pipeline_cuts and / to mtp depth, using the templates and MTP defaults', () => {
    const model = parseModel(modelFromPattern('MM|*E/*E/*E/*E', { ...DEFAULTS, mtp: { loss_weight: 0.1, shared_weights: false } }));
    expect(model.pipeline_cuts).toEqual([2]);
    expect(model.mtp?.depth).toBe(3);
    expect(model.mtp?.blocks.map((b) => b.kind)).toEqual(['attention', 'moe']);
    expect(model.mtp?.loss_weight).toBe(0.1);
    expect(model.mtp?.shared_weights).toBe(false);
    const layers = flattenStack(model.stack);
    expect(layers[2]!.block).toMatchObject({ kind: 'attention', heads: 4, kv_heads: 2 });
    expect(model.d_model).toBe(64);
  });

  it('names the letter whose template is missing', () => {
    const { mlp: _mlp, ...blocks } = DEFAULTS.blocks;
    const error = errorOf(() => modelFromPattern('MM*-', { ...DEFAULTS, blocks }));
    expect(error.position).toBe(4);
    expect(error.message).toContain("no mlp block template for '-' at position 4");
  });
});

describe('compressStack', () => {
  const model = parseModel(modelFromPattern('M', DEFAULTS));
  const m = flattenStack(model.stack)[0]!.block;
  const a: Block = { ...parseModel(modelFromPattern('*', DEFAULTS)).stack[0] } as Block;
  const e: Block = { ...parseModel(modelFromPattern('E', DEFAULTS)).stack[0] } as Block;
  const m2: Block = { ...m, d_state: 32 } as Block;

  const cases: Array<[string, Block[]]> = [
    ['empty', []],
    ['single', [m]],
    ['no repeats', [m, a, e]],
    ['one run', [m, e, m, e, m, e]],
    ['runs and leftovers', [m, e, m, e, a, e, a, e, a, m]],
    ['differing parameters break runs', [m, m2, m, m2, m, m]],
  ];
  it.each(cases)('is lossless: %s', (_name, blocks) => {
    const stack = compressBlocks(blocks);
    expect(flattenStack(stack).map((l) => l.block)).toEqual(blocks);
    if (stack.length) expect(() => parseModel({ ...model, stack })).not.toThrow();
  });

  it('folds the longest run into a repeat group', () => {
    const stack = compressStack([m, e, m, e, m, e, a]);
    expect(stack).toHaveLength(2);
    expect(stack[0]).toMatchObject({ kind: 'repeat', count: 3 });
    expect((stack[0] as { blocks: Block[] }).blocks.map((b) => b.kind)).toEqual(['mamba2', 'moe']);
    expect(stack[1]).toEqual(a);
  });

  it('compresses the Nano pattern to a 7-layer group repeated 5 times first', () => {
    const nano = parseModel(modelFromPattern('MEMEM*EMEMEM*EMEMEM*EMEMEM*EMEMEM*EMEMEMEM*EMEMEMEME', DEFAULTS));
    expect(nano.stack[0]).toMatchObject({ kind: 'repeat', count: 5 });
    expect(flattenStack(nano.stack)).toHaveLength(52);
  });

  it('does not share objects between groups and input', () => {
    const blocks = [m, m];
    const stack = compressStack(blocks);
    const group = stack[0] as { blocks: Block[] };
    expect(group.blocks[0]).not.toBe(m);
  });
});

describe('patternFromModel', () => {
  it('writes | before each cut layer', () => {
    const model: ModelSpec = parseModel({ ...modelFromPattern('MMMM', DEFAULTS), pipeline_cuts: [1, 3] });
    expect(patternFromModel(model)).toBe('M|MM|M');
  });
});
