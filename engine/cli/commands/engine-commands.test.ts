// End-to-end tests of the engine-backed commands on a micro design: train (--json events, run
// folder, data files), eval, generate, resume (continues from the checkpoint), profile, export-hf
// of the trained run, fine-tuning a run or checkpoint in a new run (train RUN|CHECKPOINT,
// --init-from), eval/resume falling back from a corrupt newest checkpoint, a task run resumed past its
// plan on new samples, and Ctrl-C on a real `strata train` process (clean stop, exit 130,
// `done` with reason "stopped", then resumable), MTP speculative decoding and the thinking budget,
// profile rows beside the analytics' prediction, and failures (NaN stop, corrupt checkpoint, missing
// data) that exit non-zero with one line and leave the run folder saying so. Needs the built
// engine (npm run build:engine).
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { bufferIO } from '../io.js';
import { loadEngine } from '../../runtime/engine.js';
import { readStok } from '../../runtime/data/stok.js';
import { readEvents, summarizeRun } from '../../runtime/runs.js';
import { run as evalCommand } from './eval.js';
import { run as exportHf } from './export-hf.js';
import { run as generate } from './generate.js';
import { run as profile } from './profile.js';
import { run as resume } from './resume.js';
import { run as train } from './train.js';

const BIN = fileURLToPath(new URL('../bin.mjs', import.meta.url));

function workspace(training: Record<string, unknown> = {}, mtp = false) {
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
      ...(mtp ? { mtp: { kind: 'mtp', depth: 2, blocks: [{ kind: 'mlp', ffn: 32 }], loss_weight: 0.3, shared_weights: true } } : {}),
      precision: { default: 'fp32', rules: [] },
    },
    pipeline: {
      training: { steps: 3, batch_size: 2, seq_len: 32, warmup_steps: 1, eval_every: 0, checkpoint_every: 2, ...training },
      evaluations: [{ kind: 'heldout', batches: 2 }],
    },
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
    const precisionRows = JSON.parse(readFileSync(join(runDir, 'precision.json'), 'utf8')).rows;
    expect(precisionRows.find((r: { layer: number }) => r.layer === 0)).toMatchObject({ kind: 'mamba2', role: 'mamba.in_proj', fprop: 'fp32' });
    expect(readFileSync(join(runDir, 'log.txt'), 'utf8')).toMatch(/\] step 1 loss [\s\S]*\] checkpoint at step 3: [\s\S]*\] done\n$/);

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

    // Training a run folder again fine-tunes its newest checkpoint in a new run, and says so: its
    // first loss is the trained model's, below a fresh initialization's.
    const againIO = bufferIO(dir);
    expect(await train([runDir, '--steps', '1', '--runs', 'again', '--json'], againIO)).toBe(0);
    expect(againIO.err()).toMatch(/note: .*a new run fine-tuning .*step_000005/);
    const again = againIO.out().trim().split('\n').map((l) => JSON.parse(l));
    expect(again.find((e) => e.type === 'start').init_from).toMatch(/step_000005$/);
    const freshIO = bufferIO(dir);
    expect(await train(['micro.json', '--data', 'notes.txt', '--steps', '1', '--runs', 'fresh', '--json'], freshIO)).toBe(0);
    const firstLoss = (out: string) => out.trim().split('\n').map((l) => JSON.parse(l)).find((e) => e.type === 'step').loss;
    expect(firstLoss(againIO.out())).toBeLessThan(firstLoss(freshIO.out()) - 0.1);
    expect(JSON.parse(readFileSync(join(onlyRun(join(dir, 'again')), 'run.json'), 'utf8'))).toMatchObject({ parent: summarizeRun(runDir).runId });
    // A checkpoint folder as INPUT, and --init-from with a design, start from those weights too.
    const fromCheckpoint = bufferIO(dir);
    expect(await train([join(runDir, 'checkpoints', 'step_000004'), '--steps', '1', '--runs', 'again2', '--json'], fromCheckpoint)).toBe(0);
    expect(fromCheckpoint.out()).toMatch(/"init_from":"[^"]*step_000004"/);
    const initFrom = bufferIO(dir);
    expect(await train(['micro.json', '--data', 'notes.txt', '--init-from', join(runDir, 'checkpoints', 'step_000005', 'model.safetensors'), '--steps', '1', '--runs', 'again3', '--json'], initFrom)).toBe(0);
    expect(firstLoss(initFrom.out())).toBeLessThan(firstLoss(freshIO.out()) - 0.1);
  });

  it('a design without weights is initialized from --seed (export-hf, eval)', async () => {
    const dir = workspace();
    for (const [out, seed] of [['a', '7'], ['b', '7'], ['c', '8']] as const) expect(await exportHf(['micro.json', '--out', out, '--seed', seed], bufferIO(dir))).toBe(0);
    const weights = (out: string) => readFileSync(join(dir, out, 'model.safetensors'));
    expect(weights('a').equals(weights('b'))).toBe(true);
    expect(weights('a').equals(weights('c'))).toBe(false);
    const losses: number[] = [];
    for (const seed of ['7', '7', '8']) {
      const io = bufferIO(dir);
      expect(await evalCommand(['micro.json', '--data', 'notes.txt', '--seed', seed, '--json', '--runs', 'evals'], io)).toBe(0);
      losses.push(io.out().trim().split('\n').map((l) => JSON.parse(l)).find((e) => e.type === 'eval').loss);
    }
    expect(losses[0]).toBe(losses[1]);
    expect(losses[2]).not.toBe(losses[0]);
  });

  it('profile prints per-layer rows for each mode beside the prediction, and the run folder holds the same rows', async () => {
    const dir = workspace();
    const io = bufferIO(dir);
    expect(await profile(['micro.json', '--mode', 'prefill,decode', '--context', '32', '--runs', 'runs'], io)).toBe(0);
    expect(io.out()).toMatch(/prefill @ 32 \(batch 1\): measured \d+\.\d+ ms\/step, \d+ tok\/s\n  predicted on cpu: \d+\.\d+ ms\/step, \d+ tok\/s/);
    expect(io.out()).toMatch(/decode @ 32 \(batch 1\): measured [\s\S]*memory: decode state .* MiB measured, predicted \d+\.\d+ MiB/);
    expect(io.out()).toMatch(/layer\.0\.mamba2\s+block\s+\d+\.\d{3}\s+\d+\.\d{3}/);
    const rows = readEvents(onlyRun(join(dir, 'runs'))).filter((e) => e.type === 'profile');
    expect(rows.filter((r) => r.op === 'total')).toHaveLength(2);
    for (const total of rows.filter((r) => r.op === 'total')) expect(total).toMatchObject({ hardware: 'cpu', predicted_ms: expect.any(Number), ms: expect.any(Number) });

    const jsonIO = bufferIO(dir);
    expect(await profile(['micro.json', '--mode', 'train', '--context', '32', '--hardware', 'h200', '--json', '--runs', 'runs-json'], jsonIO)).toBe(0);
    const printed = jsonIO.out().trim().split('\n').map((l) => JSON.parse(l));
    expect(printed.find((e) => e.op === 'total')).toMatchObject({ mode: 'train', hardware: 'h200', predicted_tokens_per_s: expect.any(Number) });
    expect(readEvents(onlyRun(join(dir, 'runs-json')))).toEqual(printed);
    await expect(profile(['micro.json', '--hardware', 'tpu'], jsonIO)).rejects.toThrow(/profile: --hardware: unknown hardware 'tpu'/);
  });

  it('generate: MTP speculative decoding gives the greedy text and reports acceptance; the thinking budget closes <think>', async () => {
    const dir = workspace({}, true);
    const roomy = JSON.parse(readFileSync(join(dir, 'micro.json'), 'utf8'));
    roomy.model.vocab_size = 264; // room for the <think> markers (259, 260) past the byte tokenizer's ids
    writeFileSync(join(dir, 'micro.json'), JSON.stringify(roomy));
    const greedyIO = bufferIO(dir);
    expect(await generate(['micro.json', '--prompt', 'It', '--max-tokens', '12', '--temperature', '0', '--json'], greedyIO)).toBe(0);
    const specIO = bufferIO(dir);
    expect(await generate(['micro.json', '--prompt', 'It', '--max-tokens', '12', '--temperature', '0', '--speculative', '--json'], specIO)).toBe(0);
    const greedy = JSON.parse(greedyIO.out());
    const spec = JSON.parse(specIO.out());
    expect(spec.ids).toEqual(greedy.ids);
    expect(spec.drafted).toBeGreaterThan(0);
    expect(spec.acceptance_rate).toBeCloseTo(spec.accepted / spec.drafted, 12);
    const textIO = bufferIO(dir);
    expect(await generate(['micro.json', '--prompt', 'It', '--max-tokens', '4', '--temperature', '0', '--speculative'], textIO)).toBe(0);
    expect(textIO.err()).toMatch(/MTP speculative: \d+\/\d+ drafts accepted \(acceptance rate (\d+\.\d%|n\/a)\)/);

    const thinkIO = bufferIO(dir);
    expect(await generate(['micro.json', '--prompt', 'Q <think>', '--max-tokens', '10', '--temperature', '1', '--seed', '5', '--think-budget', '3', '--json'], thinkIO)).toBe(0);
    const think = JSON.parse(thinkIO.out());
    // The prompt ends inside <think>: at most 3 tokens later the engine forces </think> (id 260).
    expect(think.ids.slice(0, 4)).toContain(260);
    expect(think.text).toContain('</think>');

    const plain = workspace();
    await expect(generate(['micro.json', '--speculative'], bufferIO(plain))).rejects.toThrow(/--speculative needs MTP heads, and .*micro.json has no model.mtp/);
    const tight = JSON.parse(readFileSync(join(plain, 'micro.json'), 'utf8'));
    tight.model.vocab_size = 260;
    writeFileSync(join(plain, 'tight.json'), JSON.stringify(tight));
    await expect(generate(['tight.json', '--think-budget', '2'], bufferIO(plain))).rejects.toThrow(/--think-budget: .*vocab_size is 260 \(needs at least 261\)/);
  });

  it('a run that stops on a non-finite gradient exits 1 and its folder says error, keeping the last good checkpoint', async () => {
    const dir = workspace({ steps: 30, lr: 1e30, warmup_steps: 0, grad_clip: 0, checkpoint_every: 1 });
    const io = bufferIO(dir);
    expect(await train(['micro.json', '--data', 'notes.txt', '--runs', 'runs'], io)).toBe(1);
    expect(io.err()).toMatch(/^error: step \d+: non-finite gradient .*last good checkpoint is kept\nstrata: train: the run stopped on an error/);
    expect(io.out()).not.toMatch(/^done: /m);
    const runDir = onlyRun(join(dir, 'runs'));
    expect(summarizeRun(runDir)).toMatchObject({ status: 'error', error: expect.stringMatching(/non-finite gradient/) });
    expect(readdirSync(join(runDir, 'checkpoints')).length).toBeGreaterThan(0);
  });

  it('a corrupt checkpoint is refused in one line; data that cannot be prepared leaves an error in the run folder', async () => {
    const dir = workspace();
    expect(await train(['micro.json', '--data', 'notes.txt', '--runs', 'runs'], bufferIO(dir))).toBe(0);
    const runDir = onlyRun(join(dir, 'runs'));
    // One flipped byte in the weights: refused by eval (the engine checks the folder's hashes) and export-hf.
    const weights = join(runDir, 'checkpoints', 'step_000003', 'model.safetensors');
    const bytes = readFileSync(weights);
    bytes[bytes.length - 3] = bytes[bytes.length - 3]! ^ 0x40;
    writeFileSync(weights, bytes);
    // eval and resume fall back to the newest valid checkpoint (step 2) and say so; a checkpoint
    // named explicitly is refused in one line; export-hf refuses.
    const flipped = bufferIO(dir);
    expect(await evalCommand([runDir, '--runs', 'evals', '--json'], flipped)).toBe(0);
    expect(flipped.err()).toMatch(/note: .*skipping a corrupt checkpoint: .*step_000003\/model\.safetensors: corrupt/);
    expect(flipped.err()).toMatch(/using the newest valid checkpoint .*step_000002/);
    expect(flipped.out()).not.toMatch(/refusing/);
    const named = bufferIO(dir);
    expect(await evalCommand([join(runDir, 'checkpoints', 'step_000003'), '--runs', 'evals'], named)).toBe(1);
    expect(named.err()).toMatch(/model\.safetensors is corrupt \(content hash mismatch\); refusing to use this checkpoint/);
    await expect(exportHf([runDir, '--out', 'hf'], bufferIO(dir))).rejects.toThrow(/model\.safetensors: corrupt \(content hash differs/);
    const resumed = bufferIO(dir);
    expect(await resume([runDir, '--steps', '4', '--json'], resumed)).toBe(0);
    const resumedEvents = resumed.out().trim().split('\n').map((l) => JSON.parse(l));
    expect(resumedEvents[0].type).toBe('start');
    expect(resumedEvents.filter((e) => e.type === 'step').map((e) => e.step)).toEqual([3, 4]);
    expect(resumedEvents.some((e) => e.type === 'log' && /step_000003.*corrupt/.test(e.message))).toBe(true);
    truncateSync(join(runDir, 'checkpoints', 'step_000004', 'model.safetensors'), 1000);
    const io = bufferIO(dir);
    expect(await evalCommand([join(runDir, 'checkpoints', 'step_000004'), '--runs', 'evals'], io)).toBe(1);
    expect(io.err().trim().split('\n')).toEqual([expect.stringMatching(/step_000004\/state\.json: model\.safetensors is truncated or altered/)]);

    await expect(train(['micro.json', '--data', 'nope.txt', '--runs', 'failed'], bufferIO(dir))).rejects.toThrow(/nope.txt\): file not found/);
    expect(summarizeRun(onlyRun(join(dir, 'failed')))).toMatchObject({ status: 'error', error: expect.stringMatching(/nope.txt\): file not found/) });
  });

  it('resume --steps beyond the plan trains a synthetic task on new samples, after the ones already used', async () => {
    const dir = workspace();
    expect(await train(['micro.json', '--task', 'copy', '--steps', '2', '--runs', 'runs'], bufferIO(dir))).toBe(0);
    const runDir = onlyRun(join(dir, 'runs'));
    const trainFile = join(runDir, 'data', 'train.stok');
    const before = readStok(trainFile);
    expect(before.tokens.length).toBe(4 * 32);
    const io = bufferIO(dir);
    expect(await resume([runDir, '--steps', '4'], io)).toBe(0);
    expect(io.out()).toMatch(/task data: 4 -> 8 training samples/);
    const after = readStok(trainFile);
    expect(after.tokens.length).toBe(8 * 32);
    expect(after.tokens.subarray(0, before.tokens.length)).toEqual(before.tokens);
    expect(summarizeRun(runDir)).toMatchObject({ status: 'done', lastStep: 4 });
  });

  it('reports bad options and inputs in one line naming the option or file', async () => {
    const dir = workspace();
    const io = bufferIO(dir);
    await expect(train(['micro.json', '--steps', '0'], io)).rejects.toThrow(/train: --steps must be an integer >= 1, got "0"/);
    await expect(train(['micro.json', '--task', 'sorting'], io)).rejects.toThrow(/--task sorting is not one of mqar, needle, copy/);
    await expect(train(['micro.json', '--data', 'nope.txt', '--runs', 'runs'], io)).rejects.toThrow(/micro.json: dataset \(file .*nope.txt\): file not found/);
    await expect(resume([dir], io)).rejects.toThrow(/not a run folder/);
    // On a build without CUDA, training on cuda is refused rather than silently run on the CPU.
    const backends = loadEngine().info().backends;
    if (!backends.includes('cuda')) {
      await expect(train(['micro.json', '--device', 'cuda', '--runs', 'cuda-runs'], io)).rejects.toThrow(/device cuda: this engine build has no cuda backend \(built: cpu\)/);
      expect(existsSync(join(dir, 'cuda-runs'))).toBe(false);
    }
    await expect(train(['nemotron-3-super-120b-a12b', '--runs', 'huge-runs'], io)).rejects.toThrow(/nemotron-3-super-120b-a12b.json: the CPU engine needs at least \d+\.\d GiB .* more than this machine's/);
    expect(existsSync(join(dir, 'huge-runs'))).toBe(false);
  });

  it('stops a real `strata train --json` cleanly at a checkpoint when its reader closes the pipe', async () => {
    const dir = workspace();
    const child = spawn(process.execPath, [BIN, 'train', 'micro.json', '--task', 'copy', '--steps', '100000', '--json', '--runs', 'runs'], { cwd: dir });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdout.once('data', () => child.stdout.destroy());
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(stderr).not.toMatch(/EPIPE|Unhandled/);
    expect(code).toBe(130);
    const runDir = onlyRun(join(dir, 'runs'));
    expect(summarizeRun(runDir).status).toBe('stopped');
    expect(readEvents(runDir).filter((e) => e.type === 'checkpoint').length).toBeGreaterThan(0);
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
