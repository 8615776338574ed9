// Tests of `strata analyze` through the real executable (node engine/cli/bin.mjs): every
// template in tables and JSON, HF config input, context suffixes, and bad input messages.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { TEMPLATE_NAMES } from '../../../templates/index.js';
import { parseTokenCount } from './analyze.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const BIN = join(ROOT, 'engine/cli/bin.mjs');

function strata(args: string[], cwd = ROOT) {
  const r = spawnSync(process.execPath, [BIN, 'analyze', ...args], { cwd, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function json(args: string[]) {
  const r = strata([...args, '--json']);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout);
}

const KiB = 1024;
const MiB = 1024 * 1024;

describe('parseTokenCount', () => {
  it('accepts plain numbers and k/M suffixes in powers of 1024', () => {
    expect(parseTokenCount('--context', '8192')).toBe(8192);
    expect(parseTokenCount('--context', '8k')).toBe(8192);
    expect(parseTokenCount('--context', '128K')).toBe(131072);
    expect(parseTokenCount('--context', '1M')).toBe(1048576);
  });
  it('rejects anything else with a message naming the option', () => {
    for (const bad of ['0', '-5', '8kb', '1.5', 'x']) expect(() => parseTokenCount('--context', bad)).toThrow(/--context/);
  });
});

describe('strata analyze', () => {
  it.each(TEMPLATE_NAMES.map((n) => [n]))('prints JSON with the required fields for template %s', (name) => {
    const report = json([name]);
    expect(report.source).toEqual({ kind: 'template', file: `templates/${name}.json` });
    for (const value of [
      report.params.total,
      report.params.active,
      report.params.embedding,
      report.flops.forward_per_token,
      report.memory.kv_cache_bytes_per_token,
      report.memory.state_bytes_per_sequence,
    ])
      expect(typeof value).toBe('number');
    expect(report.params.active).toBeLessThanOrEqual(report.params.total);
    expect(report.layers).toHaveLength(report.model.layers);
    expect(report.layers[0]).toHaveProperty('kind');
  });

  it.each(TEMPLATE_NAMES.map((n) => [n]))('prints aligned tables for template %s', (name) => {
    const r = strata([name, '--context', '4k']);
    expect(r.code).toBe(0);
    for (const section of ['Summary', 'Per block kind', 'Per layer', 'Memory for inference', 'Memory for training', 'Roofline on NVIDIA H200'])
      expect(r.stdout).toContain(section);
    for (const context of ['8k', '128k', '1M']) expect(r.stdout).toMatch(new RegExp(`\\n  ${context} +\\d`));
  });

  it('shows a newcomer Nano at 31.58B / 3.58B, 6 KiB of KV cache per token and 46.8 MiB of state', () => {
    const r = strata(['nemotron-3-nano-30b-a3b']);
    expect(r.stdout).toContain('31.58B total / 3.58B active');
    expect(r.stdout).toContain('6 KiB per token');
    expect(r.stdout).toContain('46.8 MiB per sequence');
    expect(r.stdout).toContain('(identical layers grouped)');
  });

  it('analyzes an HF config.json to the same counts as the template', () => {
    const hf = json(['tests/fixtures/hf-configs/nemotron-3-nano-30b-a3b.json']);
    expect(hf.source.kind).toBe('hf-config');
    expect(hf.params.total).toBe(31_577_940_288);
    expect(hf.params.active).toBe(3_580_076_352);
    expect(hf.memory.kv_cache_bytes_per_token).toBe(6 * KiB);
    expect(hf.memory.state_bytes_per_sequence / MiB).toBeCloseTo(46.8, 1);
  });

  it('honours --context, --batch, --hardware and --rates', () => {
    const report = json(['qwen3-30b-a3b', '--context', '128k', '--batch', '4', '--hardware', 'B200', '--rates', 'measured']);
    expect(report.context).toBe(131072);
    expect(report.flops.context).toBe(131072);
    expect(report.batch).toBe(4);
    expect(report.roofline.hardware.id).toBe('b200');
    expect(report.roofline.hardware.native).toContain('nvfp4');
    expect(report.memory.kv_cache_bytes_per_token).toBe(96 * KiB);
  });

  const dir = mkdtempSync(join(tmpdir(), 'strata-analyze-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('names the file, layer and field of an invalid document and exits 2', () => {
    const file = join(dir, 'bad.json');
    writeFileSync(
      file,
      JSON.stringify({
        format: 'strata',
        version: 2,
        model: { name: 'bad', vocab_size: 300, d_model: 64, stack: [{ kind: 'attention', heads: 6, kv_heads: 4, head_dim: 16 }] },
      }),
    );
    const r = strata(['bad.json'], dir);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('bad.json: layer 0 (attention): heads 6 is not a multiple of kv_heads 4');
  });

  it('rejects unknown hardware, bad rates and a missing input with one-line messages', () => {
    const hw = strata(['tiny-hybrid', '--hardware', 'tpu']);
    expect(hw.code).toBe(2);
    expect(hw.stderr).toMatch(/^strata: analyze: --hardware tpu is not one of h100, h200, b200, cpu\n$/);
    expect(strata(['tiny-hybrid', '--rates', 'best']).stderr).toContain('--rates best is not datasheet or measured');
    const none = strata([]);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('expected one INPUT, got 0');
    expect(strata(['no-such-design']).stderr).toContain('no-such-design: no such file or template');
  });
});
