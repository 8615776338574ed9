// Tests of checkpoint lookup and verification: FNV-1a 64 against published and independently
// computed vectors, the size/hash check of a file against its folder's state.json, and which path
// inference jobs hand the engine (a verified folder, or the weights file of imported weights), and
// the fall-back from a corrupt newest checkpoint to the newest valid one.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fnv1a64Hex, inferenceCheckpoint, latestCheckpoint, newestValidCheckpoint, verifyCheckpoint, verifyCheckpointFile } from './checkpoints.js';

describe('fnv1a64Hex', () => {
  it('matches the reference values', () => {
    expect(fnv1a64Hex(new Uint8Array())).toBe('cbf29ce484222325');
    expect(fnv1a64Hex(new TextEncoder().encode('a'))).toBe('af63dc4c8601ec8c');
    expect(fnv1a64Hex(new TextEncoder().encode('foobar'))).toBe('85944171f73967e8');
    // Every byte value three times (computed with Python's arbitrary-precision integers).
    const all = new Uint8Array(768).map((_, i) => i % 256);
    expect(fnv1a64Hex(all)).toBe('4f33c513c2e95c25');
  });
});

function checkpointFolder(content: Uint8Array, step = 4, run = mkdtempSync(join(tmpdir(), 'strata-ckpt-'))) {
  const dir = join(run, 'checkpoints', `step_${String(step).padStart(6, '0')}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'model.safetensors'), content);
  const state = { format: 'strata-checkpoint', step, files: { 'model.safetensors': { bytes: content.length, fnv1a64: fnv1a64Hex(content) } } };
  writeFileSync(join(dir, 'state.json'), JSON.stringify(state));
  return { run, dir, file: join(dir, 'model.safetensors') };
}

describe('verifyCheckpointFile', () => {
  it('accepts the listed bytes and refuses truncated or altered ones', () => {
    const content = new TextEncoder().encode('weights of a tiny model');
    const { file } = checkpointFolder(content);
    expect(() => verifyCheckpointFile(file)).not.toThrow();
    writeFileSync(file, content.subarray(0, 5));
    expect(() => verifyCheckpointFile(file)).toThrow(/model\.safetensors: truncated or altered \(5 bytes, the checkpoint lists 23\)/);
    const altered = content.slice();
    altered[3] = altered[3]! ^ 1;
    writeFileSync(file, altered);
    expect(() => verifyCheckpointFile(file)).toThrow(/model\.safetensors: corrupt \(content hash differs/);
  });

  it('accepts imported weights, which have no state.json', () => {
    const dir = mkdtempSync(join(tmpdir(), 'strata-imported-'));
    writeFileSync(join(dir, 'model.safetensors'), 'x');
    expect(() => verifyCheckpointFile(join(dir, 'model.safetensors'))).not.toThrow();
    expect(inferenceCheckpoint(dir)).toBe(join(dir, 'model.safetensors'));
  });

  it('hands the engine a trained checkpoint as its folder, so the engine verifies it', () => {
    const { run, dir } = checkpointFolder(new Uint8Array([1, 2, 3]));
    expect(latestCheckpoint(run)).toEqual({ path: dir, step: 4 });
    expect(inferenceCheckpoint(dir)).toBe(dir);
  });
});

describe('newestValidCheckpoint', () => {
  it('skips a corrupt newest checkpoint, saying why, and returns the newest valid one', () => {
    const { run, dir: older } = checkpointFolder(new Uint8Array([1, 2, 3]), 2);
    const { dir: newer, file } = checkpointFolder(new Uint8Array([4, 5, 6, 7]), 4, run);
    expect(newestValidCheckpoint(run)).toEqual({ checkpoint: { path: newer, step: 4 }, skipped: [] });
    writeFileSync(file, new Uint8Array([4, 5, 6, 8]));
    expect(() => verifyCheckpoint(newer)).toThrow(/step_000004\/model\.safetensors: corrupt/);
    const found = newestValidCheckpoint(run);
    expect(found.checkpoint).toEqual({ path: older, step: 2 });
    expect(found.skipped).toEqual([expect.stringMatching(/step_000004\/model\.safetensors: corrupt/)]);
    writeFileSync(join(older, 'model.safetensors'), new Uint8Array([1, 2]));
    expect(newestValidCheckpoint(run)).toMatchObject({ checkpoint: null, skipped: [expect.any(String), expect.stringMatching(/truncated/)] });
  });
});
