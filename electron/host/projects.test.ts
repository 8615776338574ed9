// Tests of the Node ProjectService: atomic saves, clear messages for corrupt and invalid project
// files, autosave, the recent list and the template gallery read from the real templates/ folder.
import { mkdtempSync, promises as fs, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { StrataHostError } from '../contract.js';
import { documentFromModel } from '../../engine/spec/document.js';
import { jsonErrorOffset, lineColumn, writeFileAtomic } from './files.js';
import { createProjectService } from './projects.js';

const ROOT = resolve(import.meta.dirname, '../..');

function tinyDoc(name = 'unit model') {
  return documentFromModel({
    name,
    vocab_size: 264,
    d_model: 64,
    stack: [
      { kind: 'mamba2', heads: 2, head_dim: 32, d_state: 16, groups: 1, conv_kernel: 4, chunk: 32 },
      { kind: 'attention', heads: 4, kv_heads: 2, head_dim: 16 },
    ],
  });
}

async function rejection(promise: Promise<unknown>): Promise<StrataHostError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(StrataHostError);
    return error as StrataHostError;
  }
  throw new Error('expected a rejection');
}

describe('ProjectService', () => {
  let work: string;
  let service: ReturnType<typeof createProjectService>;
  beforeEach(() => {
    work = mkdtempSync(join(tmpdir(), 'strata-projects-'));
    service = createProjectService({ workspaceDir: work, dataDir: join(work, 'data'), templatesDir: join(ROOT, 'templates') });
  });

  it('saves atomically and opens the same document back', async () => {
    const doc = tinyDoc();
    const saved = await service.save('designs/a.strata.json', doc);
    expect(saved.path).toBe(join(work, 'designs', 'a.strata.json'));
    expect(readdirSync(join(work, 'designs'))).toEqual(['a.strata.json']); // no temp file left behind
    const opened = await service.open(saved.path);
    expect(opened.doc).toEqual(doc);
    expect(saved.bytes).toBe(readFileSync(saved.path).length);
  });

  it('leaves the previous file intact when a save is refused', async () => {
    const path = join(work, 'keep.json');
    await service.save(path, tinyDoc('first'));
    const before = readFileSync(path, 'utf8');
    const bad = tinyDoc('second') as unknown as { model: { stack: Array<Record<string, unknown>> } };
    bad.model.stack[1]!.kv_heads = 3; // 4 heads not a multiple of 3
    const error = await rejection(service.save(path, bad as never));
    expect(error.code).toBe('invalid_document');
    expect(error.message).toContain('layer 1 (attention)');
    expect(error.message).toContain('kv_heads 3');
    expect(readFileSync(path, 'utf8')).toBe(before);
  });

  it('cleans up its temp file when the rename fails', async () => {
    const target = join(work, 'is-a-folder');
    await fs.mkdir(join(target, 'child'), { recursive: true });
    await expect(writeFileAtomic(target, 'x')).rejects.toThrow();
    expect(readdirSync(work)).toEqual(['is-a-folder']);
  });

  it('names file, line and column for a corrupt project file', async () => {
    const path = join(work, 'broken.json');
    writeFileSync(path, '{\n  "format": "strata",\n  "version": 2,\n  "model": { "name": "x", }\n}\n');
    const error = await rejection(service.open(path));
    expect(error.code).toBe('corrupt_file');
    expect(error.message).toBe(`${path}: malformed JSON at line 4 column 27: unexpected "}"`);
  });

  it('reports a truncated file as an unexpected end', async () => {
    const path = join(work, 'cut.json');
    writeFileSync(path, JSON.stringify(tinyDoc(), null, 2).slice(0, 120));
    const error = await rejection(service.open(path));
    expect(error.message).toMatch(/cut\.json: malformed JSON at line \d+ column \d+: unexpected end of file$/);
  });

  it('reports a document that fails validation with every issue', async () => {
    const path = join(work, 'invalid.json');
    const doc = JSON.parse(JSON.stringify(tinyDoc())) as { model: { stack: Array<Record<string, unknown>> } };
    doc.model.stack[0]!.heads = -1;
    writeFileSync(path, JSON.stringify(doc));
    const error = await rejection(service.open(path));
    expect(error.code).toBe('invalid_document');
    expect(error.message.startsWith(`${path}: layer 0 (mamba2): heads`)).toBe(true);
    expect(error.issues?.[0]?.layer).toBe(0);
  });

  it('reports a missing file as not_found', async () => {
    const error = await rejection(service.open(join(work, 'nope.json')));
    expect(error.code).toBe('not_found');
  });

  it('autosaves even an unfinished document and restores it', async () => {
    expect(await service.restoreAutosave()).toBeNull();
    const draft = { ...tinyDoc(), model: { ...tinyDoc().model, d_model: -5 } };
    await service.autosave(draft as never, '/some/project.json');
    const restored = await service.restoreAutosave();
    expect(restored?.doc).toEqual(draft);
    expect(restored?.projectPath).toBe('/some/project.json');
  });

  it('keeps a most-recent-first list of opened and saved projects', async () => {
    const a = await service.save('a.json', tinyDoc('A'));
    const b = await service.save('b.json', tinyDoc('B'));
    await service.open(a.path);
    await fs.rm(b.path);
    const recent = await service.recent();
    expect(recent.map((r) => [r.name, r.exists])).toEqual([
      ['A', true],
      ['B', false],
    ]);
  });

  it('lists the real templates in gallery order and loads one', async () => {
    const { TEMPLATES } = await import('../../templates/index.js');
    const gallery = createProjectService({ workspaceDir: work, dataDir: join(work, 'data'), templatesDir: join(ROOT, 'templates'), templateIndex: TEMPLATES });
    const list = await gallery.listTemplates();
    expect(list.map((t) => t.name)).toEqual(TEMPLATES.map((t) => t.name));
    const tiny = list.find((t) => t.name === 'tiny-hybrid');
    expect(tiny?.layers).toBeGreaterThan(0);
    const doc = await gallery.loadTemplate('tiny-hybrid');
    expect(doc.format).toBe('strata');
    const error = await rejection(gallery.loadTemplate('../package'));
    expect(error.code).toBe('bad_request');
    expect((await rejection(gallery.loadTemplate('no-such-template'))).code).toBe('not_found');
  });

  it('has no dialogs in browser mode', async () => {
    expect((await rejection(service.choosePath({ mode: 'open' }))).code).toBe('unavailable');
  });
});

describe('JSON error location', () => {
  it('finds the offset of the first syntax error', () => {
    expect(jsonErrorOffset('{"a": [1, 2,]}')).toBe(12);
    expect(jsonErrorOffset('{"a": 1}')).toBe(-1);
    expect(jsonErrorOffset('{"a": 1} x')).toBe(9);
    expect(jsonErrorOffset('{"a": "\u0001"}')).toBe(7);
    expect(lineColumn('ab\ncd', 4)).toEqual({ line: 2, column: 2 });
  });
});
