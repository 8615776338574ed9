// Finding checkpoints inside a run folder. The engine writes checkpoints/ entries whose names carry
// the step (e.g. `step-000100/` holding model.safetensors + optimizer state + state.json, or a
// `step-000100.safetensors` file); imported weights sit in `checkpoints/imported/`. These helpers
// pick the newest one and its model weights file without knowing more of the engine's layout.
//
// Not here: writing checkpoints (the native engine) or reading tensors (safetensors.ts).
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
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
