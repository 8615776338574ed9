// Tests of `strata export-hf` and `strata import-hf` on run folders whose checkpoint is a real
// safetensors file written here: the exported folder's files, config special ids and tokenizer
// detection, the round trip export -> import (same model, same weights bytes), and the messages
// for bad input. Loading the folders in transformers is the Python tier's job (tests/python).
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bufferIO } from '../io.js';
import { flattenStack, type StrataDocument } from '../../spec/document.js';
import { loadDocument } from '../../spec/validate.js';
import { createRun } from '../../runtime/runs.js';
import { run as exportHf } from './export-hf.js';
import { detectTokenizer, run as importHf } from './import-hf.js';

/** A safetensors file with one F32 tensor per name (values 0..n-1). */
function writeSafetensors(path: string, tensors: Record<string, number[]>): Buffer {
  const header: Record<string, unknown> = {};
  let offset = 0;
  const datas: Buffer[] = [];
  for (const [name, shape] of Object.entries(tensors)) {
    const count = shape.reduce((a, b) => a * b, 1);
    const data = Buffer.alloc(count * 4);
    for (let i = 0; i < count; i++) data.writeFloatLE(i, i * 4);
    header[name] = { dtype: 'F32', shape, data_offsets: [offset, offset + data.length] };
    offset += data.length;
    datas.push(data);
  }
  const json = Buffer.from(JSON.stringify(header));
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(json.length));
  const file = Buffer.concat([prefix, json, ...datas]);
  writeFileSync(path, file);
  return file;
}

const template = JSON.parse(readFileSync(new URL('../../../templates/tiny-hybrid.json', import.meta.url), 'utf8'));

function trainedRun() {
  const root = mkdtempSync(join(tmpdir(), 'strata-hf-'));
  const doc = loadDocument(template);
  const runFolder = createRun(join(root, 'runs'), doc, 'train');
  mkdirSync(join(runFolder.dir, 'checkpoints', 'step-000010'), { recursive: true });
  const weights = writeSafetensors(join(runFolder.dir, 'checkpoints', 'step-000010', 'model.safetensors'), {
    'backbone.embeddings.weight': [264, 4],
    'lm_head.weight': [264, 4],
  });
  return { root, runFolder, weights, doc };
}

describe('export-hf', () => {
  it('writes config, weights, tokenizer and generation config from the newest checkpoint', async () => {
    const { root, runFolder, weights } = trainedRun();
    const io = bufferIO(root);
    expect(await exportHf([runFolder.dir, '--out', 'hf'], io)).toBe(0);
    const out = join(root, 'hf');
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    expect(config).toMatchObject({ model_type: 'nemotron_h', vocab_size: 264, bos_token_id: 256, eos_token_id: 257, pad_token_id: 258 });
    expect(readFileSync(join(out, 'model.safetensors')).equals(weights)).toBe(true);
    expect(detectTokenizer(join(out, 'tokenizer.json'))).toBe('byte');
    expect(JSON.parse(readFileSync(join(out, 'generation_config.json'), 'utf8')).eos_token_id).toBe(257);
    expect(io.out()).toMatch(/model.safetensors \(2 tensors\), byte tokenizer/);
  });

  it('refuses a non-empty folder, a run without checkpoint and a design nemotron_h cannot express', async () => {
    const { root, runFolder } = trainedRun();
    mkdirSync(join(root, 'full'));
    writeFileSync(join(root, 'full', 'x'), '');
    const io = bufferIO(root);
    await expect(exportHf([runFolder.dir, '--out', 'full'], io)).rejects.toThrow(/full is not empty/);
    const empty = createRun(join(root, 'runs'), loadDocument(template), 'train');
    await expect(exportHf([empty.dir, '--out', 'e'], io)).rejects.toThrow(/the run has no checkpoint yet/);
    await expect(exportHf(['tiny-transformer', '--out', 't'], io)).rejects.toThrow(/cannot export to nemotron_h: .*rope/);
  });
});

describe('import-hf', () => {
  it('round-trips an export into a run with the same model and weights', async () => {
    const { root, runFolder, weights, doc } = trainedRun();
    const io = bufferIO(root);
    await exportHf([runFolder.dir, '--out', 'hf'], io);
    expect(await importHf(['hf', '--runs', 'imported', '--json'], io)).toBe(0);
    const summary = JSON.parse(io.out().trim().split('\n').at(-1)!);
    expect(summary).toMatchObject({ tensors: 2, tokenizer: 'byte' });
    expect(readFileSync(join(summary.dir, 'checkpoints', 'imported', 'model.safetensors')).equals(weights)).toBe(true);
    const imported = JSON.parse(readFileSync(join(summary.dir, 'document.json'), 'utf8'));
    const kinds = (stack: StrataDocument['model']['stack']) => flattenStack(stack).map((l) => l.block.kind);
    expect(kinds(imported.model.stack)).toEqual(kinds(doc.model.stack));
    expect(imported.model.d_model).toBe(doc.model.d_model);
    expect(imported.pipeline.tokenizer.kind).toBe('byte');
    const events = readFileSync(join(summary.dir, 'events.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).type);
    expect(events).toEqual(['start', 'checkpoint', 'log', 'done']);
  });

  it('names what is missing or broken', async () => {
    const root = mkdtempSync(join(tmpdir(), 'strata-hf-bad-'));
    const io = bufferIO(root);
    mkdirSync(join(root, 'nocfg'));
    await expect(importHf(['nocfg'], io)).rejects.toThrow(/nocfg: no config.json/);
    const { runFolder } = trainedRun();
    await exportHf([runFolder.dir, '--out', join(root, 'hf')], io);
    writeFileSync(join(root, 'hf', 'model.safetensors'), Buffer.from([1, 0, 0, 0, 0, 0, 0, 0, 123]));
    await expect(importHf(['hf'], io)).rejects.toThrow(/model.safetensors: header is not valid JSON/);
  });
});
