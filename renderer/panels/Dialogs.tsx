// Modal dialogs of file handling: the error dialog (a file that is corrupt or fails validation is
// explained by file, line/column or layer/field; the current design stays open) and, in browser
// mode without native dialogs, the path prompt (design files, export folders, run folders). Not the actions (project-actions.ts).
import { useEffect, useState } from 'react';
import { dismissError, useProjectUi } from '../state/project-actions.js';

function PathPrompt() {
  const request = useProjectUi((s) => s.pathRequest);
  const [path, setPath] = useState('');
  useEffect(() => setPath(request?.defaultPath ?? ''), [request]);
  if (!request) return null;
  const { title, label, submit } = request;
  return (
    <div className="dialog-backdrop">
      <form
        className="dialog"
        role="dialog"
        aria-modal="true"
        aria-label={title}
        onSubmit={(e) => {
          e.preventDefault();
          request.resolve(path.trim() || null);
        }}
      >
        <h2>{title}</h2>
        <label className="field">
          <span>{label} (relative paths are in the workspace folder)</span>
          <input type="text" aria-label={label} autoFocus value={path} onChange={(e) => setPath(e.target.value)} />
        </label>
        <div className="button-row">
          <button type="submit" disabled={!path.trim()}>
            {submit}
          </button>
          <button type="button" onClick={() => request.resolve(null)}>
            Cancel
          </button>
        </div>
      </form>
    </div>
  );
}

function ErrorDialog() {
  const error = useProjectUi((s) => s.error);
  if (!error) return null;
  return (
    <div className="dialog-backdrop">
      <div className="dialog error-dialog" role="alertdialog" aria-modal="true" aria-label={error.title}>
        <h2>{error.title}</h2>
        <p role="alert">{error.message}</p>
        {error.details.length ? (
          <ul className="issue-list">
            {error.details.map((d) => (
              <li key={d}>{d}</li>
            ))}
          </ul>
        ) : null}
        <p className="muted">Your current design is unchanged.</p>
        <button type="button" autoFocus onClick={dismissError}>
          Dismiss
        </button>
      </div>
    </div>
  );
}

export function Dialogs() {
  return (
    <>
      <PathPrompt />
      <ErrorDialog />
    </>
  );
}
