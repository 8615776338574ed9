// Tests of the zod schema walker that drives the generated inspector.
import { describe, expect, it } from 'vitest';
import { Dataset, Mamba2Block, ModelSpec, MoeBlock, PipelineSpec, Rope, Training } from '../../engine/spec/document.js';
import { boundsText, describeSchema, seedValue, unionOption, unionTags } from './schema-fields.js';

const field = (spec: ReturnType<typeof describeSchema>, key: string) => {
  if (spec.type !== 'object') throw new Error('not an object');
  return spec.fields.find((f) => f.key === key)!.spec;
};

describe('describeSchema', () => {
  it('reads integer bounds, defaults and enums', () => {
    const block = describeSchema(Mamba2Block);
    const heads = field(block, 'heads');
    expect(heads).toMatchObject({ type: 'number', int: true, min: 0, minInclusive: false, optional: false });
    if (heads.type === 'number') expect(boundsText(heads)).toBe('integer > 0');
    expect(field(block, 'conv_bias')).toMatchObject({ type: 'boolean', defaultValue: true });
    expect(field(block, 'dt_limit')).toMatchObject({ type: 'tuple', nullable: true, defaultValue: null });
    expect(field(block, 'kind')).toMatchObject({ type: 'literal', value: 'mamba2' });
    expect(field(describeSchema(Training), 'schedule')).toMatchObject({ type: 'enum', options: ['cosine', 'wsd', 'constant'], defaultValue: 'cosine' });
    const fraction = field(describeSchema(Rope), 'fraction');
    if (fraction.type !== 'number') throw new Error('fraction is a number');
    expect(boundsText(fraction)).toBe('0 < x <= 1');
  });

  it('describes nested objects, arrays and discriminated unions', () => {
    expect(field(describeSchema(MoeBlock), 'router')).toMatchObject({ type: 'object' });
    const stack = field(describeSchema(ModelSpec), 'stack');
    expect(stack).toMatchObject({ type: 'array', minItems: 1 });
    const dataset = describeSchema(Dataset);
    if (dataset.type !== 'union') throw new Error('dataset is a union');
    expect(dataset.discriminator).toBe('source');
    expect(unionTags(dataset)).toEqual(['corpus', 'file', 'task']);
    expect(unionOption(dataset, 'task')).toBeDefined();
  });

  it('seeds values that the schema accepts', () => {
    const dataset = describeSchema(Dataset);
    if (dataset.type !== 'union') throw new Error('dataset is a union');
    for (const tag of unionTags(dataset)) {
      const seed = seedValue(unionOption(dataset, tag)!);
      expect(Dataset.safeParse(seed).success).toBe(true);
    }
    expect(Rope.safeParse(seedValue(describeSchema(Rope))).success).toBe(true);
    expect(PipelineSpec.safeParse(seedValue(describeSchema(PipelineSpec))).success).toBe(true);
    const limit = field(describeSchema(Mamba2Block), 'dt_limit');
    const seededLimit = seedValue({ ...limit, defaultValue: undefined, nullable: false });
    expect(Mamba2Block.shape.dt_limit.safeParse(seededLimit).success).toBe(true);
  });
});
