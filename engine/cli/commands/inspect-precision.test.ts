// Tests of `strata inspect-precision`: a run folder with engine-style precision events, a checkpoint
// whose weights are quantized by the TS mirror (F32 safetensors written here), a design without
// measurements, --json, --step, and bad input messages; one call goes through the real executable.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { documentFromModel, type ModelSpecInput } from '../../spec/document.js';
import { presetPolicy } from '../../spec/precision.js';
import { eventFromStats } from '../../spec/precision-inspect.js';
import { fakeQuantize } from '../../spec/precision-quantize.js';
import { CliError } from '../errors.js';
import { bufferIO } from '../io.js';
import { run } from './inspect-precision.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'strata-inspect-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const model: ModelSpecInput = {
  name: 'inspect',
  vocab_size: 264,
  d_model: 32,
  stack: [
    { kind: 'mamba2', heads: 2, head_dim: 16, d_state: 8, groups: 1, conv_kernel: 4, chunk: 16 },
    { kind: 'mlp', ffn: 64 },
  ],
  precision: presetPolicy('nvfp4-all'),
};
const doc = documentFromModel(model);

function data(n: number, seed: number, scale: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    out[i] = (s / 2147483648 - 0.5) * scale;
  }
  return out;
}

/** A minimal F32 safetensors file. */
function writeSafetensors(path: string, tensors: Record<string, { shape: number[]; values: Float32Array }>): void {
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    header[name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + t.values.length * 4] };
    offset += t.values.length * 4;
  }
  let json = JSON.stringify(header);
  while ((json.length + 8) % 8 !== 0) json += ' ';
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(json.length));
  const body = Buffer.concat(Object.values(tensors).map((t) => Buffer.from(t.values.buffer, t.values.byteOffset, t.values.byteLength)));
  writeFileSync(path, Buffer.concat([prefix, Buffer.from(json), body]));
}

function makeRun(name: string, events: object[]): string {
  const dir = join(work, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'document.json'), JSON.stringify(doc));
  writeFileSync(join(dir, 'run.json'), JSON.stringify({ runId: name, kind: 'train', name, model: 'inspect', device: 'cpu', createdAt: '2026-01-01T00:00:00Z', steps: 20 }));
  writeFileSync(join(dir, 'events.jsonl'), events.map((e) => JSON.stringify(e)).join('\n') + '\n');
  return dir;
}

async function inspect(args: string[]) {
  const io = bufferIO(work);
  const code = await run(args, io);
  return { code, out: io.out(), err: io.err() };
}

// Engine-style events for layer 0 mamba.out_proj at steps 10 and 20: activations quantized by the mirror.
const activation = data(64 * 32, 5, 0.2);
const outProjStats = fakeQuantize(activation, 64, 32, { format: 'nvfp4' }).stats;
const events = [10, 20].flatMap((step) => [
  { type: 'start', t: 0 },
  { type: 'precision', t: 0, table: [{ layer: 0, kind: 'mamba2', roles: {} }], emulated: true }, // the engine's table event
  eventFromStats(outProjStats, { step, layer: 0, role: 'mamba.out_proj', pass: 'fprop', operand: 'activation', format: 'nvfp4', t: step }),
  eventFromStats(outProjStats, { step, layer: 1, role: 'mlp.fc2', pass: 'wgrad', operand: 'gradient', format: 'nvfp4', t: step }),
]);

describe('strata inspect-precision', () => {
  it('shows the resolved table with the last inspected step of a run', async () => {
    const dir = makeRun('run-events', events);
    const r = await inspect([dir]);
    expect(r.code).toBe(0);
    expect(r.out).toContain(`run ${dir}`);
    expect(r.out).toContain('Resolved precision and quantization at step 20');
    expect(r.out).toMatch(/0\s+mamba2\s+mamba\.out_proj\s+nvfp4\s+nvfp4\s+nvfp4\s+-\s+-\s+\d\.\d\de-\d+/);
    expect(r.out).toMatch(/head\s+bf16\s+bf16\s+bf16/);
    expect(r.out).toContain('layer 1 mlp.fc2 wgrad gradient (nvfp4)');
  });

  it('prints JSON and honours --step', async () => {
    const dir = makeRun('run-json', events);
    const r = await inspect([dir, '--json', '--step', '10']);
    const parsed = JSON.parse(r.out);
    expect(parsed.step).toBe(10);
    const row = parsed.rows.find((x: { layer: number; role: string }) => x.layer === 0 && x.role === 'mamba.out_proj');
    expect(row.measured['fprop.activation'].rel_err).toBeCloseTo(outProjStats.rel_err, 12);
    await expect(inspect([dir, '--step', '15'])).rejects.toThrow('no precision events at step 15 (inspected steps: 10, 20)');
  });

  it('quantizes checkpoint weights when the run has no precision events', async () => {
    const dir = makeRun('run-checkpoint', [{ type: 'start', t: 0 }]);
    mkdirSync(join(dir, 'checkpoints', 'step-000040'), { recursive: true });
    writeSafetensors(join(dir, 'checkpoints', 'step-000040', 'model.safetensors'), {
      'backbone.layers.0.mixer.in_proj.weight': { shape: [84, 32], values: data(84 * 32, 1, 0.04) },
      'backbone.layers.1.mixer.up_proj.weight': { shape: [64, 32], values: data(64 * 32, 2, 0.04) },
      'backbone.layers.0.mixer.A_log': { shape: [2], values: data(2, 3, 1) },
      'lm_head.weight': { shape: [264, 32], values: data(264 * 32, 4, 0.04) },
    });
    const r = await inspect([dir, '--json']);
    const parsed = JSON.parse(r.out);
    expect(parsed.source).toContain('step-000040');
    expect(parsed.step).toBe(40);
    const rows = parsed.rows as Array<{ layer: number; role: string; measured: Record<string, { format: string; rel_err: number }> }>;
    expect(rows.find((x) => x.layer === 0 && x.role === 'mamba.in_proj')!.measured['fprop.weight']!.format).toBe('nvfp4');
    const head = rows.find((x) => x.role === 'head')!.measured['fprop.weight']!;
    expect(head.format).toBe('bf16');
    expect(head.rel_err).toBeLessThan(2 ** -8);
    // The checkpoint entry itself works too.
    const direct = await inspect([join(dir, 'checkpoints', 'step-000040'), '--json']);
    expect(JSON.parse(direct.out).step).toBe(40);
  });

  it('shows the resolved table of a design without measurements', async () => {
    const r = await inspect(['tiny-hybrid']);
    expect(r.out).toContain('no precision events');
    expect(r.out).toMatch(/0\s+mamba2\s+mamba\.in_proj\s+bf16/);
  });

  it('rejects bad input with one-line messages', async () => {
    await expect(inspect([])).rejects.toBeInstanceOf(CliError);
    const dir = makeRun('run-bad', [{ type: 'precision', t: 0, step: 1, layer: 0, role: 'x', pass: 'sideways' }]);
    await expect(inspect([dir])).rejects.toThrow(/events\.jsonl event 1: precision event field 'pass'/);
    await expect(inspect([dir])).rejects.toBeInstanceOf(CliError);
    await expect(inspect([dir, '--step', 'last'])).rejects.toThrow(/--step "last" is not a whole number/);
    await expect(inspect(['no-such-design'])).rejects.toBeInstanceOf(CliError);
  });

  it('runs through the strata executable', () => {
    const r = spawnSync(process.execPath, [join(ROOT, 'engine/cli/bin.mjs'), 'inspect-precision', 'tiny-mamba2'], { cwd: ROOT, encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('mamba.out_proj');
  });
});
