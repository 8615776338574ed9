// Atomic file writes for everything the runtime persists (token files, run documents, exported
// tokenizers): the bytes go to a temporary file in the target's folder, which is then renamed over
// the target, so a reader never sees a half-written file and a crash leaves the old file intact.
// copyFileAtomic does the same for checkpoints copied into or out of run folders.
//
// Not here: appending to logs (events.jsonl is append-only and written by the engine).
import { closeSync, copyFileSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

let tempCounter = 0;

/** Writes `data` (one buffer or several, concatenated) to `path` atomically, creating parent folders. */
export function writeFileAtomic(path: string, data: string | Uint8Array | readonly Uint8Array[]): void {
  const folder = dirname(path);
  mkdirSync(folder, { recursive: true });
  const temp = join(folder, `.${basename(path)}.${process.pid}.${tempCounter++}.tmp`);
  const chunks = typeof data === 'string' ? [Buffer.from(data, 'utf8')] : data instanceof Uint8Array ? [data] : data;
  const fd = openSync(temp, 'w');
  try {
    for (const chunk of chunks) {
      let offset = 0;
      while (offset < chunk.byteLength) offset += writeSync(fd, chunk, offset, chunk.byteLength - offset);
    }
    fsyncSync(fd);
  } catch (error) {
    closeSync(fd);
    rmSync(temp, { force: true });
    throw error;
  }
  closeSync(fd);
  try {
    renameSync(temp, path);
  } catch (error) {
    rmSync(temp, { force: true });
    throw error;
  }
}

/** Copies `source` to `target` atomically (copy to a temporary file beside the target, then rename). */
export function copyFileAtomic(source: string, target: string): void {
  const folder = dirname(target);
  mkdirSync(folder, { recursive: true });
  const temp = join(folder, `.${basename(target)}.${process.pid}.${tempCounter++}.tmp`);
  try {
    copyFileSync(source, temp);
    renameSync(temp, target);
  } catch (error) {
    rmSync(temp, { force: true });
    throw error;
  }
}
