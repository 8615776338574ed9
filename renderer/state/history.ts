// Undo/redo history as a pure value: past states, the present one, future states. Consecutive
// changes with the same coalesce key (typing digits into one field) merge into one undo step.
// It is not the store (document-store.ts); it holds any immutable value.

export interface History<T> {
  past: T[];
  present: T;
  future: T[];
  /** Coalesce key of the change that produced `present`, null after undo/redo/reset. */
  lastKey: string | null;
}

/** How many undo steps are kept. */
export const HISTORY_LIMIT = 200;

export function startHistory<T>(present: T): History<T> {
  return { past: [], present, future: [], lastKey: null };
}

/** Records `next` as the new present. Same-key consecutive changes replace instead of pushing. */
export function pushHistory<T>(h: History<T>, next: T, key: string | null = null): History<T> {
  if (next === h.present) return h;
  if (key !== null && key === h.lastKey) return { past: h.past, present: next, future: [], lastKey: key };
  const past = h.past.length >= HISTORY_LIMIT ? [...h.past.slice(h.past.length - HISTORY_LIMIT + 1), h.present] : [...h.past, h.present];
  return { past, present: next, future: [], lastKey: key };
}

export function undoHistory<T>(h: History<T>): History<T> {
  if (h.past.length === 0) return h;
  const previous = h.past[h.past.length - 1]!;
  return { past: h.past.slice(0, -1), present: previous, future: [h.present, ...h.future], lastKey: null };
}

export function redoHistory<T>(h: History<T>): History<T> {
  if (h.future.length === 0) return h;
  const [next, ...rest] = h.future;
  return { past: [...h.past, h.present], present: next!, future: rest, lastKey: null };
}
