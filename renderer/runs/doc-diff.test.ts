// Tests of the run-document diff used by the compare view.
import { describe, expect, it } from 'vitest';
import { presetPolicy } from '../../engine/spec/precision.js';
import { starterDocument } from '../model/starter.js';
import { diffJson, diffPrecision, summarizePrecisionChanges } from './doc-diff.js';

describe('doc diff', () => {
  it('lists changed leaves by path and ignores the view and editor ids', () => {
    const a = starterDocument();
    const b = structuredClone(a);
    b.model.d_model = 256;
    b.pipeline.training.lr = 0.001;
    b.view.positions['pipeline:model'] = { x: 1, y: 2 };
    (b.model.stack[1] as { id?: string }).id = 'n99';
    expect(diffJson(a, b)).toEqual([
      { path: 'model.d_model', a: 128, b: 256 },
      { path: 'pipeline.training.lr', a: 0.003, b: 0.001 },
    ]);
  });

  it('reports precision differences per layer range and role', () => {
    const a = starterDocument();
    const b = structuredClone(a);
    b.model.precision = presetPolicy('mxfp8');
    const changes = diffPrecision(a, b);
    expect(changes.length).toBeGreaterThan(0);
    expect(changes.every((c) => c.a === 'bf16')).toBe(true);
    const lines = summarizePrecisionChanges(changes);
    expect(lines).toContain('layers 0, 2, 6, 8 mamba.in_proj: bf16 -> mxfp8');
    expect(lines.some((l) => l.includes('moe.router'))).toBe(false);
  });

  it('merges consecutive layers into ranges', () => {
    const lines = summarizePrecisionChanges([3, 4, 5, 9].map((layer) => ({ scope: 'layer', layer, role: 'mlp.fc1', a: 'bf16', b: 'nvfp4' })));
    expect(lines).toEqual(['layers 3-5, 9 mlp.fc1: bf16 -> nvfp4']);
  });
});
