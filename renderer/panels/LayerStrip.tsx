// The layer strip (like Figure 1 of the Nemotron 3 paper): one cell per layer, coloured by block
// kind, with its resolved forward precision. Click a cell or drag across cells to paint the
// chosen precision (each paint appends one precision rule for that layer range); apply a preset
// policy; hovering or focusing a cell shows the layer's parameters, FLOPs and memory in the
// strip's detail line (from useAnalysis, so edits paint before the analysis is recomputed).
// Cells are memoized and do not depend on the analysis, so an edit re-renders only the cells
// whose kind or precision changed.
import { memo, useCallback, useEffect, useState } from 'react';
import { BLOCK_KIND_INFO } from '../model/block-defaults.js';
import { PRECISION_FORMATS, type BlockKind, type ModelSpec, type PrecisionFormat } from '../../engine/spec/document.js';
import { PRESETS, PRESET_NAMES, type PresetName } from '../../engine/spec/precision.js';
import { formatBytesBinary, formatCount, formatFlops } from '../../engine/spec/analytics/text.js';
import { applyPreset, paintPrecision, removePrecisionRule } from '../state/document-actions.js';
import { useAnalysis } from '../state/analytics.js';
import { layerFormatsOf, layersOf } from '../state/selectors.js';
import { useDocumentStore, usePrefsStore } from '../state/stores.js';

/** Above this many layers the cells are narrower, so large designs (e.g. 118 layers) fit in two rows. */
const DENSE_STRIP_LAYERS = 64;

interface CellProps {
  index: number;
  kind: BlockKind;
  formats: string;
  inRange: boolean;
  onDown: (index: number) => void;
  onEnter: (index: number) => void;
  onKeyPaint: (index: number) => void;
}

const Cell = memo(function Cell({ index, kind, formats, inRange, onDown, onEnter, onKeyPaint }: CellProps) {
  const main = formats.split('/')[0] ?? '';
  return (
    <button
      type="button"
      className={`strip-cell kind-${kind} fmt-${main}${inRange ? ' painting' : ''}`}
      aria-label={`Layer ${index}: ${kind}, ${formats}`}
      onPointerDown={(e) => {
        e.preventDefault();
        onDown(index);
      }}
      onPointerEnter={() => onEnter(index)}
      onFocus={() => onEnter(index)}
      onKeyDown={(e) => {
        if (e.key === 'Enter' || e.key === ' ') {
          e.preventDefault();
          onKeyPaint(index);
        }
      }}
    >
      <span className="strip-letter" aria-hidden="true">
        {BLOCK_KIND_INFO[kind].letter}
      </span>
      <span className="strip-format" aria-hidden="true">
        {main.replace('fp8_', '')}
      </span>
    </button>
  );
});

export function LayerStrip() {
  const model = useDocumentStore((s) => s.doc.model);
  const context = usePrefsStore((s) => s.context);
  const hardware = usePrefsStore((s) => s.hardware);
  const [paint, setPaint] = useState<PrecisionFormat>('nvfp4');
  const [preset, setPreset] = useState<PresetName>('nemotron3-nvfp4');
  const [drag, setDrag] = useState<{ from: number; to: number } | null>(null);
  const [hovered, setHovered] = useState<number | null>(null);
  const layers = layersOf(model.stack);
  const formats = layerFormatsOf(model);

  const onDown = useCallback((index: number) => setDrag({ from: index, to: index }), []);
  const onEnter = useCallback((index: number) => {
    setHovered(index);
    setDrag((d) => (d ? { ...d, to: index } : d));
  }, []);
  const onKeyPaint = useCallback((index: number) => paintPrecision(index, index, paint), [paint]);

  useEffect(() => {
    if (!drag) return;
    const finish = () => {
      paintPrecision(drag.from, drag.to, paint);
      setDrag(null);
    };
    window.addEventListener('pointerup', finish);
    return () => window.removeEventListener('pointerup', finish);
  }, [drag, paint]);

  const lo = drag ? Math.min(drag.from, drag.to) : -1;
  const hi = drag ? Math.max(drag.from, drag.to) : -1;
  const rules = model.precision.rules;
  return (
    <section className="layer-strip" aria-label="Layer strip">
      <div className="strip-controls">
        <label>
          <span>Paint</span>
          <select aria-label="Paint precision" value={paint} onChange={(e) => setPaint(e.target.value as PrecisionFormat)}>
            {PRECISION_FORMATS.map((f) => (
              <option key={f} value={f}>
                {f}
              </option>
            ))}
          </select>
        </label>
        <label>
          <span>Preset</span>
          <select aria-label="Precision preset" value={preset} onChange={(e) => setPreset(e.target.value as PresetName)} title={PRESETS[preset].description}>
            {PRESET_NAMES.map((n) => (
              <option key={n} value={n}>
                {PRESETS[n].title}
              </option>
            ))}
          </select>
        </label>
        <button type="button" onClick={() => applyPreset(preset)}>
          Apply preset
        </button>
        <span className="muted">
          policy: {model.precision.preset ?? 'custom'}, default {model.precision.default}, {rules.length} rule(s)
        </span>
        {rules.length && rules.at(-1)?.note === 'painted' ? (
          <button type="button" onClick={() => removePrecisionRule(rules.length - 1)}>
            Remove last painted rule
          </button>
        ) : null}
      </div>
      <div className={`strip-cells${layers.length > DENSE_STRIP_LAYERS ? ' dense' : ''}`} role="group" aria-label="Layers" onPointerLeave={() => setHovered(null)}>
        {layers.map((layer) => (
          <Cell
            key={layer.index}
            index={layer.index}
            kind={layer.block.kind}
            formats={(formats[layer.index] ?? []).join('/')}
            inRange={layer.index >= lo && layer.index <= hi}
            onDown={onDown}
            onEnter={onEnter}
            onKeyPaint={onKeyPaint}
          />
        ))}
      </div>
      <LayerDetail model={model} layer={hovered} context={context} hardware={hardware} formats={hovered !== null ? (formats[hovered] ?? []).join('/') : ''} />
    </section>
  );
}

/** The detail line of the hovered/focused layer: parameters, FLOPs and memory from the analysis. */
function LayerDetail({ model, layer, context, hardware, formats }: { model: ModelSpec; layer: number | null; context: number; hardware: string; formats: string }) {
  const { result } = useAnalysis(model, context, hardware);
  if (layer === null) return <div className="strip-detail muted">Hover a layer for its parameters, FLOPs and memory; click or drag to paint.</div>;
  const row = result?.ok ? result.report.layers[layer] : undefined;
  if (!row) return <div className="strip-detail muted">Layer {layer}: {result && !result.ok ? `no analysis (${result.error})` : 'analysing…'}</div>;
  return (
    <div className="strip-detail" role="status" aria-label="Layer details">
      Layer {layer} ({BLOCK_KIND_INFO[row.kind].title}, {formats}): {formatCount(row.params)} params ({formatCount(row.active_params)} active), {formatFlops(row.forward_flops_per_token)}/token, weights{' '}
      {formatBytesBinary(row.weight_bytes)}
      {row.kv_cache_bytes_per_token ? `, KV cache ${formatBytesBinary(row.kv_cache_bytes_per_token)}/token` : ''}
      {row.state_bytes_per_sequence ? `, Mamba state ${formatBytesBinary(row.state_bytes_per_sequence)}` : ''}
    </div>
  );
}
