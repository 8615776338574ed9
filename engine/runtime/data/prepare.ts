// Turns a document's dataset + tokenizer into the two token files a run trains and evaluates on,
// `train.stok` and `heldout.stok`:
// - corpus: the bundled assets/corpus (train.txt / heldout.txt, already split by work);
// - file: .txt / .jsonl / .parquet (tokenized; every document ends with the tokenizer's <eos>;
//   the last `heldout_fraction` is held out: whole documents when there are several, otherwise the
//   text is cut at a line break) or a ready .stok (cut at whole samples when it has a seq_len);
// - task: synthetic samples (tasks/), train and held-out drawn from different seeds.
//
// Not here: reading the file formats (sources.ts), the .stok codec (stok.ts), the tasks (tasks/).
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Dataset, PipelineSpec } from '../../spec/document.js';
import { ByteTokenizer } from '../tokenizers/byte.js';
import { createTokenizer, type TextTokenizer, type TokenizerKind } from '../tokenizers/index.js';
import { generateTask } from '../tasks/index.js';
import { readStok, type TokenFile, writeStok } from './stok.js';
import { readTextDocuments } from './sources.js';

/** Folder of bundled assets; STRATA_ASSETS_DIR overrides it (packaged app, tests). */
export function assetsDir(): string {
  return process.env.STRATA_ASSETS_DIR ?? resolve(dirname(fileURLToPath(import.meta.url)), '../../../assets');
}

export function corpusFiles(): { train: string; heldout: string } {
  const folder = join(assetsDir(), 'corpus');
  return { train: join(folder, 'train.txt'), heldout: join(folder, 'heldout.txt') };
}

/** Tokens of documents joined as doc <eos> doc <eos> ..., with the UTF-8 bytes per token. */
export function tokenizeDocuments(docs: readonly string[], tokenizer: TextTokenizer): TokenFile {
  const pieces: Uint32Array[] = [];
  let total = 0;
  let bytes = 0;
  for (const doc of docs) {
    const ids = tokenizer instanceof ByteTokenizer ? tokenizer.encodeBytes(doc) : tokenizer.encode(doc);
    const piece = new Uint32Array(ids.length + 1);
    piece.set(ids);
    piece[ids.length] = tokenizer.eosId;
    pieces.push(piece);
    total += piece.length;
    bytes += Buffer.byteLength(doc, 'utf8');
  }
  const tokens = new Uint32Array(total);
  let at = 0;
  for (const piece of pieces) {
    tokens.set(piece, at);
    at += piece.length;
  }
  return { vocab: tokenizer.vocabSize, tokens, seqLen: null, bytesPerToken: total ? bytes / total : null, tokenizer: tokenizer.kind };
}

/**
 * Splits documents into train and held-out: the last ceil(fraction * n) documents (keeping at
 * least one on each side), or for a single document its tail from the first line break after the
 * cut point.
 */
export function splitDocuments(docs: readonly string[], fraction: number, where: string): { train: string[]; heldout: string[] } {
  if (!(fraction > 0 && fraction < 1)) throw new Error(`${where}: heldout_fraction must be between 0 and 1, got ${fraction}`);
  if (docs.length === 0) throw new Error(`${where}: the dataset has no documents`);
  if (docs.length === 1) {
    const text = docs[0]!;
    const target = Math.floor(text.length * (1 - fraction));
    const lineBreak = text.indexOf('\n', target);
    const cut = lineBreak >= 0 && lineBreak + 1 < text.length ? lineBreak + 1 : target;
    if (cut <= 0 || cut >= text.length) throw new Error(`${where}: the text is too short to hold out ${fraction} of it`);
    return { train: [text.slice(0, cut)], heldout: [text.slice(cut)] };
  }
  const heldoutCount = Math.min(docs.length - 1, Math.max(1, Math.ceil(fraction * docs.length)));
  return { train: docs.slice(0, docs.length - heldoutCount), heldout: docs.slice(docs.length - heldoutCount) };
}

/** Splits a token file by fraction: the tail is held out, at whole samples when it has a seq_len. */
export function splitTokenFile(data: TokenFile, fraction: number, where: string): { train: TokenFile; heldout: TokenFile } {
  const unit = data.seqLen ?? 1;
  const units = data.tokens.length / unit;
  const heldoutUnits = Math.min(units - 1, Math.max(1, Math.ceil(fraction * units)));
  if (units < 2 || heldoutUnits < 1) throw new Error(`${where}: too few ${data.seqLen ? 'samples' : 'tokens'} (${units}) to split`);
  const cut = (units - heldoutUnits) * unit;
  const part = (from: number, to: number): TokenFile => {
    const piece: TokenFile = { ...data, tokens: data.tokens.slice(from, to) };
    if (data.mask) piece.mask = data.mask.slice(from, to);
    return piece;
  };
  return { train: part(0, cut), heldout: part(cut, data.tokens.length) };
}

export interface PreparedData {
  train: string;
  heldout: string;
  trainTokens: number;
  heldoutTokens: number;
  vocab: number;
  seqLen: number | null;
  tokenizer: TokenizerKind;
}

export interface PrepareOptions {
  /** Folder that receives train.stok and heldout.stok. */
  outDir: string;
  /** Folder relative dataset paths resolve against (the document's folder or the CLI's cwd). */
  baseDir: string;
  /** Number of task samples for training and for held-out evaluation. */
  taskSamples?: { train: number; heldout: number };
}

function tokenCountCheck(data: TokenFile, vocabSize: number, where: string): void {
  if (data.vocab > vocabSize) throw new Error(`${where}: token ids go up to ${data.vocab - 1} but the model's vocab_size is ${vocabSize}`);
}

/** The most synthetic training samples a run generates (a memory bound; longer runs make more passes). */
export const MAX_TASK_TRAIN_SAMPLES = 65536;

/** Training samples of a synthetic-task run: one per sequence the planned steps read, up to the bound. */
export function taskTrainSamples(pipeline: PipelineSpec): number {
  const t = pipeline.training;
  return Math.min(MAX_TASK_TRAIN_SAMPLES, t.steps * t.batch_size * t.grad_accum);
}

function taskOptions(pipeline: PipelineSpec, dataset: Extract<Dataset, { source: 'task' }>) {
  return { task: dataset.task, seqLen: pipeline.training.seq_len, numPairs: dataset.num_pairs, distance: dataset.distance };
}

/**
 * Before a synthetic-task run resumes with more steps than it was prepared for: regenerates
 * `trainPath` with the samples the new total needs. The generator is sequential, so the samples
 * already trained on stay the same (checked) and new ones follow; the engine's data position
 * continues into them instead of repeating the first samples. Returns the sample count before and
 * after, or null when the pipeline is not a task or has enough samples.
 */
export function extendTaskTrainData(pipeline: PipelineSpec, trainPath: string): { before: number; after: number } | null {
  const dataset = pipeline.dataset;
  if (dataset.source !== 'task') return null;
  const existing = readStok(trainPath);
  const seqLen = existing.seqLen ?? 0;
  if (seqLen !== pipeline.training.seq_len) throw new Error(`${trainPath}: holds samples of ${seqLen} tokens, the run's seq_len is ${pipeline.training.seq_len}`);
  const before = existing.tokens.length / seqLen;
  const after = taskTrainSamples(pipeline);
  if (after <= before) return null;
  const extended = generateTask({ ...taskOptions(pipeline, dataset), count: after, seed: pipeline.training.seed });
  const prefix = extended.tokens.subarray(0, existing.tokens.length);
  if (prefix.some((token, i) => token !== existing.tokens[i]))
    throw new Error(`${trainPath}: its samples are not those of task ${dataset.task} with seed ${pipeline.training.seed}; cannot extend it`);
  writeStok(trainPath, extended);
  return { before, after };
}

/** Writes train.stok and heldout.stok for a pipeline; every error names the dataset. */
export async function prepareData(pipeline: PipelineSpec, modelVocab: number, options: PrepareOptions): Promise<PreparedData> {
  const dataset: Dataset = pipeline.dataset;
  const training = pipeline.training;
  let train: TokenFile;
  let heldout: TokenFile;
  let where: string;
  if (dataset.source === 'task') {
    where = `dataset (task ${dataset.task})`;
    const counts = options.taskSamples ?? {
      train: taskTrainSamples(pipeline),
      heldout: Math.max(64, Math.max(...pipeline.evaluations.map((e) => e.batches), 1) * training.batch_size),
    };
    const common = taskOptions(pipeline, dataset);
    try {
      train = generateTask({ ...common, count: counts.train, seed: training.seed });
      heldout = generateTask({ ...common, count: counts.heldout, seed: training.seed ^ 0x5eed5eed });
    } catch (error) {
      throw new Error(`${where}: ${(error as Error).message}`);
    }
  } else {
    const tokenizer = createTokenizer(pipeline.tokenizer.kind);
    // Fail before tokenizing anything when the ids cannot fit the model.
    if (tokenizer.vocabSize > modelVocab)
      throw new Error(`dataset: the ${tokenizer.kind} tokenizer's ids go up to ${tokenizer.vocabSize - 1} but the model's vocab_size is ${modelVocab}`);
    if (dataset.source === 'corpus') {
      const files = corpusFiles();
      where = `dataset (bundled corpus ${dirname(files.train)})`;
      for (const f of [files.train, files.heldout]) if (!existsSync(f)) throw new Error(`${where}: missing ${f}`);
      train = tokenizeDocuments(await readTextDocuments(files.train), tokenizer);
      heldout = tokenizeDocuments(await readTextDocuments(files.heldout), tokenizer);
    } else {
      const path = isAbsolute(dataset.path) ? dataset.path : resolve(options.baseDir, dataset.path);
      where = `dataset (file ${path})`;
      if (!existsSync(path)) throw new Error(`${where}: file not found`);
      if (path.toLowerCase().endsWith('.stok')) {
        const all = readStok(path);
        ({ train, heldout } = splitTokenFile(all, dataset.heldout_fraction, where));
      } else {
        const docs = await readTextDocuments(path, dataset.text_field);
        const split = splitDocuments(docs, dataset.heldout_fraction, where);
        train = tokenizeDocuments(split.train, tokenizer);
        heldout = tokenizeDocuments(split.heldout, tokenizer);
      }
    }
  }
  tokenCountCheck(train, modelVocab, where);
  const trainPath = join(options.outDir, 'train.stok');
  const heldoutPath = join(options.outDir, 'heldout.stok');
  writeStok(trainPath, train);
  writeStok(heldoutPath, heldout);
  return {
    train: trainPath,
    heldout: heldoutPath,
    trainTokens: train.tokens.length,
    heldoutTokens: heldout.tokens.length,
    vocab: train.vocab,
    seqLen: train.seqLen,
    tokenizer: train.tokenizer,
  };
}
