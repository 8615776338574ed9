// File helpers of the host services: atomic writes (temp file in the same folder, fsync, rename,
// so a crash never leaves a half-written project) and JSON reads whose failures name the file,
// line and column. Not here: what the files mean (projects.ts, run-folders.ts).
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { StrataHostError } from '../contract.js';

/** Writes `data` to `path` atomically; creates the parent folder. */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<number> {
  const dir = dirname(path);
  await fs.mkdir(dir, { recursive: true });
  const temp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const handle = await fs.open(temp, 'w');
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await fs.rename(temp, path);
  } catch (error) {
    await fs.rm(temp, { force: true });
    throw error;
  }
  return typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength;
}

/** Converts a Node fs error into a host error that names the file. */
export function fsError(error: unknown, file: string, action: string): StrataHostError {
  const err = error as NodeJS.ErrnoException;
  if (err.code === 'ENOENT') return new StrataHostError({ code: 'not_found', message: `${file}: no such file`, file });
  if (err.code === 'EISDIR') return new StrataHostError({ code: 'bad_request', message: `${file}: is a folder, not a file`, file });
  return new StrataHostError({ code: 'io', message: `${file}: cannot ${action}: ${err.message}`, file });
}

/** Line and column (1-based) of a character offset. */
export function lineColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
}

/**
 * Offset of the first JSON syntax error in `text` (a small strict scanner; V8's messages do not
 * always carry a position). Returns text.length for a premature end.
 */
export function jsonErrorOffset(text: string): number {
  let i = 0;
  const ws = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i]!)) i++;
  };
  const fail = (): never => {
    throw i;
  };
  const literal = (word: string) => {
    if (text.startsWith(word, i)) i += word.length;
    else fail();
  };
  const string = () => {
    i++; // opening quote
    while (i < text.length) {
      const c = text.charCodeAt(i);
      if (c === 34) {
        i++;
        return;
      }
      if (c < 32) fail();
      if (c === 92) {
        i++;
        if (text[i] === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 1, i + 5))) fail();
          i += 5;
        } else if ('"\\/bfnrt'.includes(text[i] ?? 'x')) i++;
        else fail();
      } else i++;
    }
    fail();
  };
  const number = () => {
    const match = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i));
    if (!match || match[0] === '-' || match[0] === '') fail();
    i += match![0].length;
  };
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      ws();
      if (text[i] === '}') {
        i++;
        return;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail();
        string();
        ws();
        if (text[i] !== ':') fail();
        i++;
        value();
        ws();
        if (text[i] === ',') i++;
        else if (text[i] === '}') {
          i++;
          return;
        } else fail();
      }
    } else if (c === '[') {
      i++;
      ws();
      if (text[i] === ']') {
        i++;
        return;
      }
      for (;;) {
        value();
        ws();
        if (text[i] === ',') i++;
        else if (text[i] === ']') {
          i++;
          return;
        } else fail();
      }
    } else if (c === '"') string();
    else if (c === 't') literal('true');
    else if (c === 'f') literal('false');
    else if (c === 'n') literal('null');
    else if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) number();
    else fail();
  };
  try {
    value();
    ws();
    if (i < text.length) fail();
  } catch (offset) {
    return offset as number;
  }
  return -1;
}

/** Parses JSON text; a syntax error becomes `FILE: malformed JSON at line L column C: ...`. */
export function parseJsonText(text: string, file: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    const offset = jsonErrorOffset(text);
    let where = '';
    if (offset >= 0) {
      const { line, column } = lineColumn(text, offset);
      where = ` at line ${line} column ${column}`;
    }
    const reason =
      offset < 0 ? (error as Error).message : offset >= text.length ? 'unexpected end of file' : `unexpected ${JSON.stringify(text[offset])}`;
    throw new StrataHostError({ code: 'corrupt_file', message: `${file}: malformed JSON${where}: ${reason}`, file });
  }
}

/** Reads and parses a JSON file (not_found / io / corrupt_file errors name the file). */
export async function readJsonFile(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (error) {
    throw fsError(error, file, 'read');
  }
  return parseJsonText(text, file);
}
