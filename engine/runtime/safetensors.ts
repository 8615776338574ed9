// Minimal safetensors header access for the TypeScript side (export and import checks): the 8-byte
// little-endian header length, the JSON header {name: {dtype, shape, data_offsets}, __metadata__},
// and validation that offsets tile the data area exactly. Tensor data is never decoded here; files
// are copied as they are (the engine already stores Hugging Face nemotron_h names).
//
// Not here: reading or writing tensor values (the native engine does that).
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

export interface TensorEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

export interface SafetensorsHeader {
  tensors: Record<string, TensorEntry>;
  metadata: Record<string, string>;
}

const DTYPE_BYTES: Record<string, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1, F8_E4M3: 1, F8_E5M2: 1 };

/** Reads and validates the header; errors name the file and the tensor. */
export function readSafetensorsHeader(path: string): SafetensorsHeader {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const prefix = Buffer.alloc(8);
    if (size < 8 || readSync(fd, prefix, 0, 8, 0) < 8) throw new Error(`${path}: too short to be a safetensors file`);
    const headerLength = Number(prefix.readBigUInt64LE(0));
    if (headerLength > size - 8 || headerLength > 100 * 1024 * 1024) throw new Error(`${path}: header length ${headerLength} runs past the end of the file`);
    const headerBytes = Buffer.alloc(headerLength);
    readSync(fd, headerBytes, 0, headerLength, 8);
    let raw: Record<string, unknown>;
    try {
      raw = JSON.parse(headerBytes.toString('utf8')) as Record<string, unknown>;
    } catch (error) {
      throw new Error(`${path}: header is not valid JSON (${(error as Error).message})`);
    }
    const dataSize = size - 8 - headerLength;
    const tensors: Record<string, TensorEntry> = {};
    const spans: [number, number, string][] = [];
    for (const [name, value] of Object.entries(raw)) {
      if (name === '__metadata__') continue;
      const entry = value as TensorEntry;
      const bytesPer = DTYPE_BYTES[entry?.dtype];
      if (!bytesPer) throw new Error(`${path}: tensor "${name}": unknown dtype ${JSON.stringify(entry?.dtype)}`);
      if (!Array.isArray(entry.shape) || !entry.shape.every((d) => Number.isInteger(d) && d >= 0)) throw new Error(`${path}: tensor "${name}": bad shape`);
      const [begin, end] = entry.data_offsets ?? [];
      const expected = entry.shape.reduce((a, b) => a * b, 1) * bytesPer;
      if (!Number.isInteger(begin) || !Number.isInteger(end) || end! - begin! !== expected || end! > dataSize)
        throw new Error(`${path}: tensor "${name}": data_offsets ${JSON.stringify(entry.data_offsets)} do not fit shape ${JSON.stringify(entry.shape)} ${entry.dtype} in ${dataSize} data bytes`);
      tensors[name] = entry;
      spans.push([begin!, end!, name]);
    }
    spans.sort((a, b) => a[0] - b[0]);
    let at = 0;
    for (const [begin, end, name] of spans) {
      if (begin !== at) throw new Error(`${path}: tensor "${name}" starts at ${begin}, expected ${at} (overlap or gap)`);
      at = end;
    }
    if (at !== dataSize) throw new Error(`${path}: ${dataSize - at} trailing bytes after the last tensor`);
    const metadata = (raw.__metadata__ ?? {}) as Record<string, string>;
    return { tensors, metadata };
  } finally {
    closeSync(fd);
  }
}
