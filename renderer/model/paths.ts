// Immutable set by path ("a", 0, "b") over plain JSON-like data, used by the generated
// inspector to edit one field of the document. Copies only the objects along the path, so the
// rest of the document keeps its identity. Not a schema walker (panels/schema-fields.ts).

export type PathPart = string | number;

/** A copy of `root` with `value` at `path`; `undefined` removes an object key. */
export function setIn<T>(root: T, path: readonly PathPart[], value: unknown): T {
  if (path.length === 0) return value as T;
  const [head, ...rest] = path as [PathPart, ...PathPart[]];
  const container: unknown = root ?? (typeof head === 'number' ? [] : {});
  const child = (container as Record<PathPart, unknown>)[head];
  const nextChild = setIn(child, rest, value);
  if (Array.isArray(container)) {
    const copy = container.slice();
    copy[head as number] = nextChild;
    return copy as T;
  }
  const copy = { ...(container as Record<string, unknown>) };
  if (nextChild === undefined) delete copy[head as string];
  else copy[head as string] = nextChild;
  return copy as T;
}

