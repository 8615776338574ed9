// Tests of the template gallery (templates/): every template parses, the published designs match the exact
// parameter counts of the reference within 0.1%, and the trainable peers are sized as promised.
// Not tests of the analytics themselves (engine/spec/analytics/*.test.ts).
import { describe, expect, it } from 'vitest';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseDocument } from '../validate.js';
import { countParams } from './params.js';
import { TEMPLATES, TEMPLATE_NAMES, templateDocument } from '../../../templates/index.js';

function model(name: string) {
  const parsed = parseDocument(templateDocument(name));
  if (!parsed.ok) throw new Error(`${name}: ${parsed.errors.map((e) => e.message).join('; ')}`);
  return parsed.doc.model;
}

describe('templates', () => {
  it('lists every JSON file in the folder exactly once', () => {
    const dir = fileURLToPath(new URL('../../../templates/', import.meta.url));
    const files = readdirSync(dir).filter((f) => f.endsWith('.json')).map((f) => f.replace(/\.json$/, '')).sort();
    expect([...TEMPLATE_NAMES].sort()).toEqual(files);
  });

  it.each(TEMPLATE_NAMES.map((n) => [n]))('%s parses without errors', (name) => {
    const parsed = parseDocument(templateDocument(name));
    expect(parsed.ok ? [] : parsed.errors.map((e) => e.message)).toEqual([]);
  });

  it('returns undefined for an unknown name', () => {
    expect(templateDocument('no-such-template')).toBeUndefined();
  });

  const published = TEMPLATES.filter((t) => t.reference);
  it('has the five published designs', () => {
    expect(published.map((t) => t.name).sort()).toEqual(
      ['mamba2-2.7b', 'nemotron-3-nano-30b-a3b', 'nemotron-3-super-120b-a12b', 'nemotron-h-8b', 'qwen3-30b-a3b'],
    );
  });

  it.each(published.map((t) => [t.name, t.reference!] as const))('%s matches the exact total and active counts within 0.1%%', (name, ref) => {
    const p = countParams(model(name));
    expect(Math.abs(p.total / ref.total - 1)).toBeLessThan(1e-3);
    expect(Math.abs(p.active / ref.active - 1)).toBeLessThan(1e-3);
  });

  it('Nano has the layer mix 23 M / 23 E / 6 attention and 3.228B active without the input embedding', () => {
    const p = countParams(model('nemotron-3-nano-30b-a3b'));
    expect([p.by_kind.mamba2.layers, p.by_kind.moe.layers, p.by_kind.attention.layers]).toEqual([23, 23, 6]);
    expect(Math.abs(p.active_without_embedding / 3.228e9 - 1)).toBeLessThan(1e-3);
  });

  it('Super has LatentMoE l=1024 and a shared depth-2 MTP module', () => {
    const m = model('nemotron-3-super-120b-a12b');
    const moe = m.mtp?.blocks.find((b) => b.kind === 'moe');
    expect(moe?.kind === 'moe' && moe.latent).toBe(1024);
    expect(m.mtp?.depth).toBe(2);
    expect(m.mtp?.shared_weights).toBe(true);
    expect(m.mtp?.blocks.map((b) => b.kind)).toEqual(['attention', 'moe']);
  });

  it('tiny-transformer has the active parameters of tiny-hybrid within 10%', () => {
    const hybrid = countParams(model('tiny-hybrid')).active;
    const transformer = countParams(model('tiny-transformer')).active;
    expect(Math.abs(transformer / hybrid - 1)).toBeLessThan(0.1);
    expect(hybrid).toBeGreaterThan(1e6);
    expect(hybrid).toBeLessThan(10e6);
  });

  it('trainable designs fit the byte tokenizer', () => {
    for (const t of TEMPLATES.filter((x) => x.category === 'trainable')) {
      const parsed = parseDocument(templateDocument(t.name));
      expect(parsed.ok && parsed.doc.pipeline.tokenizer.kind).toBe('byte');
      expect(model(t.name).vocab_size % 8).toBe(0);
    }
  });
});
