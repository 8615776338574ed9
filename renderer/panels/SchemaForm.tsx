// A form generated from a zod schema description (schema-fields.ts): numbers with bounds checked
// as you type (invalid text stays local and shows the schema's message; valid values commit),
// enums as selects, booleans as checkboxes, nullable/optional fields with an enable switch,
// tuples inline, arrays of enums as checkbox groups, arrays of numbers as lists, arrays of
// objects with add/remove, discriminated unions with a kind select. Every control is labelled
// with its field path. Not the inspector's choice of what to show (Inspector.tsx).
import { useEffect, useId, useState } from 'react';
import type { PathPart } from '../model/paths.js';
import { type FieldSpec, boundsText, seedValue, unionOption, unionTags } from './schema-fields.js';

export interface SchemaFormProps {
  spec: FieldSpec;
  value: unknown;
  /** Field path from the edited object's root (for labels and change events). */
  path: PathPart[];
  onChange: (path: PathPart[], value: unknown) => void;
  /** Keys not to render at the top level (edited elsewhere). */
  hide?: readonly string[];
}

const labelOf = (path: PathPart[]) => path.map((p) => (typeof p === 'number' ? `#${p + 1}` : p)).join('.') || 'value';

function NumberInput({ spec, value, path, onChange }: { spec: Extract<FieldSpec, { type: 'number' }>; value: number; path: PathPart[]; onChange: SchemaFormProps['onChange'] }) {
  const id = useId();
  const [text, setText] = useState(String(value));
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    setText((t) => (Number(t) === value ? t : String(value)));
    setError(null);
  }, [value]);
  const label = labelOf(path);
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <input
        id={id}
        type="number"
        inputMode={spec.int ? 'numeric' : 'decimal'}
        step={spec.int ? 1 : 'any'}
        value={text}
        aria-invalid={error !== null}
        title={boundsText(spec)}
        onChange={(e) => {
          const raw = e.target.value;
          setText(raw);
          const n = raw.trim() === '' ? Number.NaN : Number(raw);
          const result = spec.schema.safeParse(n);
          if (!result.success) {
            setError(Number.isNaN(n) ? `${label}: enter a number` : `${label}: ${result.error.issues[0]?.message ?? 'invalid'} (${boundsText(spec)})`);
            return;
          }
          setError(null);
          onChange(path, n);
        }}
      />
      {error ? (
        <div className="field-error" role="alert">
          {error}
        </div>
      ) : null}
    </div>
  );
}

function TextInput({ spec, value, path, onChange }: { spec: Extract<FieldSpec, { type: 'string' }>; value: string; path: PathPart[]; onChange: SchemaFormProps['onChange'] }) {
  const id = useId();
  const [text, setText] = useState(value);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => setText(value), [value]);
  return (
    <div className="field">
      <label htmlFor={id}>{labelOf(path)}</label>
      <input
        id={id}
        type="text"
        value={text}
        aria-invalid={error !== null}
        onChange={(e) => {
          setText(e.target.value);
          const result = spec.schema.safeParse(e.target.value);
          if (!result.success) {
            setError(`${labelOf(path)}: ${result.error.issues[0]?.message ?? 'invalid'}`);
            return;
          }
          setError(null);
          onChange(path, e.target.value);
        }}
      />
      {error ? (
        <div className="field-error" role="alert">
          {error}
        </div>
      ) : null}
    </div>
  );
}

function NumberList({ value, path, onChange, element }: { value: number[]; path: PathPart[]; onChange: SchemaFormProps['onChange']; element: FieldSpec }) {
  const id = useId();
  const [text, setText] = useState(value.join(', '));
  const [error, setError] = useState<string | null>(null);
  useEffect(() => setText(value.join(', ')), [value]);
  return (
    <div className="field">
      <label htmlFor={id}>{labelOf(path)}</label>
      <input
        id={id}
        type="text"
        value={text}
        aria-invalid={error !== null}
        onChange={(e) => {
          setText(e.target.value);
          const parts = e.target.value.split(/[\s,]+/).filter(Boolean).map(Number);
          const bad = parts.find((n) => element.type === 'number' && !element.schema.safeParse(n).success);
          if (bad !== undefined || parts.some(Number.isNaN)) {
            setError(`${labelOf(path)}: ${element.type === 'number' ? boundsText(element) : 'numbers'} separated by commas`);
            return;
          }
          setError(null);
          onChange(path, parts);
        }}
      />
      {error ? (
        <div className="field-error" role="alert">
          {error}
        </div>
      ) : null}
    </div>
  );
}

/** Renders one field (and its children). */
export function SchemaField({ spec, value, path, onChange, hide }: SchemaFormProps) {
  const key = path.at(-1);
  const label = labelOf(path);
  const id = useId();
  const switchable = spec.nullable || (spec.optional && !('defaultValue' in spec));
  if (switchable) {
    const on = value !== null && value !== undefined;
    const off = spec.nullable ? null : undefined;
    return (
      <div className="field switchable">
        <label className="inline">
          <input
            type="checkbox"
            checked={on}
            aria-label={`Use ${label}`}
            onChange={(e) => onChange(path, e.target.checked ? seedValue({ ...spec, nullable: false, optional: false, defaultValue: undefined }, String(key ?? '')) : off)}
          />
          <span>{label}</span>
        </label>
        {on ? <SchemaField spec={{ ...spec, nullable: false, optional: false }} value={value} path={path} onChange={onChange} /> : null}
      </div>
    );
  }
  switch (spec.type) {
    case 'number':
      return <NumberInput spec={spec} value={typeof value === 'number' ? value : Number(seedValue(spec))} path={path} onChange={onChange} />;
    case 'string':
      return <TextInput spec={spec} value={typeof value === 'string' ? value : ''} path={path} onChange={onChange} />;
    case 'boolean':
      return (
        <div className="field">
          <label className="inline">
            <input type="checkbox" checked={value === true} onChange={(e) => onChange(path, e.target.checked)} />
            <span>{label}</span>
          </label>
        </div>
      );
    case 'enum':
      return (
        <div className="field">
          <label htmlFor={id}>{label}</label>
          <select id={id} value={String(value ?? '')} onChange={(e) => onChange(path, e.target.value)}>
            {spec.options.map((o) => (
              <option key={o} value={o}>
                {o}
              </option>
            ))}
          </select>
        </div>
      );
    case 'literal':
      return null;
    case 'object': {
      const obj = (value ?? {}) as Record<string, unknown>;
      const fields = spec.fields.filter((f) => !(hide ?? []).includes(f.key));
      const body = fields.map((f) => <SchemaField key={f.key} spec={f.spec} value={obj[f.key]} path={[...path, f.key]} onChange={onChange} />);
      if (path.length === 0) return <div className="schema-form">{body}</div>;
      return (
        <fieldset className="field-group">
          <legend>{label}</legend>
          {body}
        </fieldset>
      );
    }
    case 'tuple': {
      const items = Array.isArray(value) ? value : [];
      return (
        <fieldset className="field-group inline-group">
          <legend>{label}</legend>
          {spec.items.map((item, i) => (
            <SchemaField key={i} spec={item} value={items[i]} path={[...path, i]} onChange={(p, v) => onChange(path, items.map((x, j) => (j === p[path.length] ? v : x)))} />
          ))}
        </fieldset>
      );
    }
    case 'array':
      return <ArrayField spec={spec} value={Array.isArray(value) ? value : []} path={path} onChange={onChange} />;
    case 'union': {
      const tags = unionTags(spec);
      const tag = value && typeof value === 'object' && spec.discriminator ? (value as Record<string, unknown>)[spec.discriminator] : undefined;
      const option = unionOption(spec, tag);
      return (
        <fieldset className="field-group">
          <legend>{label}</legend>
          <div className="field">
            <label htmlFor={id}>{`${label} ${spec.discriminator ?? 'kind'}`}</label>
            <select id={id} value={String(tag ?? '')} onChange={(e) => onChange(path, seedValue(unionOption(spec, e.target.value)!))}>
              {tags.map((t) => (
                <option key={t} value={t}>
                  {t}
                </option>
              ))}
            </select>
          </div>
          {option && option.type === 'object'
            ? option.fields.map((f) => <SchemaField key={f.key} spec={f.spec} value={(value as Record<string, unknown>)[f.key]} path={[...path, f.key]} onChange={onChange} />)
            : null}
        </fieldset>
      );
    }
    case 'record':
    case 'unsupported':
      return null;
  }
}

function ArrayField({ spec, value, path, onChange }: { spec: Extract<FieldSpec, { type: 'array' }>; value: unknown[]; path: PathPart[]; onChange: SchemaFormProps['onChange'] }) {
  const label = labelOf(path);
  const element = spec.element;
  if (element.type === 'enum') {
    return (
      <fieldset className="field-group inline-group">
        <legend>{label}</legend>
        {element.options.map((o) => (
          <label key={o} className="inline">
            <input
              type="checkbox"
              checked={value.includes(o)}
              aria-label={`${label} ${o}`}
              onChange={(e) => onChange(path, e.target.checked ? element.options.filter((x) => x === o || value.includes(x)) : value.filter((x) => x !== o))}
            />
            <span>{o}</span>
          </label>
        ))}
      </fieldset>
    );
  }
  if (element.type === 'number') return <NumberList value={value as number[]} path={path} onChange={onChange} element={element} />;
  return (
    <fieldset className="field-group">
      <legend>{label}</legend>
      {value.map((item, i) => (
        <div key={i} className="array-item">
          <SchemaField spec={element} value={item} path={[...path, i]} onChange={onChange} />
          <button type="button" aria-label={`Remove ${label} #${i + 1}`} disabled={value.length <= spec.minItems} onClick={() => onChange(path, value.filter((_, j) => j !== i))}>
            Remove
          </button>
        </div>
      ))}
      <button type="button" aria-label={`Add ${label}`} onClick={() => onChange(path, [...value, seedValue(element, String(path.at(-1) ?? ''))])}>
        Add
      </button>
    </fieldset>
  );
}
