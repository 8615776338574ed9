// Tests of "shrink to trainable size" on the published templates: the pattern survives, the
// budget holds, and the result passes the document's cross-field validation.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { countParams } from '../../engine/spec/analytics/params.js';
import { flattenStack } from '../../engine/spec/document.js';
import { patternFromModel } from '../../engine/spec/megatron-pattern.js';
import { loadDocument, parseModelSpec } from '../../engine/spec/validate.js';
import { shrinkBlock, shrinkModel } from './shrink.js';

const template = (name: string) =>
  loadDocument(JSON.parse(readFileSync(new URL(`../../templates/${name}.json`, import.meta.url), 'utf8')), name).model;

describe('shrinkModel', () => {
  for (const name of ['nemotron-3-nano-30b-a3b', 'nemotron-3-super-120b-a12b', 'qwen3-30b-a3b', 'mamba2-2.7b', 'nemotron-h-8b']) {
    it(`keeps the pattern of ${name} and fits 4M parameters`, () => {
      const model = template(name);
      const { model: small, params, overBudget } = shrinkModel(model, { targetParams: 4_000_000, vocabSize: 259 });
      expect(overBudget).toBe(false);
      expect(params).toBeLessThanOrEqual(4_000_000);
      expect(params).toBe(countParams(small).total);
      expect(params).toBeGreaterThan(200_000);
      expect(patternFromModel(small)).toBe(patternFromModel(model));
      expect(small.stack.map((i) => i.kind)).toEqual(model.stack.map((i) => i.kind));
      expect(small.vocab_size).toBe(320);
      const checked = parseModelSpec(small);
      expect(checked.ok ? [] : checked.errors.map((e) => e.message)).toEqual([]);
      expect(small.precision).toEqual(model.precision);
    });
  }

  it('grows the width with the budget', () => {
    const model = template('nemotron-3-nano-30b-a3b');
    const small = shrinkModel(model, { targetParams: 2_000_000, vocabSize: 259 }).model;
    const larger = shrinkModel(model, { targetParams: 40_000_000, vocabSize: 259 }).model;
    expect(larger.d_model).toBeGreaterThan(small.d_model);
  });

  it('reports a budget below the narrowest width', () => {
    const model = template('nemotron-3-nano-30b-a3b');
    const result = shrinkModel(model, { targetParams: 1000, vocabSize: 259 });
    expect(result.overBudget).toBe(true);
    expect(result.model.d_model).toBe(32);
    expect(flattenStack(result.model.stack)).toHaveLength(52);
  });

  it('keeps GQA and grouping divisibility when scaling blocks', () => {
    const attention = shrinkBlock({ kind: 'attention', heads: 32, kv_heads: 2, head_dim: 128, rope: null, qk_norm: false, bias: false, sliding_window: null }, 2688, 96);
    if (attention.kind !== 'attention') throw new Error('kind changed');
    expect(attention.heads % attention.kv_heads).toBe(0);
    expect(attention.heads * attention.head_dim).toBeLessThanOrEqual(96);
  });
});
