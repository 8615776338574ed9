// Memoized derived data of the document: validation issues (per editor node id), the flattened
// layers and the resolved precision table. Each is computed once per document/model object
// (WeakMap caches), so every component reading them after an edit shares one computation and
// unchanged documents cost nothing. Not here: analytics reports (state/analytics.ts).
import { type Layer, type ModelSpec, type StackItem, type StrataDocument, flattenStack } from '../../engine/spec/document.js';
import { type PrecisionTable, layerForwardFormats, resolvePrecision } from '../../engine/spec/precision.js';
import { type DocIssue, checkModel, checkPipeline } from '../../engine/spec/validate.js';
import { StrataDocument as DocumentSchema } from '../../engine/spec/document.js';
import { formatPath } from '../../engine/spec/validate.js';

function memo<K extends object, V>(compute: (key: K) => V): (key: K) => V {
  const cache = new WeakMap<K, V>();
  return (key) => {
    let value = cache.get(key);
    if (value === undefined) {
      value = compute(key);
      cache.set(key, value);
    }
    return value;
  };
}

export interface ValidationView {
  issues: DocIssue[];
  errors: number;
  warnings: number;
  /** Issues by editor node id (block or repeat group), for badges on the layer graph. */
  byNode: Map<string, DocIssue[]>;
}

const STACK_PATH = /^model\.stack\[(\d+)\](?:\.blocks\[(\d+)\])?/;

/** The editor node (block or group id) an issue path points into, if any. */
export function nodeIdOfIssue(stack: readonly StackItem[], issue: DocIssue): string | undefined {
  const m = STACK_PATH.exec(issue.path);
  if (!m) return undefined;
  const item = stack[Number(m[1])];
  if (!item) return undefined;
  if (m[2] !== undefined && item.kind === 'repeat') return item.blocks[Number(m[2])]?.id ?? item.id;
  return item.id;
}

/** Schema and cross-field issues of the document in the editor (which may be mid-edit). */
export const validationOf = memo((doc: StrataDocument): ValidationView => {
  const parsed = DocumentSchema.safeParse(doc);
  const issues: DocIssue[] = parsed.success
    ? [...checkModel(parsed.data.model), ...checkPipeline(parsed.data)]
    : parsed.error.issues.map((i) => ({ severity: 'error' as const, path: formatPath(i.path), message: `${formatPath(i.path)}: ${i.message}` }));
  const byNode = new Map<string, DocIssue[]>();
  for (const issue of issues) {
    const id = nodeIdOfIssue(doc.model.stack, issue);
    if (!id) continue;
    const list = byNode.get(id);
    if (list) list.push(issue);
    else byNode.set(id, [issue]);
  }
  const errors = issues.filter((i) => i.severity === 'error').length;
  return { issues, errors, warnings: issues.length - errors, byNode };
});

export const layersOf = memo((stack: StackItem[]): Layer[] => flattenStack(stack));

export const precisionOf = memo((model: ModelSpec): PrecisionTable => resolvePrecision(model));

/** Per layer: its forward formats (most common first), from the resolved table. */
export const layerFormatsOf = memo((model: ModelSpec): string[][] => {
  const table = precisionOf(model);
  return layersOf(model.stack).map((l) => layerForwardFormats(table, l.index));
});
