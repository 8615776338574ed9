// Finding checkpoints inside a run folder. The engine writes checkpoints/ entries whose names carry
// the step (e.g. `step-000100/` holding model.safetensors + optimizer state + state.json, or a
// `step-000100.safetensors` file); imported weights sit in `checkpoints/imported/`. These helpers
// pick the newest one and its model weights file without knowing more of the engine's layout, and
// verify a checkpoint folder's files against the sizes and FNV-1a 64 hashes its state.json lists
// (the engine writes them; engine/native/src/train/checkpoint.cpp) before a file is used as is,
// and find the newest checkpoint that verifies when newer ones are corrupt.
//
// Not here: writing checkpoints (the native engine) or reading tensors (safetensors.ts).
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { RUN_FILES } from './runs.js';

export interface CheckpointRef {
  /** The checkpoint entry (folder or .safetensors file) as the engine accepts it. */
  path: string;
  /** Step parsed from its name; -1 for imported weights (older than any trained step). */
  step: number;
}

function stepOf(name: string): number | null {
  if (name === 'imported') return -1;
  const match = /(\d+)(?:\.safetensors)?$/.exec(name);
  return match ? Number(match[1]) : null;
}

/** All checkpoints of a run, oldest first. */
export function listCheckpoints(runDir: string): CheckpointRef[] {
  const folder = join(runDir, RUN_FILES.checkpoints);
  if (!existsSync(folder)) return [];
  const refs: CheckpointRef[] = [];
  for (const name of readdirSync(folder)) {
    if (name.startsWith('.')) continue; // temporary files of an atomic write in progress
    const step = stepOf(name);
    if (step === null) continue;
    const path = join(folder, name);
    const isDir = statSync(path).isDirectory();
    if (!isDir && !name.endsWith('.safetensors')) continue;
    if (isDir && modelWeightsFile(path) === null) continue;
    refs.push({ path, step });
  }
  return refs.sort((a, b) => a.step - b.step);
}

export function latestCheckpoint(runDir: string): CheckpointRef | null {
  return listCheckpoints(runDir).at(-1) ?? null;
}

/** The model weights (.safetensors) of a checkpoint entry, or null when it has none. */
export function modelWeightsFile(checkpoint: string): string | null {
  if (checkpoint.endsWith('.safetensors')) return existsSync(checkpoint) ? checkpoint : null;
  if (!existsSync(checkpoint) || !statSync(checkpoint).isDirectory()) return null;
  for (const preferred of ['model.safetensors', 'weights.safetensors']) if (existsSync(join(checkpoint, preferred))) return join(checkpoint, preferred);
  const candidates = readdirSync(checkpoint).filter((f) => f.endsWith('.safetensors') && !/optim|adam|grad/i.test(f));
  return candidates.length === 1 ? join(checkpoint, candidates[0]!) : null;
}

const STATE_FILE = 'state.json';

/**
 * What the engine should load for inference from a checkpoint entry: the folder itself when it has
 * a state.json (the engine then verifies every file's size and hash first), else its weights file
 * (imported weights have neither state nor optimizer).
 */
export function inferenceCheckpoint(checkpoint: string): string {
  if (existsSync(join(checkpoint, STATE_FILE))) return checkpoint;
  return modelWeightsFile(checkpoint) ?? checkpoint;
}

/** FNV-1a 64 of `bytes` as 16 hex digits, computed on two 32-bit halves (the prime is 2^40 + 0x1b3). */
export function fnv1a64Hex(bytes: Uint8Array): string {
  let hi = 0xcbf29ce4;
  let lo = 0x84222325;
  for (let i = 0; i < bytes.length; i++) {
    lo = (lo ^ bytes[i]!) >>> 0;
    const low = lo * 0x1b3; // < 2^41: exact
    const carry = Math.floor(low / 0x100000000);
    hi = (Math.imul(hi, 0x1b3) + (lo << 8) + carry) >>> 0;
    lo = low >>> 0;
  }
  return hi.toString(16).padStart(8, '0') + lo.toString(16).padStart(8, '0');
}

/**
 * Verifies every file a checkpoint folder's state.json lists (size and FNV-1a hash); a folder
 * without state.json (imported weights) or a plain .safetensors file is accepted as is. Throws naming the file.
 */
export function verifyCheckpoint(checkpoint: string): void {
  const statePath = join(checkpoint, STATE_FILE);
  if (!existsSync(statePath)) return;
  let files: Record<string, unknown> | undefined;
  try {
    files = (JSON.parse(readFileSync(statePath, 'utf8')) as { files?: Record<string, unknown> }).files;
  } catch (error) {
    throw new Error(`${statePath}: cannot read the checkpoint state (${(error as Error).message})`);
  }
  if (!files || typeof files !== 'object') throw new Error(`${statePath}: lists no files`);
  for (const name of Object.keys(files)) {
    const file = join(checkpoint, name);
    if (!existsSync(file)) throw new Error(`${file}: missing (listed in the checkpoint's state.json)`);
    verifyCheckpointFile(file);
  }
}

/**
 * The newest checkpoint of a run whose files verify, and the newer ones skipped because they do
 * not (each with the reason), so commands can say which checkpoint they fell back from.
 */
export function newestValidCheckpoint(runDir: string): { checkpoint: CheckpointRef | null; skipped: string[] } {
  const skipped: string[] = [];
  for (const ref of listCheckpoints(runDir).reverse()) {
    try {
      verifyCheckpoint(ref.path);
      return { checkpoint: ref, skipped };
    } catch (error) {
      skipped.push((error as Error).message);
    }
  }
  return { checkpoint: null, skipped };
}

/**
 * Verifies `file` against the size and hash its checkpoint folder's state.json lists; a file in a
 * folder without state.json (imported weights) is accepted as is. Throws naming the file.
 */
export function verifyCheckpointFile(file: string): void {
  const statePath = join(dirname(file), STATE_FILE);
  if (!existsSync(statePath)) return;
  let entry: { bytes?: unknown; fnv1a64?: unknown } | undefined;
  try {
    entry = (JSON.parse(readFileSync(statePath, 'utf8')) as { files?: Record<string, { bytes?: unknown; fnv1a64?: unknown }> }).files?.[basename(file)];
  } catch (error) {
    throw new Error(`${statePath}: cannot read the checkpoint state (${(error as Error).message})`);
  }
  if (!entry) throw new Error(`${statePath}: does not list ${basename(file)}`);
  const bytes = readFileSync(file);
  if (bytes.length !== entry.bytes) throw new Error(`${file}: truncated or altered (${bytes.length} bytes, the checkpoint lists ${String(entry.bytes)})`);
  if (fnv1a64Hex(bytes) !== entry.fnv1a64) throw new Error(`${file}: corrupt (content hash differs from the checkpoint's state.json)`);
}
