// Tests of the Node binding through the typed API, on a micro model and a synthetic task: events
// arrive in order on the JS thread and match the run folder's events.jsonl, cancel() stops a job
// cleanly with a checkpoint, bad requests reject with the engine's message, and weights written by
// `init` are a valid safetensors file. Needs the built addon (npm install / npm run build:engine).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { documentFromModel } from '../spec/document.js';
import { prepareData } from './data/prepare.js';
import { loadEngine, openmpDefaults } from './engine.js';
import type { EngineEvent, StepEvent } from './events.js';
import { createRun, readEvents } from './runs.js';
import { readSafetensorsHeader } from './safetensors.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

const doc = documentFromModel(
  {
    name: 'micro',
    vocab_size: 259,
    d_model: 16,
    stack: [
      { kind: 'mamba2', heads: 2, head_dim: 8, d_state: 8, groups: 1, conv_kernel: 4, chunk: 16 },
      { kind: 'attention', heads: 2, kv_heads: 1, head_dim: 8 },
    ],
    precision: { default: 'fp32', rules: [] },
  },
  { dataset: { source: 'task', task: 'copy' }, training: { steps: 4, batch_size: 2, seq_len: 32, warmup_steps: 1, eval_every: 0, checkpoint_every: 0 } },
);

async function preparedRun() {
  const root = mkdtempSync(join(tmpdir(), 'strata-engine-'));
  const run = createRun(root, doc, 'train');
  const data = await prepareData(doc.pipeline, doc.model.vocab_size, { outDir: join(run.dir, 'data'), baseDir: root, taskSamples: { train: 64, heldout: 16 } });
  return { run, data, root };
}

describe('engine binding', () => {
  const engine = loadEngine();

  it('describes itself', () => {
    const info = engine.info();
    expect(info.backends).toContain('cpu');
    expect(info.jobs).toEqual(expect.arrayContaining(['train', 'eval', 'generate', 'profile', 'init', 'grads', 'logits']));
  });

  it('defaults OMP_WAIT_POLICY to PASSIVE but keeps a user choice', () => {
    expect(openmpDefaults({}).OMP_WAIT_POLICY).toBe('PASSIVE');
    expect(openmpDefaults({ OMP_WAIT_POLICY: 'active' }).OMP_WAIT_POLICY).toBe('active');
    // End to end in a fresh process (this test runs in a worker thread, whose process.env never
    // reaches native code): the engine loaded there reports the policy its OpenMP runtime started with.
    const script = "import { loadEngine } from './engine/runtime/engine.ts'; console.log(JSON.stringify(loadEngine().info().openmp));";
    const policyIn = (extra: Record<string, string>) => {
      const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
      if (!('OMP_WAIT_POLICY' in extra)) delete env.OMP_WAIT_POLICY;
      const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: repoRoot, env, encoding: 'utf8' });
      return (JSON.parse(out.trim().split('\n').at(-1)!) as { wait_policy: string | null }).wait_policy;
    };
    expect(policyIn({})).toBe('PASSIVE');
    expect(policyIn({ OMP_WAIT_POLICY: 'active' })).toBe('active');
  });

  it('streams ordered events that match events.jsonl and resolves with the result', async () => {
    const { run, data } = await preparedRun();
    const events: EngineEvent[] = [];
    const job = engine.train({ document: doc, run_dir: run.dir, train_data: data.train, heldout_data: data.heldout, steps: 4 }, (e) => events.push(e));
    const result = await job.result;
    expect(result.steps_done).toBe(4);
    expect(events[0]!.type).toBe('start');
    expect(events.at(-1)!.type).toBe('done');
    const steps = events.filter((e): e is StepEvent => e.type === 'step');
    expect(steps.map((s) => s.step)).toEqual([1, 2, 3, 4]);
    for (const s of steps) expect(Number.isFinite(s.loss) && s.tokens_per_s > 0).toBe(true);
    expect(readEvents(run.dir).map((e) => e.type)).toEqual(events.map((e) => e.type));
  });

  it('cancels a long job after its current step and keeps a checkpoint', async () => {
    const { run, data } = await preparedRun();
    const events: EngineEvent[] = [];
    let job: ReturnType<typeof engine.train> | null = null;
    job = engine.train({ document: doc, run_dir: run.dir, train_data: data.train, heldout_data: data.heldout, steps: 100000 }, (e) => {
      events.push(e);
      if (e.type === 'step' && (e as StepEvent).step === 2) job!.cancel();
    });
    const result = await job.result;
    expect(result.steps_done).toBeGreaterThanOrEqual(2);
    expect(result.steps_done).toBeLessThan(100000);
    expect(events.at(-1)).toMatchObject({ type: 'done', reason: 'stopped' });
    expect(events.some((e) => e.type === 'checkpoint')).toBe(true);
  });

  it('rejects a bad request with the engine message', async () => {
    const { run } = await preparedRun();
    const job = engine.train({ document: doc, run_dir: run.dir, train_data: join(run.dir, 'missing.stok'), heldout_data: join(run.dir, 'missing.stok') }, () => {});
    await expect(job.result).rejects.toThrow(/missing.stok/);
  });

  it('writes initialized weights with HF names', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'strata-init-')), 'model.safetensors');
    await engine.init({ document: doc, out }, () => {}).result;
    const names = Object.keys(readSafetensorsHeader(out).tensors);
    expect(names).toEqual(expect.arrayContaining(['backbone.embeddings.weight', 'backbone.layers.0.mixer.A_log', 'backbone.layers.1.mixer.q_proj.weight', 'backbone.norm_f.weight']));
    expect(readFileSync(out).length).toBeGreaterThan(1000);
  });

  it('writes the raw logits of one batch', async () => {
    const { data, root } = await preparedRun();
    const weights = join(root, 'model.safetensors'), out = join(root, 'logits.safetensors');
    await engine.init({ document: doc, out: weights }, () => {}).result;
    const result = await engine.logits({ document: doc, weights, data: data.train, out }, () => {}).result;
    expect(result).toMatchObject({ batch: 2, vocab: 259 });
    expect(Number.isFinite(result.loss) && result.loss > 0).toBe(true);
    const header = readSafetensorsHeader(out);
    expect(Object.keys(header.tensors)).toEqual(['logits']);
    expect(header.tensors.logits).toMatchObject({ dtype: 'F32', shape: [2, result.seq_len, 259] });
  });
});
