// Reading text datasets into documents: `.txt` (the whole file is one document), `.jsonl` (one JSON
// object per line; the text is in a named field, `text` by default) and `.parquet` (a string column,
// `text` by default; snappy natively, gzip/zstd/brotli/lz4 through hyparquet-compressors).
// Errors name the file, the line or row, and the field.
//
// Not here: tokenizing, splitting and writing token files (prepare.ts).
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects, parquetSchema } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';

export const TEXT_DATASET_EXTENSIONS = ['.txt', '.jsonl', '.parquet'] as const;

/** Documents of a .jsonl file; blank lines are skipped. */
export function readJsonlDocuments(path: string, textField = 'text'): string[] {
  const docs: string[] = [];
  const lines = readFileSync(path, 'utf8').split('\n');
  lines.forEach((line, i) => {
    if (!line.trim()) return;
    let record: unknown;
    try {
      record = JSON.parse(line);
    } catch (error) {
      throw new Error(`${path}: line ${i + 1} is not valid JSON (${(error as Error).message})`);
    }
    const value = record && typeof record === 'object' ? (record as Record<string, unknown>)[textField] : undefined;
    if (typeof value !== 'string') throw new Error(`${path}: line ${i + 1}: field "${textField}" is missing or not a string`);
    docs.push(value);
  });
  return docs;
}

/** Documents of a .parquet file's string column `textField`; null cells are skipped. */
export async function readParquetDocuments(path: string, textField = 'text'): Promise<string[]> {
  const file = await asyncBufferFromFile(path);
  const metadata = await parquetMetadataAsync(file);
  const columns = parquetSchema(metadata).children.map((child) => child.element.name);
  if (!columns.includes(textField))
    throw new Error(`${path}: column "${textField}" not found (columns: ${columns.join(', ') || 'none'})`);
  const rows = await parquetReadObjects({ file, metadata, columns: [textField], compressors });
  const docs: string[] = [];
  rows.forEach((row, i) => {
    const value = (row as Record<string, unknown>)[textField];
    if (value === null || value === undefined) return;
    if (typeof value !== 'string') throw new Error(`${path}: row ${i}: column "${textField}" is not a string (got ${typeof value})`);
    docs.push(value);
  });
  return docs;
}

/** Documents of any supported text dataset, by extension. */
export async function readTextDocuments(path: string, textField = 'text'): Promise<string[]> {
  const ext = extname(path).toLowerCase();
  switch (ext) {
    case '.txt':
      return [readFileSync(path, 'utf8')];
    case '.jsonl':
      return readJsonlDocuments(path, textField);
    case '.parquet':
      return readParquetDocuments(path, textField);
    default:
      throw new Error(`${path}: unsupported dataset extension "${ext}" (expected ${TEXT_DATASET_EXTENSIONS.join(', ')} or .stok)`);
  }
}
