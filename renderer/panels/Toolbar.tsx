// The top toolbar: New / Open / Save / Templates, Undo / Redo, Shrink to trainable size, the
// screen switch (pipeline or layer editor), validation summary and the theme toggle. Buttons call
// the same actions as the keyboard shortcuts. Not the shortcuts (state/shortcuts.ts).
import { formatCount } from '../../engine/spec/analytics/text.js';
import { shrinkDesign } from '../state/document-actions.js';
import { isDirty } from '../state/document-store.js';
import { openProject, saveProject } from '../state/project-actions.js';
import { validationOf } from '../state/selectors.js';
import { resetStores, useDocumentStore, usePrefsStore, useViewStore } from '../state/stores.js';

/** Parameter budgets offered for "shrink to trainable size". */
const SHRINK_TARGETS = [1_000_000, 4_000_000, 16_000_000, 64_000_000];

export function Toolbar() {
  const canUndo = useDocumentStore((s) => s.history.past.length > 0);
  const canRedo = useDocumentStore((s) => s.history.future.length > 0);
  const dirty = useDocumentStore(isDirty);
  const filePath = useDocumentStore((s) => s.filePath);
  const name = useDocumentStore((s) => s.doc.model.name);
  const validation = useDocumentStore((s) => validationOf(s.doc));
  const screen = useViewStore((s) => s.screen);
  const theme = usePrefsStore((s) => s.theme);
  const shrinkTarget = usePrefsStore((s) => s.shrinkTarget);
  const setStatus = useViewStore((s) => s.setStatus);
  return (
    <header className="toolbar" role="toolbar" aria-label="Main toolbar">
      <span className="app-title">Strata Studio</span>
      <button type="button" onClick={() => resetStores()}>
        New
      </button>
      <button type="button" onClick={() => void openProject()}>
        Open
      </button>
      <button type="button" onClick={() => void saveProject()}>
        Save
      </button>
      <button type="button" onClick={() => useViewStore.getState().setGalleryOpen(true)}>
        Templates
      </button>
      <span className="toolbar-sep" />
      <button type="button" aria-label="Undo" title="Undo (Ctrl+Z)" disabled={!canUndo} onClick={() => useDocumentStore.getState().undo()}>
        Undo
      </button>
      <button type="button" aria-label="Redo" title="Redo (Ctrl+Shift+Z)" disabled={!canRedo} onClick={() => useDocumentStore.getState().redo()}>
        Redo
      </button>
      <span className="toolbar-sep" />
      <button
        type="button"
        title={`Keep the pattern, scale widths, heads and experts down to about ${formatCount(shrinkTarget)} parameters`}
        onClick={() => {
          const r = shrinkDesign(shrinkTarget);
          setStatus(
            r.overBudget
              ? `Shrunk to d_model ${r.model.d_model}: ${formatCount(r.params)} parameters, still above the ${formatCount(shrinkTarget)} budget`
              : `Shrunk to d_model ${r.model.d_model}: ${formatCount(r.params)} parameters`,
          );
        }}
      >
        Shrink to trainable size
      </button>
      <select aria-label="Shrink target parameters" value={shrinkTarget} onChange={(e) => usePrefsStore.getState().setShrinkTarget(Number(e.target.value))}>
        {SHRINK_TARGETS.map((n) => (
          <option key={n} value={n}>
            {formatCount(n)}
          </option>
        ))}
      </select>
      <span className="toolbar-sep" />
      <div role="group" aria-label="Screen" className="segmented">
        <button type="button" aria-pressed={screen === 'pipeline'} onClick={() => useViewStore.getState().setScreen('pipeline')}>
          Pipeline
        </button>
        <button type="button" aria-pressed={screen === 'layers'} onClick={() => useViewStore.getState().setScreen('layers')}>
          Layers
        </button>
      </div>
      <span className="toolbar-fill" />
      <span className={`validation-summary${validation.errors ? ' error' : ''}`} role="status" aria-label="Validation">
        {validation.errors ? `${validation.errors} error(s)` : 'valid'}
        {validation.warnings ? `, ${validation.warnings} warning(s)` : ''}
      </span>
      <span className="doc-name" title={filePath ?? 'not saved yet'}>
        {name}
        {dirty ? ' •' : ''}
      </span>
      <button type="button" aria-label={theme === 'dark' ? 'Switch to light theme' : 'Switch to dark theme'} onClick={() => usePrefsStore.getState().setTheme(theme === 'dark' ? 'light' : 'dark')}>
        {theme === 'dark' ? 'Light' : 'Dark'}
      </button>
    </header>
  );
}
