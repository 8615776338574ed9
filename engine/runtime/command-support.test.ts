// Tests of the engine commands' shared checks: the memory floor that refuses a design whose
// parameters alone exceed the machine (hand-counted parameters of a one-MLP design), the option
// parsers' one-line errors, and INPUT resolution: a run, one of its checkpoints (folder or weights
// file), and the fall-back from a corrupt newest checkpoint to the newest valid one.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bufferIO } from '../cli/io.js';
import { documentFromModel } from '../spec/document.js';
import { fnv1a64Hex } from './checkpoints.js';
import { checkEngineMemory, intListOption, intOption, loadTarget, validCheckpoint } from './command-support.js';

// Embedding 259 x 8, untied head 8 x 259, final norm 8, MLP block (norm 8, fc1 8 x 16, fc2 16 x 8 with relu2).
const doc = documentFromModel({ name: 'Small', vocab_size: 259, d_model: 8, stack: [{ kind: 'mlp', ffn: 16 }] });

describe('checkEngineMemory', () => {
  it('passes when weights (and training state) fit and refuses in one line when they do not', () => {
    expect(() => checkEngineMemory('small.json', doc, 'train', 1e9)).not.toThrow();
    expect(() => checkEngineMemory('small.json', doc, 'inference', 100)).toThrow(
      /^small\.json: the CPU engine needs at least 0\.0 GiB for fp32 weights of 0\.0M parameters, more than this machine's 0\.0 GiB of memory; train or run a smaller design/,
    );
  });

  it('counts 16 bytes per parameter for training, 8 for a backward pass and 4 for inference', () => {
    const params = 2 * 259 * 8 + 8 + 8 + 8 * 16 + 16 * 8;
    for (const [use, bytes] of [['inference', 4], ['backward', 8], ['train', 16]] as const) {
      expect(() => checkEngineMemory('d', doc, use, params * bytes)).not.toThrow();
      expect(() => checkEngineMemory('d', doc, use, params * bytes - 1)).toThrow(/needs at least/);
    }
  });

  it('refuses a full-size published design for training on any machine', () => {
    const huge = documentFromModel({ name: 'Huge', vocab_size: 131072, d_model: 8192, stack: Array.from({ length: 96 }, () => ({ kind: 'mlp' as const, ffn: 32768 })) });
    expect(() => checkEngineMemory('huge.json', huge, 'train')).toThrow(/for fp32 weights, gradients and AdamW moments of \d+\.\dM parameters/);
  });
});

describe('option parsers', () => {
  it('name the command and option in their errors', () => {
    expect(intOption('train', 'steps', '12')).toBe(12);
    expect(() => intOption('train', 'steps', '1.5')).toThrow('train: --steps must be an integer >= 1, got "1.5"');
    expect(intListOption('profile', 'context', '256,1k')).toEqual([256, 1024]);
    expect(() => intListOption('profile', 'context', '1k,x')).toThrow(/profile: --context must be a comma-separated list of positive integers/);
  });
});

describe('loadTarget and validCheckpoint', () => {
  function runWithCheckpoints() {
    const root = mkdtempSync(join(tmpdir(), 'strata-target-'));
    const run = join(root, 'run');
    mkdirSync(run);
    writeFileSync(join(run, 'run.json'), JSON.stringify({ runId: 'run', kind: 'train', name: 'Small', model: 'Small', device: 'cpu', createdAt: '2026-01-01T00:00:00.000Z', steps: 4 }));
    writeFileSync(join(run, 'document.json'), JSON.stringify(doc));
    writeFileSync(join(run, 'events.jsonl'), '');
    for (const step of [2, 4]) {
      const dir = join(run, 'checkpoints', `step_00000${step}`);
      mkdirSync(dir, { recursive: true });
      const bytes = new Uint8Array([step, 1, 2, 3]);
      writeFileSync(join(dir, 'model.safetensors'), bytes);
      writeFileSync(join(dir, 'state.json'), JSON.stringify({ format: 'strata-checkpoint', step, files: { 'model.safetensors': { bytes: 4, fnv1a64: fnv1a64Hex(bytes) } } }));
    }
    return { root, run };
  }

  it('resolves a run, a checkpoint folder and a checkpoint weights file to the run document', () => {
    const { root, run } = runWithCheckpoints();
    const io = bufferIO(root);
    const fromRun = loadTarget('run', io);
    expect(fromRun).toMatchObject({ runDir: run, checkpoint: { path: join(run, 'checkpoints', 'step_000004'), step: 4 } });
    expect(fromRun.checkpointGiven).toBeUndefined();
    const fromFolder = loadTarget('run/checkpoints/step_000002', io);
    expect(fromFolder).toMatchObject({ runDir: run, checkpointGiven: true, checkpoint: { path: join(run, 'checkpoints', 'step_000002'), step: 2 } });
    expect(fromFolder.doc.model.name).toBe('Small');
    const fromFile = loadTarget('run/checkpoints/step_000002/model.safetensors', io);
    expect(fromFile).toMatchObject({ runDir: run, checkpointGiven: true, checkpoint: { step: 2 } });
  });

  it('falls back from a corrupt newest checkpoint with a note, but keeps a checkpoint named explicitly', () => {
    const { root, run } = runWithCheckpoints();
    writeFileSync(join(run, 'checkpoints', 'step_000004', 'model.safetensors'), new Uint8Array([9, 9, 9, 9]));
    const io = bufferIO(root);
    expect(validCheckpoint(loadTarget('run', io), io)).toEqual({ path: join(run, 'checkpoints', 'step_000002'), step: 2 });
    expect(io.err()).toMatch(/note: run: skipping a corrupt checkpoint: .*step_000004\/model\.safetensors: corrupt/);
    expect(io.err()).toMatch(/note: run: using the newest valid checkpoint .*step_000002/);
    const named = bufferIO(root);
    expect(validCheckpoint(loadTarget('run/checkpoints/step_000004', named), named)).toMatchObject({ step: 4 });
    expect(named.err()).toBe('');
  });
});
