// Keyboard shortcuts of the editor: Ctrl/Cmd+Z undo, Ctrl/Cmd+Shift+Z or Ctrl+Y redo, Ctrl/Cmd+S
// save (Shift: save as), Ctrl/Cmd+O open, Delete/Backspace delete the selection, Ctrl/Cmd+C/V/X
// copy/paste/cut layers, Ctrl/Cmd+D duplicate, Ctrl/Cmd+G group as repeat, Ctrl/Cmd+A select all
// layers, Alt+Up/Down move the selected layer, Escape clear selection. Text fields keep their own editing keys (undo inside an input
// stays the input's). Not the menu/toolbar (panels/Toolbar.tsx).
import { copySelection, deleteSelection, groupSelection, nudge, pasteItems } from './document-actions.js';
import { openProject, saveProject } from './project-actions.js';
import { useDocumentStore, useSelectionStore, useViewStore } from './stores.js';

/** The last layers copied in this window (used when the system clipboard is not readable). */
let localClipboard: string | null = null;

function isTextTarget(target: EventTarget | null): boolean {
  if (!(target instanceof HTMLElement)) return false;
  if (target.isContentEditable) return true;
  const tag = target.tagName;
  if (tag === 'TEXTAREA' || tag === 'SELECT') return true;
  if (tag !== 'INPUT') return false;
  const type = (target as HTMLInputElement).type;
  return !['checkbox', 'radio', 'button', 'range'].includes(type);
}

export function copyLayers(): boolean {
  const text = copySelection();
  if (!text) return false;
  localClipboard = text;
  void navigator.clipboard?.writeText(text).catch(() => undefined);
  return true;
}

export async function pasteLayers(): Promise<number> {
  let text: string | null = null;
  try {
    text = (await navigator.clipboard?.readText()) ?? null;
  } catch {
    text = null;
  }
  const pasted = text ? pasteItems(text) : 0;
  return pasted || (localClipboard ? pasteItems(localClipboard) : 0);
}

/** Handles one keydown; returns true when it was a shortcut (and prevents the default). */
export function handleShortcut(event: KeyboardEvent): boolean {
  const mod = event.ctrlKey || event.metaKey;
  const key = event.key.toLowerCase();
  const inText = isTextTarget(event.target);
  const docStore = useDocumentStore.getState();
  let handled = true;
  if (mod && key === 's') void saveProject(event.shiftKey);
  else if (mod && key === 'o') void openProject();
  else if (inText) handled = false;
  else if (mod && key === 'z' && !event.shiftKey) docStore.undo();
  else if ((mod && key === 'z' && event.shiftKey) || (mod && key === 'y')) docStore.redo();
  else if (key === 'delete' || key === 'backspace') handled = deleteSelection();
  else if (mod && key === 'c') handled = copyLayers();
  else if (mod && key === 'x') handled = copyLayers() && deleteSelection();
  else if (mod && key === 'v') void pasteLayers();
  else if (mod && key === 'd') handled = copyLayers() && localClipboard !== null && pasteItems(localClipboard) > 0;
  else if (mod && key === 'g') handled = groupSelection(2) !== undefined;
  else if (mod && key === 'a' && useViewStore.getState().screen === 'layers')
    useSelectionStore.getState().select(docStore.doc.model.stack.map((i) => i.id!).filter(Boolean));
  else if (event.altKey && (key === 'arrowup' || key === 'arrowdown') && useSelectionStore.getState().ids.length === 1)
    nudge(useSelectionStore.getState().ids[0]!, key === 'arrowup' ? -1 : 1);
  else if (key === 'escape') useSelectionStore.getState().select([]);
  else handled = false;
  if (handled) event.preventDefault();
  return handled;
}

/** Installs the shortcuts on the window; returns the function that removes them. */
export function installShortcuts(): () => void {
  const listener = (e: KeyboardEvent) => {
    handleShortcut(e);
  };
  window.addEventListener('keydown', listener);
  return () => window.removeEventListener('keydown', listener);
}
