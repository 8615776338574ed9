// Tests of run folders: creation, event reading (torn last lines), fast summaries and listing.
import { appendFileSync, mkdtempSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { documentFromModel } from '../spec/document.js';
import { adoptRun, createRun, findRun, listRuns, readEvents, readEventsTail, readRunDocument, summarizeRun, updateRunMeta } from './runs.js';

const doc = documentFromModel({
  name: 'Tiny Test',
  vocab_size: 259,
  d_model: 16,
  stack: [{ kind: 'mlp', ffn: 32 }],
});

const root = () => mkdtempSync(join(tmpdir(), 'strata-runs-'));
const line = (event: object) => `${JSON.stringify(event)}\n`;

describe('run folders', () => {
  it('creates a folder with run.json and the document, never reusing an id', () => {
    const r = root();
    const a = createRun(r, doc, 'train', { data: 'corpus/byte' });
    const b = createRun(r, doc, 'train');
    expect(a.runId).toMatch(/^\d{8}-\d{6}-train-tiny-test$/);
    expect(b.runId).toBe(`${a.runId}-2`);
    expect(readRunDocument(a.dir).model.name).toBe('Tiny Test');
    expect(JSON.parse(readFileSync(join(a.dir, 'run.json'), 'utf8'))).toMatchObject({ kind: 'train', data: 'corpus/byte', model: 'Tiny Test', device: 'cpu', steps: 200 });
    updateRunMeta(a.dir, { parent: 'x' });
    expect(summarizeRun(a.dir).parent).toBe('x');
    expect(findRun(r, a.runId, '/')).toBe(a.dir);
    expect(() => findRun(r, 'nope', r)).toThrow(/nope: no run folder with run.json/);
  });

  it('writes the resolved precision table next to the document', () => {
    const mixed = documentFromModel({
      name: 'Mixed',
      vocab_size: 259,
      d_model: 16,
      stack: [{ kind: 'mlp', ffn: 32 }, { kind: 'mlp', ffn: 32 }],
      precision: { default: 'bf16', rules: [{ select: { layers: { from: 1, to: 1 } }, format: 'nvfp4' }] },
    });
    const run = createRun(root(), mixed, 'train');
    const table = JSON.parse(readFileSync(join(run.dir, 'precision.json'), 'utf8'));
    expect(table.layers).toBe(2);
    const fc1 = (layer: number) => table.rows.find((r: { layer: number; role: string }) => r.layer === layer && r.role === 'mlp.fc1');
    expect(fc1(0)).toMatchObject({ kind: 'mlp', fprop: 'bf16', dgrad: 'bf16', wgrad: 'bf16' });
    expect(fc1(1)).toMatchObject({ kind: 'mlp', fprop: 'nvfp4' });
    const adopted = join(root(), 'host-run');
    adoptRun(adopted, mixed, 'profile');
    expect(readFileSync(join(adopted, 'precision.json'), 'utf8')).toBe(readFileSync(join(run.dir, 'precision.json'), 'utf8'));
  });

  it('adopts a folder the app host prepared, keeping its run.json', () => {
    const dir = join(root(), 'host-run-1');
    const fresh = adoptRun(dir, doc, 'eval');
    expect(fresh).toMatchObject({ runId: 'host-run-1', kind: 'eval', steps: null });
    writeFileSync(join(dir, 'run.json'), JSON.stringify({ runId: 'host-run-1', name: 'Named by host', kind: 'train', device: 'cpu', model: 'Tiny Test', createdAt: '2024-01-01T00:00:00Z', steps: 7 }));
    adoptRun(dir, doc, 'train', { data: 'task mqar' });
    expect(summarizeRun(dir)).toMatchObject({ name: 'Named by host', steps: 7, data: 'task mqar' });
    expect(readRunDocument(dir).model.name).toBe('Tiny Test');
  });

  it('reads events, ignoring only a torn last line', () => {
    const run = createRun(root(), doc, 'train');
    const events = join(run.dir, 'events.jsonl');
    writeFileSync(events, line({ type: 'start', t: 0 }) + line({ type: 'step', t: 1, step: 1, loss: 5, lr: 1e-3, tokens_per_s: 100 }) + '{"type":"st');
    expect(readEvents(run.dir).map((e) => e.type)).toEqual(['start', 'step']);
    writeFileSync(events, 'garbage\n' + line({ type: 'done', t: 2 }));
    expect(() => readEvents(run.dir)).toThrow(/events.jsonl: line 1: not a JSON event/);
  });

  it('summarizes status and last numbers from the tail of a long events file', () => {
    const run = createRun(root(), doc, 'train');
    const events = join(run.dir, 'events.jsonl');
    let text = line({ type: 'start', t: 0 });
    for (let s = 1; s <= 5000; s++) text += line({ type: 'step', t: s, step: s, loss: 10 / s, lr: 1e-3, tokens_per_s: 1000 });
    text += line({ type: 'eval', t: 5001, loss: 0.5 });
    writeFileSync(events, text);
    expect(readEventsTail(run.dir, 4096).length).toBeLessThan(60);
    const running = summarizeRun(run.dir);
    expect(running).toMatchObject({ status: 'running', lastStep: 5000, lastLoss: 10 / 5000, lastEvalLoss: 0.5 });
    const old = new Date(Date.now() - 3600_000);
    utimesSync(events, old, old);
    expect(summarizeRun(run.dir).status).toBe('interrupted');
    appendFileSync(events, line({ type: 'done', t: 5002, reason: 'stopped' }));
    expect(summarizeRun(run.dir).status).toBe('stopped');
    appendFileSync(events, line({ type: 'error', t: 5003, message: 'step 5001: non-finite gradient in layer 3' }) + line({ type: 'done', t: 5003, reason: 'error' }));
    expect(summarizeRun(run.dir)).toMatchObject({ status: 'error', error: 'step 5001: non-finite gradient in layer 3' });
    appendFileSync(events, line({ type: 'error', t: 5003, message: 'NaN in layer 3 (mamba2) out_proj' }));
    expect(summarizeRun(run.dir)).toMatchObject({ status: 'error', error: 'NaN in layer 3 (mamba2) out_proj' });
  });

  it('lists runs newest first and skips folders that are not runs', () => {
    const r = root();
    const first = createRun(r, doc, 'train');
    updateRunMeta(first.dir, { createdAt: '2020-01-01T00:00:00.000Z' });
    const second = createRun(r, doc, 'eval');
    createRun(r, doc, 'profile');
    writeFileSync(join(r, 'stray.txt'), 'x');
    const runs = listRuns(r);
    expect(runs).toHaveLength(3);
    expect(runs[2]!.runId).toBe(first.runId);
    expect(runs.map((x) => x.runId)).toContain(second.runId);
    expect(listRuns(join(r, 'missing'))).toEqual([]);
  });
});
