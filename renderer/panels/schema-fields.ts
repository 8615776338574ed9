// Walks a zod 4 schema (engine/spec/document.ts) into plain field descriptions the generated
// inspector renders: numbers with their bounds and integer-ness, enums as selects, booleans,
// strings, nullable/optional/default wrappers, objects, arrays, tuples and discriminated unions.
// Also `seedValue`, a valid starting value for a field (used when a nullable field is switched on
// or an array element is added). Pure; no React. Not the form itself (SchemaForm.tsx).
import type { z } from 'zod';

interface Wrappers {
  optional: boolean;
  nullable: boolean;
  /** Default filled by parsing, when the schema has one. */
  defaultValue?: unknown;
}

export type FieldSpec = Wrappers &
  (
    | { type: 'number'; int: boolean; min?: number; minInclusive: boolean; max?: number; maxInclusive: boolean; schema: z.ZodType }
    | { type: 'string'; minLength: number; schema: z.ZodType }
    | { type: 'boolean' }
    | { type: 'enum'; options: string[] }
    | { type: 'literal'; value: unknown }
    | { type: 'object'; fields: Array<{ key: string; spec: FieldSpec }> }
    | { type: 'array'; element: FieldSpec; minItems: number }
    | { type: 'tuple'; items: FieldSpec[] }
    | { type: 'union'; discriminator: string | null; options: FieldSpec[] }
    | { type: 'record' }
    | { type: 'unsupported'; zodType: string }
  );

interface ZodInternals {
  _zod: { def: Record<string, unknown> & { type: string; checks?: Array<{ _zod: { def: Record<string, unknown> } }> } };
}

const defOf = (schema: unknown) => (schema as ZodInternals)._zod.def;

/** Describes a zod schema as a FieldSpec (wrappers folded into flags). */
export function describeSchema(schema: z.ZodType): FieldSpec {
  const wrappers: Wrappers = { optional: false, nullable: false };
  let current: unknown = schema;
  for (;;) {
    const def = defOf(current);
    if (def.type === 'optional') wrappers.optional = true;
    else if (def.type === 'nullable') wrappers.nullable = true;
    else if (def.type === 'default') {
      if (!('defaultValue' in wrappers)) {
        const value = def.defaultValue;
        wrappers.defaultValue = typeof value === 'function' ? (value as () => unknown)() : value;
      }
    } else break;
    current = def.innerType;
  }
  const def = defOf(current);
  const inner = current as z.ZodType;
  switch (def.type) {
    case 'number': {
      let min: number | undefined;
      let max: number | undefined;
      let minInclusive = true;
      let maxInclusive = true;
      let int = false;
      for (const check of def.checks ?? []) {
        const c = check._zod.def;
        if (c.check === 'number_format' && (c.format === 'safeint' || c.format === 'int32')) int = true;
        if (c.check === 'greater_than') {
          min = c.value as number;
          minInclusive = c.inclusive as boolean;
        }
        if (c.check === 'less_than') {
          max = c.value as number;
          maxInclusive = c.inclusive as boolean;
        }
      }
      return { ...wrappers, type: 'number', int, min, minInclusive, max, maxInclusive, schema: inner };
    }
    case 'string': {
      let minLength = 0;
      for (const check of def.checks ?? []) {
        const c = check._zod.def;
        if (c.check === 'min_length') minLength = c.minimum as number;
      }
      return { ...wrappers, type: 'string', minLength, schema: inner };
    }
    case 'boolean':
      return { ...wrappers, type: 'boolean' };
    case 'enum':
      return { ...wrappers, type: 'enum', options: Object.values(def.entries as Record<string, string>) };
    case 'literal':
      return { ...wrappers, type: 'literal', value: (def.values as unknown[])[0] };
    case 'object': {
      const shape = def.shape as Record<string, z.ZodType>;
      return { ...wrappers, type: 'object', fields: Object.entries(shape).map(([key, s]) => ({ key, spec: describeSchema(s) })) };
    }
    case 'array': {
      let minItems = 0;
      for (const check of def.checks ?? []) {
        const c = check._zod.def;
        if (c.check === 'min_length') minItems = c.minimum as number;
      }
      return { ...wrappers, type: 'array', element: describeSchema(def.element as z.ZodType), minItems };
    }
    case 'tuple':
      return { ...wrappers, type: 'tuple', items: (def.items as z.ZodType[]).map((s) => describeSchema(s)) };
    case 'union':
      return {
        ...wrappers,
        type: 'union',
        discriminator: typeof def.discriminator === 'string' ? def.discriminator : null,
        options: (def.options as z.ZodType[]).map((s) => describeSchema(s)),
      };
    case 'record':
      return { ...wrappers, type: 'record' };
    default:
      return { ...wrappers, type: 'unsupported', zodType: def.type };
  }
}

/** Starting values for fields that have no default and no natural zero. */
const SEED_HINTS: Record<string, unknown> = {
  theta: 10000,
  latent: 256,
  sliding_window: 4096,
  path: 'data.txt',
};

/** A valid value for a field: its default, else a seed that satisfies its bounds. */
export function seedValue(spec: FieldSpec, key = ''): unknown {
  if ('defaultValue' in spec && spec.defaultValue !== undefined && spec.defaultValue !== null) return structuredClone(spec.defaultValue);
  if (key in SEED_HINTS) return SEED_HINTS[key];
  switch (spec.type) {
    case 'number': {
      let v = spec.min ?? 0;
      if (spec.min !== undefined && !spec.minInclusive) v = spec.int ? spec.min + 1 : spec.max !== undefined ? (spec.min + spec.max) / 2 : spec.min + 1;
      return v;
    }
    case 'string':
      return spec.minLength > 0 ? key || 'value' : '';
    case 'boolean':
      return false;
    case 'enum':
      return spec.options[0];
    case 'literal':
      return spec.value;
    case 'object': {
      const out: Record<string, unknown> = {};
      for (const field of spec.fields) {
        if (field.spec.optional && !('defaultValue' in field.spec)) continue;
        out[field.key] = field.spec.nullable && field.spec.defaultValue === null ? null : seedValue(field.spec, field.key);
      }
      return out;
    }
    case 'array':
      return Array.from({ length: spec.minItems }, () => seedValue(spec.element, key));
    case 'tuple':
      return spec.items.map((s, i) => (i === 0 ? seedValue(s) : Math.max(Number(seedValue(s)) || 0, 1)));
    case 'union':
      return spec.options[0] ? seedValue(spec.options[0], key) : null;
    case 'record':
      return {};
    case 'unsupported':
      return null;
  }
}

/** Human text of a number field's bounds, e.g. "integer > 0" or "0 < x <= 1". */
export function boundsText(spec: Extract<FieldSpec, { type: 'number' }>): string {
  const parts: string[] = [];
  if (spec.int) parts.push('integer');
  if (spec.min !== undefined && spec.max !== undefined && Number.isFinite(spec.max) && spec.max < Number.MAX_SAFE_INTEGER)
    parts.push(`${spec.min} ${spec.minInclusive ? '<=' : '<'} x ${spec.maxInclusive ? '<=' : '<'} ${spec.max}`);
  else if (spec.min !== undefined) parts.push(`${spec.minInclusive ? '>=' : '>'} ${spec.min}`);
  return parts.join(' ');
}

/** The option of a discriminated union whose discriminator literal equals `value`. */
export function unionOption(spec: Extract<FieldSpec, { type: 'union' }>, value: unknown): FieldSpec | undefined {
  if (!spec.discriminator) return undefined;
  return spec.options.find(
    (o) => o.type === 'object' && o.fields.some((f) => f.key === spec.discriminator && f.spec.type === 'literal' && f.spec.value === value),
  );
}

/** The discriminator values of a discriminated union, in option order. */
export function unionTags(spec: Extract<FieldSpec, { type: 'union' }>): string[] {
  const tags: string[] = [];
  for (const o of spec.options) {
    if (o.type !== 'object') continue;
    const f = o.fields.find((x) => x.key === spec.discriminator);
    if (f && f.spec.type === 'literal') tags.push(String(f.spec.value));
  }
  return tags;
}
