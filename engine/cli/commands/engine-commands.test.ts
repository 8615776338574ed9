// End-to-end tests of the engine-backed commands on a micro design: train (--json events, run
// folder, data files), eval, generate, resume (continues from the checkpoint), profile, export-hf
// of the trained run, and Ctrl-C on a real `strata train` process (clean stop, exit 130,
// `done` with reason "stopped", then resumable). Needs the built engine (npm run build:engine).
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { bufferIO } from '../io.js';
import { readEvents, summarizeRun } from '../../runtime/runs.js';
import { run as evalCommand } from './eval.js';
import { run as exportHf } from './export-hf.js';
import { run as generate } from './generate.js';
import { run as profile } from './profile.js';
import { run as resume } from './resume.js';
import { run as train } from './train.js';

const BIN = fileURLToPath(new URL('../bin.mjs', import.meta.url));

function workspace() {
  const dir = mkdtempSync(join(tmpdir(), 'strata-cmd-'));
  const doc = {
    format: 'strata',
    version: 2,
    model: {
      name: 'micro cli',
      vocab_size: 259,
      d_model: 16,
      stack: [
        { kind: 'mamba2', heads: 2, head_dim: 8, d_state: 8, groups: 1, conv_kernel: 4, chunk: 16 },
        { kind: 'mlp', ffn: 32 },
      ],
      precision: { default: 'fp32', rules: [] },
    },
    pipeline: { training: { steps: 3, batch_size: 2, seq_len: 32, warmup_steps: 1, eval_every: 0, checkpoint_every: 2 }, evaluations: [{ kind: 'heldout', batches: 2 }] },
  };
  writeFileSync(join(dir, 'micro.json'), JSON.stringify(doc));
  writeFileSync(join(dir, 'notes.txt'), 'It was the best of times, it was the worst of times.\n'.repeat(200));
  return dir;
}

function onlyRun(root: string): string {
  const runs = readdirSync(root);
  expect(runs).toHaveLength(1);
  return join(root, runs[0]!);
}

describe('engine commands', () => {
  it('train --json prints the engine events and leaves a complete run folder', async () => {
    const dir = workspace();
    const io = bufferIO(dir);
    expect(await train(['micro.json', '--data', 'notes.txt', '--json', '--runs', 'runs'], io)).toBe(0);
    const lines = io.out().trim().split('\n').map((l) => JSON.parse(l));
    expect(lines[0].type).toBe('start');
    expect(lines.filter((e) => e.type === 'step').map((e) => e.step)).toEqual([1, 2, 3]);
    expect(lines.at(-1).type).toBe('done');
    const runDir = onlyRun(join(dir, 'runs'));
    expect(readEvents(runDir).length).toBe(lines.length);
    expect(summarizeRun(runDir)).toMatchObject({ status: 'done', lastStep: 3, kind: 'train', data: expect.stringContaining('notes.txt') });
    expect(existsSync(join(runDir, 'data', 'train.stok')) && existsSync(join(runDir, 'data', 'heldout.stok'))).toBe(true);

    const evalIO = bufferIO(dir);
    expect(await evalCommand([runDir, '--runs', 'evals', '--positions', '4'], evalIO)).toBe(0);
    expect(evalIO.out()).toMatch(/eval loss \d+\.\d{4} ppl \d+\.\d+ bpb \d+\.\d{4}/);
    expect(evalIO.out()).toMatch(/NLL by position:\n  positions 0-\d+: \d+\.\d{4}\n/);

    const genIO = bufferIO(dir);
    expect(await generate([runDir, '--prompt', 'It was', '--max-tokens', '8', '--temperature', '0', '--json'], genIO)).toBe(0);
    const generated = JSON.parse(genIO.out());
    expect(generated.prompt).toBe('It was');
    expect(generated.ids.length).toBeGreaterThan(0);
    expect(generated.ids.length).toBeLessThanOrEqual(8);

    const resumeIO = bufferIO(dir);
    expect(await resume([runDir, '--steps', '5', '--json'], resumeIO)).toBe(0);
    const resumed = resumeIO.out().trim().split('\n').map((l) => JSON.parse(l));
    expect(resumed.filter((e) => e.type === 'step').map((e) => e.step)).toEqual([4, 5]);
    expect(summarizeRun(runDir)).toMatchObject({ status: 'done', lastStep: 5, steps: 5 });

    const hfIO = bufferIO(dir);
    expect(await exportHf([runDir, '--out', 'hf'], hfIO)).toBe(0);
    expect(existsSync(join(dir, 'hf', 'model.safetensors')) && existsSync(join(dir, 'hf', 'tokenizer.json'))).toBe(true);
  });

  it('profile prints per-layer rows for each mode', async () => {
    const dir = workspace();
    const io = bufferIO(dir);
    expect(await profile(['micro.json', '--mode', 'prefill,decode', '--context', '32', '--runs', 'runs'], io)).toBe(0);
    expect(io.out()).toMatch(/prefill @ 32 \(batch 1\)/);
    expect(io.out()).toMatch(/decode @ 32/);
    expect(io.out()).toMatch(/layer\.0\.mamba2/);
  });

  it('reports bad options and inputs in one line naming the option or file', async () => {
    const dir = workspace();
    const io = bufferIO(dir);
    await expect(train(['micro.json', '--steps', '0'], io)).rejects.toThrow(/train: --steps must be an integer >= 1, got "0"/);
    await expect(train(['micro.json', '--task', 'sorting'], io)).rejects.toThrow(/--task sorting is not one of mqar, needle, copy/);
    await expect(train(['micro.json', '--data', 'nope.txt', '--runs', 'runs'], io)).rejects.toThrow(/micro.json: dataset \(file .*nope.txt\): file not found/);
    await expect(resume([dir], io)).rejects.toThrow(/not a run folder/);
  });

  it('stops a real `strata train` process cleanly on Ctrl-C and can resume it', async () => {
    const dir = workspace();
    const child = spawn(process.execPath, [BIN, 'train', 'micro.json', '--task', 'copy', '--steps', '100000', '--json', '--runs', 'runs'], { cwd: dir });
    let stdout = '';
    let interrupted = false;
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (!interrupted && stdout.includes('"type":"step"')) {
        interrupted = true;
        child.kill('SIGINT');
      }
    });
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code).toBe(130);
    const last = JSON.parse(stdout.trim().split('\n').at(-1)!);
    expect(last).toMatchObject({ type: 'done', reason: 'stopped' });
    const runDir = onlyRun(join(dir, 'runs'));
    expect(summarizeRun(runDir).status).toBe('stopped');
    const io = bufferIO(dir);
    expect(await resume([runDir, '--steps', String(last.steps_done + 1), '--json'], io)).toBe(0);
    expect(summarizeRun(runDir).status).toBe('done');
  });
});
