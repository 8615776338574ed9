// The `.stok` token file: the one format the native engine trains and evaluates on.
// Layout: 8-byte magic "STOKENS1", uint64 LE header length, UTF-8 JSON header
// {"vocab":V,"n_tokens":N,"seq_len":S|null,"has_mask":bool,"bytes_per_token":float|null,
//  "tokenizer":"byte"|"gpt2"}, then uint32 LE tokens[N], then uint8 mask[N] when has_mask.
// mask[i] = 1 means the loss (and accuracy) for predicting token i from tokens before it counts.
// A non-null seq_len means the file is N/S fixed-length samples (each starts fresh); null means
// one continuous stream the engine cuts windows from.
//
// Not here: tokenizing (tokenizers/), choosing what goes in (prepare.ts, tasks/).
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { writeFileAtomic } from '../atomic-write.js';
import type { TokenizerKind } from '../tokenizers/types.js';

export const STOK_MAGIC = 'STOKENS1';

export interface StokHeader {
  vocab: number;
  n_tokens: number;
  seq_len: number | null;
  has_mask: boolean;
  bytes_per_token: number | null;
  tokenizer: TokenizerKind;
}

export interface TokenFile {
  vocab: number;
  tokens: Uint32Array;
  /** 1 where the loss counts; absent when every position counts. */
  mask?: Uint8Array;
  seqLen: number | null;
  /** UTF-8 bytes of source text per token (for bits per byte); null for synthetic data. */
  bytesPerToken: number | null;
  tokenizer: TokenizerKind;
}

/** Checks a TokenFile's invariants; throws naming `where` and the field. */
export function checkTokenFile(data: TokenFile, where: string): void {
  if (!Number.isInteger(data.vocab) || data.vocab <= 0) throw new Error(`${where}: vocab must be a positive integer, got ${data.vocab}`);
  if (data.mask && data.mask.length !== data.tokens.length)
    throw new Error(`${where}: mask has ${data.mask.length} entries but there are ${data.tokens.length} tokens`);
  if (data.seqLen !== null) {
    if (!Number.isInteger(data.seqLen) || data.seqLen < 2) throw new Error(`${where}: seq_len must be an integer >= 2 or null, got ${data.seqLen}`);
    if (data.tokens.length % data.seqLen !== 0)
      throw new Error(`${where}: n_tokens ${data.tokens.length} is not a multiple of seq_len ${data.seqLen}`);
  }
  for (let i = 0; i < data.tokens.length; i++) {
    if (data.tokens[i]! >= data.vocab) throw new Error(`${where}: token ${i} has id ${data.tokens[i]} >= vocab ${data.vocab}`);
  }
}

/** Serializes a TokenFile to the .stok bytes (little-endian regardless of the host). */
export function encodeStok(data: TokenFile): Uint8Array[] {
  checkTokenFile(data, 'stok');
  const header: StokHeader = {
    vocab: data.vocab,
    n_tokens: data.tokens.length,
    seq_len: data.seqLen,
    has_mask: data.mask !== undefined,
    bytes_per_token: data.bytesPerToken,
    tokenizer: data.tokenizer,
  };
  const headerBytes = Buffer.from(JSON.stringify(header), 'utf8');
  const prefix = Buffer.alloc(16);
  prefix.write(STOK_MAGIC, 0, 'latin1');
  prefix.writeBigUInt64LE(BigInt(headerBytes.length), 8);
  const tokenBytes = Buffer.alloc(data.tokens.length * 4);
  for (let i = 0; i < data.tokens.length; i++) tokenBytes.writeUInt32LE(data.tokens[i]!, i * 4);
  const parts: Uint8Array[] = [prefix, headerBytes, tokenBytes];
  if (data.mask) parts.push(data.mask);
  return parts;
}

/** Writes a .stok file atomically. */
export function writeStok(path: string, data: TokenFile): void {
  let parts: Uint8Array[];
  try {
    parts = encodeStok(data);
  } catch (error) {
    throw new Error(`${path}: ${(error as Error).message.replace(/^stok: /, '')}`);
  }
  writeFileAtomic(path, parts);
}

/** Parses .stok bytes; every error names `where` (the file) and the field at fault. */
export function decodeStok(bytes: Buffer, where: string): TokenFile {
  if (bytes.length < 16 || bytes.toString('latin1', 0, 8) !== STOK_MAGIC) throw new Error(`${where}: not a .stok file (magic "${STOK_MAGIC}" missing)`);
  const headerLength = Number(bytes.readBigUInt64LE(8));
  if (16 + headerLength > bytes.length) throw new Error(`${where}: header length ${headerLength} runs past the end of the file`);
  let header: Partial<StokHeader>;
  try {
    header = JSON.parse(bytes.toString('utf8', 16, 16 + headerLength)) as Partial<StokHeader>;
  } catch (error) {
    throw new Error(`${where}: header is not valid JSON (${(error as Error).message})`);
  }
  const field = (name: string, ok: boolean) => {
    if (!ok) throw new Error(`${where}: header field "${name}" is missing or invalid`);
  };
  field('vocab', Number.isInteger(header.vocab) && header.vocab! > 0);
  field('n_tokens', Number.isInteger(header.n_tokens) && header.n_tokens! >= 0);
  field('seq_len', header.seq_len === null || Number.isInteger(header.seq_len));
  field('has_mask', typeof header.has_mask === 'boolean');
  field('bytes_per_token', header.bytes_per_token === null || typeof header.bytes_per_token === 'number');
  field('tokenizer', header.tokenizer === 'byte' || header.tokenizer === 'gpt2');
  const n = header.n_tokens!;
  const tokenStart = 16 + headerLength;
  const expected = tokenStart + n * 4 + (header.has_mask ? n : 0);
  if (bytes.length !== expected) throw new Error(`${where}: file is ${bytes.length} bytes, header says ${expected}`);
  const tokens = new Uint32Array(n);
  for (let i = 0; i < n; i++) tokens[i] = bytes.readUInt32LE(tokenStart + i * 4);
  const data: TokenFile = {
    vocab: header.vocab!,
    tokens,
    seqLen: header.seq_len!,
    bytesPerToken: header.bytes_per_token!,
    tokenizer: header.tokenizer!,
  };
  if (header.has_mask) data.mask = new Uint8Array(bytes.subarray(tokenStart + n * 4, expected));
  checkTokenFile(data, where);
  return data;
}

export function readStok(path: string): TokenFile {
  return decodeStok(readFileSync(path), path);
}

/** Only the header, read without loading the tokens (for listing datasets and run summaries). */
export function readStokHeader(path: string): StokHeader {
  const fd = openSync(path, 'r');
  try {
    const prefix = Buffer.alloc(16);
    if (readSync(fd, prefix, 0, 16, 0) < 16 || prefix.toString('latin1', 0, 8) !== STOK_MAGIC)
      throw new Error(`${path}: not a .stok file (magic "${STOK_MAGIC}" missing)`);
    const headerLength = Number(prefix.readBigUInt64LE(8));
    if (headerLength > 1 << 20) throw new Error(`${path}: header length ${headerLength} is implausibly large`);
    const header = Buffer.alloc(headerLength);
    if (readSync(fd, header, 0, headerLength, 16) < headerLength) throw new Error(`${path}: header runs past the end of the file`);
    return JSON.parse(header.toString('utf8')) as StokHeader;
  } finally {
    closeSync(fd);
  }
}
