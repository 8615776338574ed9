// Tests of the .stok codec, the text dataset readers (.txt, .jsonl, .parquet), splitting and
// prepareData for the bundled corpus, files and tasks, and extending a task's samples for a longer resume.
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parquetWriteFile } from 'hyparquet-writer';
import { describe, expect, it } from 'vitest';
import { PipelineSpec } from '../../spec/document.js';
import { corpusFiles, extendTaskTrainData, prepareData, splitDocuments, splitTokenFile, tokenizeDocuments } from './prepare.js';
import { readJsonlDocuments, readParquetDocuments, readTextDocuments } from './sources.js';
import { decodeStok, encodeStok, readStok, readStokHeader, type TokenFile, writeStok } from './stok.js';
import { ByteTokenizer } from '../tokenizers/byte.js';
import { Gpt2Tokenizer } from '../tokenizers/gpt2.js';

const tempDir = () => mkdtempSync(join(tmpdir(), 'strata-data-'));

describe('.stok codec', () => {
  const sample: TokenFile = {
    vocab: 259,
    tokens: Uint32Array.from([256, 1, 2, 3, 257, 258]),
    mask: Uint8Array.from([0, 0, 1, 1, 0, 0]),
    seqLen: 3,
    bytesPerToken: null,
    tokenizer: 'byte',
  };

  it('writes the documented byte layout', () => {
    const bytes = Buffer.concat(encodeStok(sample));
    expect(bytes.toString('latin1', 0, 8)).toBe('STOKENS1');
    const headerLength = Number(bytes.readBigUInt64LE(8));
    const header = JSON.parse(bytes.toString('utf8', 16, 16 + headerLength));
    expect(header).toEqual({ vocab: 259, n_tokens: 6, seq_len: 3, has_mask: true, bytes_per_token: null, tokenizer: 'byte' });
    expect(bytes.readUInt32LE(16 + headerLength)).toBe(256);
    expect(bytes.readUInt32LE(16 + headerLength + 4 * 4)).toBe(257);
    expect([...bytes.subarray(16 + headerLength + 24)]).toEqual([0, 0, 1, 1, 0, 0]);
    expect(bytes.length).toBe(16 + headerLength + 6 * 5);
  });

  it('round-trips through a file, header alone included', () => {
    const path = join(tempDir(), 'x.stok');
    writeStok(path, sample);
    const back = readStok(path);
    expect([...back.tokens]).toEqual([...sample.tokens]);
    expect([...back.mask!]).toEqual([...sample.mask!]);
    expect(back.seqLen).toBe(3);
    expect(readStokHeader(path).n_tokens).toBe(6);
  });

  it('rejects bad files with the file name and the field', () => {
    const good = Buffer.concat(encodeStok(sample));
    expect(() => decodeStok(Buffer.from('NOTSTOK!00000000'), 'a.stok')).toThrow(/a.stok: not a .stok file/);
    expect(() => decodeStok(good.subarray(0, good.length - 1), 'b.stok')).toThrow(/b.stok: file is \d+ bytes, header says \d+/);
    const badHeader = Buffer.from(good);
    badHeader.write('{"vocab":0', 16, 'utf8');
    expect(() => decodeStok(badHeader, 'c.stok')).toThrow(/c.stok: header/);
    expect(() => writeStok(join(tempDir(), 'd.stok'), { ...sample, tokens: Uint32Array.from([1, 2, 300, 0, 0, 0]) })).toThrow(/d.stok: token 2 has id 300 >= vocab 259/);
    expect(() => encodeStok({ ...sample, seqLen: 4 })).toThrow(/n_tokens 6 is not a multiple of seq_len 4/);
  });
});

describe('text dataset readers', () => {
  it('reads .jsonl records and names the line of a bad one', () => {
    const dir = tempDir();
    const good = join(dir, 'good.jsonl');
    writeFileSync(good, '{"text":"first"}\n\n{"text":"second","id":2}\n');
    expect(readJsonlDocuments(good)).toEqual(['first', 'second']);
    const missing = join(dir, 'missing.jsonl');
    writeFileSync(missing, '{"text":"ok"}\n{"body":"no text"}\n');
    expect(() => readJsonlDocuments(missing)).toThrow(/missing.jsonl: line 2: field "text" is missing or not a string/);
    const broken = join(dir, 'broken.jsonl');
    writeFileSync(broken, '{"text":\n');
    expect(() => readJsonlDocuments(broken)).toThrow(/broken.jsonl: line 1 is not valid JSON/);
  });

  it('reads a parquet string column and names a missing column', async () => {
    const path = join(tempDir(), 'docs.parquet');
    parquetWriteFile({
      filename: path,
      columnData: [
        { name: 'id', data: [1, 2, 3], type: 'INT32' },
        { name: 'content', data: ['alpha', 'beta é', 'gamma'], type: 'STRING' },
      ],
    });
    expect(await readParquetDocuments(path, 'content')).toEqual(['alpha', 'beta é', 'gamma']);
    await expect(readParquetDocuments(path)).rejects.toThrow(/column "text" not found \(columns: id, content\)/);
  });

  it('refuses unknown extensions', async () => {
    await expect(readTextDocuments('/tmp/data.csv')).rejects.toThrow(/unsupported dataset extension ".csv"/);
  });
});

describe('tokenizing and splitting', () => {
  it('ends every document with <eos> and counts bytes per token', () => {
    const file = tokenizeDocuments(['ab', 'é'], new ByteTokenizer());
    expect([...file.tokens]).toEqual([97, 98, 257, 195, 169, 257]);
    expect(file.bytesPerToken).toBeCloseTo(4 / 6);
    const gpt = tokenizeDocuments(['Hello world'], new Gpt2Tokenizer());
    expect([...gpt.tokens]).toEqual([15496, 995, 50256]);
    expect(gpt.vocab).toBe(50257);
  });

  it('holds out whole documents, or the tail of a single text at a line break', () => {
    const docs = Array.from({ length: 10 }, (_, i) => `doc ${i}`);
    const split = splitDocuments(docs, 0.2, 'x');
    expect(split.heldout).toEqual(['doc 8', 'doc 9']);
    expect(split.train).toHaveLength(8);
    const single = splitDocuments(['line one\nline two\nline three\nline four\n'], 0.3, 'y');
    expect(single.heldout).toEqual(['line four\n']);
    expect(single.train[0]! + single.heldout[0]!).toBe('line one\nline two\nline three\nline four\n');
    expect(() => splitDocuments([], 0.1, 'z.jsonl')).toThrow(/z.jsonl: the dataset has no documents/);
  });

  it('splits fixed-length token files at whole samples', () => {
    const data: TokenFile = { vocab: 10, tokens: Uint32Array.from({ length: 40 }, (_, i) => i % 10), mask: new Uint8Array(40).fill(1), seqLen: 4, bytesPerToken: null, tokenizer: 'byte' };
    const { train, heldout } = splitTokenFile(data, 0.25, 'w');
    expect(train.tokens.length).toBe(28);
    expect(heldout.tokens.length).toBe(12);
    expect(heldout.mask!.length).toBe(12);
  });
});

describe('prepareData', () => {
  it('tokenizes the bundled corpus with the byte tokenizer: one id per byte plus <eos>', async () => {
    const out = tempDir();
    const prepared = await prepareData(PipelineSpec.parse({}), 259, { outDir: out, baseDir: out });
    const files = corpusFiles();
    expect(prepared.trainTokens).toBe(statSync(files.train).size + 1);
    expect(prepared.heldoutTokens).toBe(statSync(files.heldout).size + 1);
    expect(statSync(files.train).size).toBeGreaterThan(1_000_000);
    const header = readStokHeader(prepared.train);
    expect(header).toMatchObject({ vocab: 259, seq_len: null, has_mask: false, bytes_per_token: expect.closeTo(1, 3), tokenizer: 'byte' });
  });

  it('splits a .jsonl file by the held-out fraction, resolving its path against baseDir', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'd.jsonl'), Array.from({ length: 20 }, (_, i) => JSON.stringify({ text: `record number ${i}` })).join('\n'));
    const pipeline = PipelineSpec.parse({ dataset: { source: 'file', path: 'd.jsonl', heldout_fraction: 0.1 } });
    const prepared = await prepareData(pipeline, 259, { outDir: join(dir, 'out'), baseDir: dir });
    const heldout = new ByteTokenizer().decode([...readStok(prepared.heldout).tokens]);
    expect(heldout).toBe('record number 18record number 19');
  });

  it('names the dataset when the file is missing or the model vocab is too small', async () => {
    const dir = tempDir();
    const missing = PipelineSpec.parse({ dataset: { source: 'file', path: 'nope.txt' } });
    await expect(prepareData(missing, 259, { outDir: dir, baseDir: dir })).rejects.toThrow(/dataset \(file .*nope.txt\): file not found/);
    const gpt = PipelineSpec.parse({ tokenizer: { kind: 'gpt2' } });
    await expect(prepareData(gpt, 259, { outDir: dir, baseDir: dir })).rejects.toThrow(/gpt2 tokenizer's ids go up to 50256 but the model's vocab_size is 259/);
  });

  it('writes masked fixed-length task samples with distinct train and held-out seeds', async () => {
    const dir = tempDir();
    const pipeline = PipelineSpec.parse({ dataset: { source: 'task', task: 'mqar', num_pairs: 4 }, training: { seq_len: 32, steps: 2, batch_size: 3 } });
    const prepared = await prepareData(pipeline, 259, { outDir: dir, baseDir: dir });
    const train = readStok(prepared.train);
    const heldout = readStok(prepared.heldout);
    expect(train.seqLen).toBe(32);
    expect(train.tokens.length).toBe(6 * 32);
    expect(heldout.tokens.length).toBe(64 * 32);
    expect(Buffer.from(train.tokens.buffer).equals(Buffer.from(heldout.tokens.slice(0, 6 * 32).buffer))).toBe(false);
    expect(readFileSync(prepared.train).length).toBeGreaterThan(6 * 32 * 5);
  });
});

describe('extendTaskTrainData', () => {
  it('adds new samples after the ones already trained on when a resume needs more steps', async () => {
    const dir = tempDir();
    const planned = PipelineSpec.parse({ dataset: { source: 'task', task: 'copy' }, training: { seq_len: 16, steps: 3, batch_size: 2 } });
    const prepared = await prepareData(planned, 259, { outDir: dir, baseDir: dir });
    const before = readStok(prepared.train);
    expect(before.tokens.length).toBe(6 * 16);
    expect(extendTaskTrainData(planned, prepared.train)).toBeNull();
    const longer = PipelineSpec.parse({ ...planned, training: { ...planned.training, steps: 5 } });
    expect(extendTaskTrainData(longer, prepared.train)).toEqual({ before: 6, after: 10 });
    const after = readStok(prepared.train);
    expect(after.tokens.length).toBe(10 * 16);
    expect(after.tokens.subarray(0, before.tokens.length)).toEqual(before.tokens);
    const samples = new Set<string>();
    for (let s = 0; s < 10; s++) samples.add(after.tokens.subarray(s * 16, (s + 1) * 16).join(','));
    expect(samples.size).toBe(10); // the new samples are new, not the first ones again
    const otherSeed = PipelineSpec.parse({ ...longer, training: { ...longer.training, steps: 8, seed: 99 } });
    expect(() => extendTaskTrainData(otherSeed, prepared.train)).toThrow(/not those of task copy with seed 99/);
  });
});
