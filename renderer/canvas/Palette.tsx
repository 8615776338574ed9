// The block palette of the layer-stack editor: a search box ("Search blocks"; Enter adds the
// first match) and one button per block kind ("Add Mamba-2 block", ...) that adds after the
// selection on click or can be dragged onto the canvas to insert at the drop position.
// Not the canvas drop handling (LayerEditor.tsx).
import { useMemo, useState } from 'react';
import { BLOCK_KINDS, type BlockKind } from '../../engine/spec/document.js';
import { BLOCK_KIND_INFO } from '../model/block-defaults.js';
import { addBlock } from '../state/document-actions.js';

/** MIME type of a palette drag. */
export const PALETTE_MIME = 'application/x-strata-block';

/** Kinds whose title, letter, id or description contain every word of the query. */
export function searchBlocks(query: string): BlockKind[] {
  const words = query.toLowerCase().split(/\s+/).filter(Boolean);
  return BLOCK_KINDS.filter((kind) => {
    const info = BLOCK_KIND_INFO[kind];
    const haystack = `${kind} ${info.title} ${info.letter} ${info.description}`.toLowerCase();
    return words.every((w) => haystack.includes(w));
  });
}

export function Palette() {
  const [query, setQuery] = useState('');
  const matches = useMemo(() => searchBlocks(query), [query]);
  return (
    <div className="palette" role="region" aria-label="Block palette">
      <input
        type="search"
        aria-label="Search blocks"
        placeholder="Search blocks (Enter adds)"
        value={query}
        onChange={(e) => setQuery(e.target.value)}
        onKeyDown={(e) => {
          if (e.key === 'Enter' && matches[0]) {
            addBlock(matches[0]);
            setQuery('');
          }
        }}
      />
      <ul className="palette-items">
        {matches.map((kind) => {
          const info = BLOCK_KIND_INFO[kind];
          return (
            <li key={kind}>
              <button
                type="button"
                className={`palette-item kind-${kind}`}
                aria-label={`Add ${info.title} block`}
                title={info.description}
                draggable
                onDragStart={(e) => {
                  e.dataTransfer.setData(PALETTE_MIME, kind);
                  e.dataTransfer.effectAllowed = 'copy';
                }}
                onClick={() => addBlock(kind)}
              >
                <span className="kind-letter" aria-hidden="true">
                  {info.letter}
                </span>
                {info.title}
              </button>
            </li>
          );
        })}
        {matches.length === 0 ? <li className="muted">No block matches “{query}”</li> : null}
      </ul>
    </div>
  );
}
