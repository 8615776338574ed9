// End-to-end tests of the `strata` CLI skeleton: spawns the real executable (node engine/cli/bin.mjs,
// and once through `npm run strata`) on the HF fixtures and checks outputs, written files and the
// one-line messages and exit codes for bad input.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { documentFromModel } from '../spec/document.js';
import { formatHfConfig, hfConfigFromModel, importHfConfig } from '../spec/hf/index.js';
import { parseJsonText } from '../spec/hf/json-text.js';
import { parseDocument } from '../spec/validate.js';
import { COMMANDS } from './main.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = join(ROOT, 'engine/cli/bin.mjs');
const NANO = 'tests/fixtures/hf-configs/nemotron-3-nano-30b-a3b.json';
const SUPER = 'tests/fixtures/hf-configs/nemotron-3-super-120b-a12b.json';
const INVALID = 'tests/fixtures/hf-configs/invalid';

function strata(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, encoding: 'utf8' });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** Bad input: exit 2, nothing on stdout, exactly one `strata: ...` line on stderr. */
function expectBadInput(result: ReturnType<typeof strata>, message: string): void {
  expect(result.code).toBe(2);
  expect(result.stdout).toBe('');
  expect(result.stderr).toBe(`strata: ${message}\n`);
}

const work = mkdtempSync(join(tmpdir(), 'strata-cli-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('strata', () => {
  it('prints usage with --help and fails without a command', () => {
    const help = strata('--help');
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('usage: strata <command>');
    expect(help.stdout).toContain('convert');
    const none = strata();
    expect(none.code).toBe(2);
    expect(none.stdout).toContain('usage: strata <command>');
    expectBadInput(strata('frobnicate'), `unknown command 'frobnicate' (commands: ${COMMANDS.map((c) => c.name).join(', ')})`);
    for (const name of ['analyze', 'convert', 'train', 'eval', 'generate', 'resume', 'profile', 'export-hf', 'import-hf', 'inspect-precision', 'export-megatron', 'plan'])
      expect(COMMANDS.map((c) => c.name)).toContain(name);
  });
});

describe('strata convert', () => {
  it('prints Megatron-LM flags for Nemotron 3 Nano', () => {
    const result = strata('convert', NANO, '--to', 'megatron');
    expect(result.code).toBe(0);
    const lines = result.stdout.trimEnd().split(' \\\n');
    expect(lines[0]).toBe("--hybrid-layer-pattern 'MEMEM*EMEMEM*EMEMEM*EMEMEM*EMEMEM*EMEMEMEM*EMEMEMEME'");
    for (const flag of [
      '--num-layers 52',
      '--hidden-size 2688',
      '--num-attention-heads 32',
      '--num-query-groups 2',
      '--kv-channels 128',
      '--mamba-num-heads 64',
      '--mamba-head-dim 64',
      '--mamba-state-dim 128',
      '--mamba-num-groups 8',
      '--num-experts 128',
      '--moe-router-topk 6',
      '--moe-ffn-hidden-size 1856',
      '--moe-shared-expert-intermediate-size 3712',
      '--moe-router-score-function sigmoid',
      '--moe-router-enable-expert-bias',
      '--moe-router-topk-scaling-factor 2.5',
      '--position-embedding-type none',
      '--squared-relu',
      '--untie-embeddings-and-output-weights',
    ])
      expect(lines).toContain(flag);
    expect(lines.some((l) => l.startsWith('--mtp'))).toBe(false);
  });

  it('puts MTP segments into the pattern and flags for Nemotron 3 Super', () => {
    const result = strata('convert', SUPER, '--to', 'megatron');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^--hybrid-layer-pattern 'MEMEMEM\*E[^']*MEMEME\/\*E\/\*E' \\\n/);
    expect(result.stdout).toContain('--mtp-num-layers 2 \\\n');
    expect(result.stdout).toContain('--mtp-use-repeated-layer');
    expect(result.stdout).toContain('--moe-latent-size 1024 \\\n');
    expect(result.stderr).toContain('strata: note: MTP loss weight and weight sharing are not in nemotron_h configs');
  });

  it('writes the nemotron_h config.json atomically with --out', () => {
    const out = join(work, 'nano-config.json');
    const result = strata('convert', NANO, '--to', 'hf', '--out', out);
    expect(result.code).toBe(0);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain(`strata: wrote ${out}`);
    const written = readFileSync(out, 'utf8');
    const fixture = parseJsonText(readFileSync(join(ROOT, NANO), 'utf8'));
    expect(written).toBe(formatHfConfig(hfConfigFromModel(importHfConfig(fixture).model)));
    expect(readdirSync(work).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });

  it('prints a valid Strata document that converts back to the same HF config', () => {
    const asStrata = strata('convert', NANO, '--to', 'strata', '--name', 'nano');
    expect(asStrata.code).toBe(0);
    const parsed = parseDocument(JSON.parse(asStrata.stdout));
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    expect(parsed.doc.model.name).toBe('nano');
    const docPath = join(work, 'nano.strata.json');
    writeFileSync(docPath, asStrata.stdout);
    const fromDoc = strata('convert', docPath, '--to', 'hf');
    const fromHf = strata('convert', NANO, '--to', 'hf');
    expect(fromDoc.code).toBe(0);
    expect(fromDoc.stdout).toBe(fromHf.stdout);
  });

  it('runs through npm run strata', () => {
    const result = spawnSync('npm', ['run', '--silent', 'strata', '--', 'convert', NANO, '--to', 'megatron'], { cwd: ROOT, encoding: 'utf8' });
    expect(result.status).toBe(0);
    expect(result.stdout.startsWith("--hybrid-layer-pattern 'MEMEM*E")).toBe(true);
  });

  it('reports malformed JSON with line and column', () => {
    expectBadInput(
      strata('convert', `${INVALID}/malformed.json`, '--to', 'hf'),
      `${INVALID}/malformed.json: malformed JSON at line 5 column 3: expected ',' or '}' in an object, found character "\\""`,
    );
  });

  it('reports an unknown model_type', () => {
    expectBadInput(
      strata('convert', `${INVALID}/unknown-model-type.json`, '--to', 'megatron'),
      `${INVALID}/unknown-model-type.json: model_type: "gpt2" is not supported (supported: nemotron_h, qwen3_moe, qwen3, llama, mixtral, mamba2)`,
    );
  });

  it('reports inconsistent sizes naming the field', () => {
    expectBadInput(
      strata('convert', `${INVALID}/layer-count-mismatch.json`, '--to', 'strata'),
      `${INVALID}/layer-count-mismatch.json: num_hidden_layers: 50 does not match the 52 layers of hybrid_override_pattern`,
    );
    const letter = strata('convert', `${INVALID}/bad-pattern-letter.json`, '--to', 'strata');
    expect(letter.code).toBe(2);
    expect(letter.stderr).toContain("hybrid_override_pattern: pattern \"MEMEX*E\": bad character 'X' at position 5");
  });

  it('reports Strata validation errors naming layer, kind and field', () => {
    const doc = documentFromModel({
      name: 'bad-heads',
      vocab_size: 512,
      d_model: 64,
      stack: [
        { kind: 'mlp', ffn: 64 },
        { kind: 'attention', heads: 4, kv_heads: 2, head_dim: 16 },
      ],
    });
    const raw = JSON.parse(JSON.stringify(doc));
    raw.model.stack[1].heads = 12;
    raw.model.stack[1].kv_heads = 5;
    const path = join(work, 'bad-heads.json');
    writeFileSync(path, JSON.stringify(raw));
    expectBadInput(strata('convert', path, '--to', 'megatron'), `${path}: layer 1 (attention): heads 12 is not a multiple of kv_heads 5`);
  });

  it('reports what it cannot express in the target format', () => {
    const result = strata('convert', 'tests/fixtures/hf-configs/qwen3-tiny.json', '--to', 'hf');
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(
      'strata: tests/fixtures/hf-configs/qwen3-tiny.json: cannot convert to hf: layer 0 (attention): rope cannot be expressed (nemotron_h attention has no position embedding)\n',
    );
  });

  it('rejects bad arguments', () => {
    expectBadInput(strata('convert', NANO), 'convert: --to is required (strata, megatron or hf)');
    expectBadInput(strata('convert', NANO, '--to', 'onnx'), 'convert: --to onnx is not one of strata, megatron, hf');
    expectBadInput(strata('convert', '--to', 'hf'), 'convert: expected one INPUT, got 0 (see strata convert --help)');
    expectBadInput(strata('convert', 'missing/config.json', '--to', 'hf'), 'missing/config.json: no such file');
    const unknownOption = strata('convert', NANO, '--to', 'hf', '--bogus');
    expect(unknownOption.code).toBe(2);
    expect(unknownOption.stderr).toMatch(/^strata: convert: Unknown option '--bogus'.*\n$/);
    expectBadInput(
      strata('convert', NANO, '--to', 'hf', '--out', join(work, 'no-such-dir', 'x.json')),
      `${join(work, 'no-such-dir', 'x.json')}: cannot write (ENOENT: folder ${join(work, 'no-such-dir')} does not exist)`,
    );
  });
});
