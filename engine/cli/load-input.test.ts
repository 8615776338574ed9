// Tests of loadModelInput: Strata documents, template names and HF configs, resolved against
// io.cwd, with one-line CliError messages that name the file.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { documentFromModel } from '../spec/document.js';
import { CliError } from './errors.js';
import { bufferIO } from './io.js';
import { loadModelInput, templateNames } from './load-input.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'strata-load-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const templates = join(work, 'templates');
mkdirSync(templates);
const tinyDoc = documentFromModel({ name: 'tiny', vocab_size: 300, d_model: 32, stack: [{ kind: 'mlp', ffn: 64 }] });
writeFileSync(join(templates, 'tiny.json'), JSON.stringify(tinyDoc));
writeFileSync(join(templates, 'broken.json'), '{"format": "strata", "version": 2, "model": {"name": "b", "vocab_size": 300, "d_model": 0, "stack": [{"kind": "mlp", "ffn": 4}]}}');

function failure(fn: () => unknown): CliError {
  try {
    fn();
  } catch (error) {
    if (error instanceof CliError) return error;
    throw error;
  }
  throw new Error('expected a CliError');
}

describe('loadModelInput', () => {
  it('loads an HF config relative to io.cwd', () => {
    const io = bufferIO(join(ROOT, 'tests/fixtures'));
    const loaded = loadModelInput('hf-configs/nemotron-h-8b.json', io);
    expect(loaded.source).toBe('hf-config');
    expect(loaded.file).toBe('hf-configs/nemotron-h-8b.json');
    expect(loaded.doc.model.name).toBe('nemotron-h-8b');
    expect(loaded.doc.format).toBe('strata');
  });

  it('loads a Strata document and a template by name', () => {
    const docPath = join(work, 'doc.json');
    writeFileSync(docPath, JSON.stringify(tinyDoc));
    const io = bufferIO(work);
    const doc = loadModelInput('doc.json', io, templates);
    expect(doc.source).toBe('document');
    expect(doc.doc).toEqual(tinyDoc);
    const template = loadModelInput('tiny', io, templates);
    expect(template).toMatchObject({ source: 'template', file: 'templates/tiny.json' });
    expect(template.doc).toEqual(tinyDoc);
    expect(templateNames(templates)).toEqual(['broken', 'tiny']);
  });

  it('names the template file in validation errors and lists templates for unknown names', () => {
    const io = bufferIO(work);
    expect(failure(() => loadModelInput('broken', io, templates)).message).toMatch(/^templates\/broken\.json: model\.d_model: /);
    expect(failure(() => loadModelInput('nope', io, templates)).message).toBe('nope: no such file or template (templates: broken, tiny)');
    expect(failure(() => loadModelInput('', io, templates)).message).toContain('no input given');
  });

  it('reports unreadable files and folders', () => {
    const io = bufferIO(work);
    expect(failure(() => loadModelInput('absent.json', io, templates)).message).toBe('absent.json: no such file');
    expect(failure(() => loadModelInput('templates/', io, templates)).message).toBe('templates/: is a folder, not a JSON file');
    writeFileSync(join(work, 'array.json'), '[1, 2]');
    expect(failure(() => loadModelInput('array.json', io, templates)).message).toBe('array.json: document: expected a JSON object');
  });

  it('loads the bundled templates', () => {
    const io = bufferIO(ROOT);
    for (const name of templateNames()) {
      const loaded = loadModelInput(name, io);
      expect(loaded.source).toBe('template');
      expect(loaded.doc.model.stack.length).toBeGreaterThan(0);
    }
  });
});
