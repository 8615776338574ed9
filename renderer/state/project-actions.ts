// Opening, saving, templates and autosave: the document slice meets the host's ProjectService.
// Errors never lose work: a failed open keeps the current document and shows the file's problem
// (corrupt JSON with line/column, or the invalid layer/field) in an error dialog; autosave keeps
// the latest unsaved state in the host and it is restored at start-up.
// Not here: the UI of dialogs (panels/Dialogs.tsx) and the contract itself.
import { create } from 'zustand';
import type { TemplateSummary } from '../../electron/contract.js';
import type { StrataDocument } from '../../engine/spec/document.js';
import { describeHostError, host } from '../host/host.js';
import { isDirty } from './document-store.js';
import { useDocumentStore, useSelectionStore, useViewStore } from './stores.js';

export type PathMode = 'open' | 'save' | 'folder';

/** What the path prompt shows: its title, the field's label and the submit button's text. */
export interface PathWording {
  title: string;
  label: string;
  submit: string;
}

export const DESIGN_PATH_WORDING: Record<'open' | 'save', PathWording> = {
  open: { title: 'Open design', label: 'Project file path', submit: 'Open file' },
  save: { title: 'Save design', label: 'Project file path', submit: 'Save file' },
};

export interface PathRequest extends PathWording {
  mode: PathMode;
  defaultPath: string;
  resolve: (path: string | null) => void;
}

export interface ProjectUiState {
  /** A failure to show in the error dialog (title, one sentence, issue lines). */
  error: { title: string; message: string; details: string[] } | null;
  /** Browser mode has no native dialogs: the UI asks for a path with this request open. */
  pathRequest: PathRequest | null;
  templates: TemplateSummary[] | null;
  nativeDialogs: boolean | null;
}

export const useProjectUi = create<ProjectUiState>()(() => ({ error: null, pathRequest: null, templates: null, nativeDialogs: null }));

function showError(title: string, error: unknown): void {
  const { message, details } = describeHostError(error);
  useProjectUi.setState({ error: { title, message, details } });
  useViewStore.getState().setStatus(message, 'error');
}

export function dismissError(): void {
  useProjectUi.setState({ error: null });
}

/** Default file name for the current design. */
export function defaultProjectPath(doc: StrataDocument): string {
  const stem = doc.model.name.toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '') || 'design';
  return `${stem}.strata.json`;
}

async function hasNativeDialogs(): Promise<boolean> {
  const known = useProjectUi.getState().nativeDialogs;
  if (known !== null) return known;
  const info = await host().host.info();
  useProjectUi.setState({ nativeDialogs: info.nativeDialogs });
  return info.nativeDialogs;
}

/**
 * Asks for a path: the native dialog in Electron, the in-app path dialog in browser mode. Design
 * files use the Open/Save design wording; other uses (export folders, run folders) pass theirs.
 */
export async function askPath(mode: PathMode, defaultPath: string, wording: PathWording = DESIGN_PATH_WORDING[mode === 'folder' ? 'open' : mode]): Promise<string | null> {
  if (await hasNativeDialogs()) return host().projects.choosePath({ mode, defaultPath, title: wording.title });
  return new Promise((resolve) => {
    useProjectUi.setState({
      pathRequest: {
        mode,
        defaultPath,
        ...wording,
        resolve: (path) => {
          useProjectUi.setState({ pathRequest: null });
          resolve(path);
        },
      },
    });
  });
}

/** Saves to the current file, or asks for one (`saveAs` always asks). Returns the path or null. */
export async function saveProject(saveAs = false): Promise<string | null> {
  const { doc, filePath } = useDocumentStore.getState();
  try {
    const path = !saveAs && filePath ? filePath : await askPath('save', filePath ?? defaultProjectPath(doc));
    if (!path) return null;
    const saved = await host().projects.save(path, doc);
    useDocumentStore.getState().markSaved(saved.path, doc);
    useViewStore.getState().setStatus(`Saved ${saved.path}`);
    return saved.path;
  } catch (error) {
    showError('Could not save the design', error);
    return null;
  }
}

/** Opens a project file (asks for the path when none is given). The current design stays on failure. */
export async function openProject(path?: string): Promise<boolean> {
  try {
    const chosen = path ?? (await askPath('open', useDocumentStore.getState().filePath ?? ''));
    if (!chosen) return false;
    const opened = await host().projects.open(chosen);
    useDocumentStore.getState().load(opened.doc, opened.path, opened.migratedFrom === undefined);
    useSelectionStore.getState().select([]);
    const note = opened.migratedFrom !== undefined ? ` (migrated from version ${opened.migratedFrom}; save to keep it)` : '';
    const warn = opened.warnings.length ? `, ${opened.warnings.length} warning(s)` : '';
    useViewStore.getState().setStatus(`Opened ${opened.path}${note}${warn}`);
    return true;
  } catch (error) {
    showError('Could not open the design', error);
    return false;
  }
}

export async function refreshTemplates(): Promise<void> {
  try {
    useProjectUi.setState({ templates: await host().projects.listTemplates() });
  } catch (error) {
    showError('Could not list templates', error);
  }
}

/** Replaces the design by a template (undo history restarts; the file path is cleared). */
export async function openTemplate(name: string): Promise<boolean> {
  try {
    const doc = await host().projects.loadTemplate(name);
    useDocumentStore.getState().load(doc, null, false);
    useSelectionStore.getState().select([]);
    useViewStore.getState().setGalleryOpen(false);
    useViewStore.getState().setStatus(`Template ${name} opened (unsaved)`);
    return true;
  } catch (error) {
    showError(`Could not open template ${name}`, error);
    return false;
  }
}

/**
 * Brings back the last autosaved state if there is one, unless the user already opened or edited
 * something while it was being read (their newer work wins).
 */
export async function restoreAutosave(): Promise<boolean> {
  const startedWith = useDocumentStore.getState().doc;
  try {
    const saved = await host().projects.restoreAutosave();
    if (!saved || useDocumentStore.getState().doc !== startedWith) return false;
    useDocumentStore.getState().load(saved.doc, saved.projectPath ?? null, false);
    useViewStore.getState().setStatus(`Restored unsaved work from ${saved.savedAt}`);
    return true;
  } catch (error) {
    showError('Could not restore the autosaved design', error);
    return false;
  }
}

/** Milliseconds of quiet after an edit before autosaving. */
export const AUTOSAVE_DELAY_MS = 1500;

/**
 * Autosaves each dirty document after AUTOSAVE_DELAY_MS without edits, and at once when the page
 * is being hidden or closed. Returns the function that stops it (and flushes a pending save).
 */
export function startAutosave(delayMs = AUTOSAVE_DELAY_MS): () => void {
  let timer: ReturnType<typeof setTimeout> | null = null;
  let lastSaved: StrataDocument | null = null;
  const flush = () => {
    timer = null;
    const state = useDocumentStore.getState();
    if (!isDirty(state) || state.doc === lastSaved) return;
    const doc = state.doc;
    host()
      .projects.autosave(doc, state.filePath ?? undefined)
      .then(() => {
        lastSaved = doc;
      })
      .catch((error: unknown) => useViewStore.getState().setStatus(`Autosave failed: ${describeHostError(error).message}`, 'error'));
  };
  const unsubscribe = useDocumentStore.subscribe((state, previous) => {
    if (state.doc === previous.doc) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(flush, delayMs);
  });
  const onHide = () => {
    if (!timer) return;
    clearTimeout(timer);
    flush();
  };
  if (typeof window !== 'undefined') window.addEventListener('pagehide', onHide);
  return () => {
    unsubscribe();
    if (typeof window !== 'undefined') window.removeEventListener('pagehide', onHide);
    if (timer) {
      clearTimeout(timer);
      flush();
    }
  };
}
