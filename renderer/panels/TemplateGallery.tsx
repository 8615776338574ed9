// The template gallery: a dialog listing the host's templates (published designs and small
// trainable ones) with layer counts; "Open template NAME" replaces the design (undo history
// restarts, nothing is saved over). Not the template files (templates/).
import { useEffect } from 'react';
import { openTemplate, refreshTemplates, useProjectUi } from '../state/project-actions.js';
import { useViewStore } from '../state/stores.js';

export function TemplateGallery() {
  const open = useViewStore((s) => s.galleryOpen);
  const templates = useProjectUi((s) => s.templates);
  useEffect(() => {
    if (open) void refreshTemplates();
  }, [open]);
  if (!open) return null;
  return (
    <div className="dialog-backdrop">
      <div className="dialog gallery" role="dialog" aria-modal="true" aria-label="Template gallery">
        <h2>Templates</h2>
        {templates === null ? <p className="muted">Loading…</p> : null}
        <ul className="gallery-items">
          {templates?.map((t) => (
            <li key={t.name}>
              <button type="button" aria-label={`Open template ${t.name}`} onClick={() => void openTemplate(t.name)}>
                <strong>{t.title}</strong>
                <span className="muted">
                  {t.layers} layers · {t.name}
                </span>
                <span>{t.description}</span>
              </button>
            </li>
          ))}
        </ul>
        <button type="button" onClick={() => useViewStore.getState().setGalleryOpen(false)}>
          Close
        </button>
      </div>
    </div>
  );
}
