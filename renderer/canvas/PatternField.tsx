// The layer pattern field: shows the design as a Megatron pattern (`MEMEM*EMEMEM*E`, `|` pipeline
// cuts, `/` MTP) and rebuilds the stack from a typed pattern on Enter or "Apply pattern", showing
// the pattern error (with its position) otherwise. Not the pattern parser
// (engine/spec/megatron-pattern.ts).
import { useEffect, useState } from 'react';
import { patternFromModel } from '../../engine/spec/megatron-pattern.js';
import { applyPattern } from '../state/document-actions.js';
import { useDocumentStore } from '../state/stores.js';

export function PatternField() {
  const model = useDocumentStore((s) => s.doc.model);
  const current = patternFromModel(model);
  const [text, setText] = useState(current);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    setText(current);
    setError(null);
  }, [current]);
  const apply = () => setError(applyPattern(text));
  return (
    <div className="pattern-field">
      <label>
        <span>Pattern</span>
        <input
          type="text"
          aria-label="Layer pattern"
          spellCheck={false}
          value={text}
          aria-invalid={error !== null}
          aria-describedby={error ? 'pattern-error' : undefined}
          onChange={(e) => setText(e.target.value)}
          onKeyDown={(e) => {
            if (e.key === 'Enter') apply();
            if (e.key === 'Escape') setText(current);
          }}
        />
      </label>
      <button type="button" onClick={apply} disabled={text === current}>
        Apply pattern
      </button>
      {error ? (
        <div id="pattern-error" className="field-error" role="alert">
          {error}
        </div>
      ) : null}
    </div>
  );
}
