// Differences between two run documents for the compare view: changed leaves of the JSON (by
// path, with both values), and per-layer differences of the resolved precision (which layers and
// roles run in another format). Pure. Not the view (RunCompare.tsx).
import type { StrataDocument } from '../../engine/spec/document.js';
import { resolvePrecision } from '../../engine/spec/precision.js';

export interface LeafChange {
  path: string;
  a: unknown;
  b: unknown;
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Changed leaves between two JSON values; `view` and editor-only ids are ignored. */
export function diffJson(a: unknown, b: unknown, path = '', out: LeafChange[] = []): LeafChange[] {
  if (Object.is(a, b)) return out;
  if (Array.isArray(a) && Array.isArray(b)) {
    const n = Math.max(a.length, b.length);
    for (let i = 0; i < n; i++) diffJson(a[i], b[i], `${path}[${i}]`, out);
    return out;
  }
  if (isObject(a) && isObject(b)) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    for (const key of keys) {
      if (key === 'id' || key === 'collapsed' || (path === '' && key === 'view')) continue;
      diffJson(a[key], b[key], path ? `${path}.${key}` : key, out);
    }
    return out;
  }
  out.push({ path, a, b });
  return out;
}

export interface PrecisionChange {
  /** Layer index, or -1 for embedding/head, or 'mtp N' rows as scope. */
  scope: string;
  layer: number;
  role: string;
  a: string;
  b: string;
}

/** Forward/backward format differences of the resolved precision tables of two documents. */
export function diffPrecision(a: StrataDocument, b: StrataDocument): PrecisionChange[] {
  const key = (scope: string, layer: number, role: string) => `${scope}|${layer}|${role}`;
  const describe = (f: { fprop: string; dgrad: string; wgrad: string }) => (f.fprop === f.dgrad && f.dgrad === f.wgrad ? f.fprop : `${f.fprop}/${f.dgrad}/${f.wgrad}`);
  const rowsA = new Map(resolvePrecision(a.model).rows.map((r) => [key(r.scope, r.layer, r.role), describe(r.formats)]));
  const changes: PrecisionChange[] = [];
  for (const r of resolvePrecision(b.model).rows) {
    const k = key(r.scope, r.layer, r.role);
    const before = rowsA.get(k) ?? 'absent';
    const after = describe(r.formats);
    if (before !== after) changes.push({ scope: r.scope, layer: r.layer, role: r.role, a: before, b: after });
    rowsA.delete(k);
  }
  for (const [k, before] of rowsA) {
    const [scope, layer, role] = k.split('|') as [string, string, string];
    changes.push({ scope, layer: Number(layer), role, a: before, b: 'absent' });
  }
  return changes;
}

/** Compacts precision changes into lines, merging consecutive layers with the same change. */
export function summarizePrecisionChanges(changes: readonly PrecisionChange[]): string[] {
  const groups = new Map<string, number[]>();
  for (const c of changes) {
    const k = `${c.scope === 'layer' ? '' : `${c.scope} `}${c.role}: ${c.a} -> ${c.b}`;
    const list = groups.get(k) ?? [];
    list.push(c.layer);
    groups.set(k, list);
  }
  const lines: string[] = [];
  for (const [k, layers] of groups) {
    const ranges: string[] = [];
    const sorted = [...new Set(layers)].sort((x, y) => x - y);
    let start = sorted[0]!;
    let prev = start;
    for (const l of [...sorted.slice(1), Number.NaN]) {
      if (l === prev + 1) {
        prev = l;
        continue;
      }
      ranges.push(start === prev ? `${start}` : `${start}-${prev}`);
      start = l;
      prev = l;
    }
    lines.push(sorted[0]! < 0 ? k : `layers ${ranges.join(', ')} ${k}`);
  }
  return lines;
}
