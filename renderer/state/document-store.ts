// The document slice: the open Strata document with undo/redo history, its file path and the
// saved/dirty state. Every edit goes through `change` so it can be undone; the domain edits
// (add a block, paint precision, ...) live in document-actions.ts. Not here: selection, view,
// runs and preferences (their own slices), and any file or host access.
import { create } from 'zustand';
import type { ModelSpec, StrataDocument } from '../../engine/spec/document.js';
import { ensureIds } from '../model/stack-edit.js';
import { type History, pushHistory, redoHistory, startHistory, undoHistory } from './history.js';

export interface DocumentState {
  history: History<StrataDocument>;
  /** The present document (same object as history.present). */
  doc: StrataDocument;
  /** Where the document was opened from or last saved to; null for a new, unsaved document. */
  filePath: string | null;
  /** The document object last written to disk (dirty when `doc` differs). */
  savedDoc: StrataDocument | null;
  /** Replaces the document (open, new, template): clears history. */
  load: (doc: StrataDocument, filePath: string | null, saved: boolean) => void;
  /** Applies an undoable edit. `key` merges consecutive edits of one field into one undo step. */
  change: (recipe: (doc: StrataDocument) => StrataDocument, key?: string) => void;
  /** Applies an undoable edit of the model part. */
  changeModel: (recipe: (model: ModelSpec) => ModelSpec, key?: string) => void;
  undo: () => void;
  redo: () => void;
  markSaved: (filePath: string, doc: StrataDocument) => void;
}

/** Gives stack items ids the editor needs; returns the same document when none were missing. */
function withIds(doc: StrataDocument): StrataDocument {
  const stack = ensureIds(doc.model.stack);
  return stack === doc.model.stack ? doc : { ...doc, model: { ...doc.model, stack } };
}

export function createDocumentStore(initial: StrataDocument) {
  const first = withIds(initial);
  return create<DocumentState>()((set, get) => ({
    history: startHistory(first),
    doc: first,
    filePath: null,
    savedDoc: null,
    load: (doc, filePath, saved) => {
      const ready = withIds(doc);
      set({ history: startHistory(ready), doc: ready, filePath, savedDoc: saved ? ready : null });
    },
    change: (recipe, key) => {
      const { history } = get();
      const next = withIds(recipe(history.present));
      if (next === history.present) return;
      const updated = pushHistory(history, next, key ?? null);
      set({ history: updated, doc: updated.present });
    },
    changeModel: (recipe, key) => {
      get().change((doc) => {
        const model = recipe(doc.model);
        return model === doc.model ? doc : { ...doc, model };
      }, key);
    },
    undo: () => {
      const history = undoHistory(get().history);
      set({ history, doc: history.present });
    },
    redo: () => {
      const history = redoHistory(get().history);
      set({ history, doc: history.present });
    },
    markSaved: (filePath, doc) => set({ filePath, savedDoc: doc }),
  }));
}

export type DocumentStore = ReturnType<typeof createDocumentStore>;

/** True when the present document differs from the one last saved. */
export function isDirty(state: Pick<DocumentState, 'doc' | 'savedDoc'>): boolean {
  return state.doc !== state.savedDoc;
}
