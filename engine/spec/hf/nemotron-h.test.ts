// Tests of nemotron_h export: model -> HF config -> model is deep-equal for designs nemotron_h can
// express; HF config -> model -> HF config keeps every field the importer read; inexpressible
// designs fail naming layer and field; and transformers itself (python, hf_config_check.py) loads
// the exported configs, builds the models on the meta device and counts the published parameters.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { type ModelSpec, parseModel } from '../document.js';
import { type PatternDefaults, modelFromPattern, parsePattern } from '../megatron-pattern.js';
import { HfExportError, formatHfConfig, hfConfigFromModel, hfExportNotes, importHfConfig } from './index.js';
import { parseJsonText } from './json-text.js';

const FIXTURES = fileURLToPath(new URL('../../../tests/fixtures/hf-configs/', import.meta.url));
const CHECK_SCRIPT = fileURLToPath(new URL('./hf_config_check.py', import.meta.url));
const NEMOTRON_FIXTURES = ['nemotron-3-nano-30b-a3b.json', 'nemotron-3-super-120b-a12b.json', 'nemotron-h-8b.json'];

function fixture(name: string): Record<string, unknown> {
  return parseJsonText(readFileSync(join(FIXTURES, name), 'utf8')) as Record<string, unknown>;
}

const NEMOTRON_STYLE: PatternDefaults = {
  name: 'small-hybrid',
  vocab_size: 512,
  d_model: 128,
  norm_eps: 1e-5,
  max_position_embeddings: 2048,
  blocks: {
    mamba2: { kind: 'mamba2', heads: 8, head_dim: 16, d_state: 32, groups: 2, conv_kernel: 4, chunk: 64, dt_limit: [0, 5] },
    attention: { kind: 'attention', heads: 4, kv_heads: 2, head_dim: 32 },
    mlp: { kind: 'mlp', ffn: 256, activation: 'relu2' },
    moe: {
      kind: 'moe',
      experts: 8,
      top_k: 2,
      expert_ffn: 48,
      shared_experts: 1,
      shared_ffn: 96,
      latent: 64,
      router: { type: 'sigmoid', expert_bias: true, routed_scaling: 2.5, norm_topk: true },
    },
  },
};

function design(pattern: string, overrides: Partial<PatternDefaults> = {}): ModelSpec {
  return parseModel(modelFromPattern(pattern, { ...NEMOTRON_STYLE, ...overrides }));
}

function exportError(model: ModelSpec): HfExportError {
  try {
    hfConfigFromModel(model);
  } catch (error) {
    if (error instanceof HfExportError) return error;
    throw error;
  }
  throw new Error('expected an HfExportError');
}

/** transformers' layer names in hub form, for comparing layer lists written either way. */
const HUB_NAME: Record<string, string> = { linear_attention: 'mamba', full_attention: 'attention' };
const hubNames = (list: unknown) => (list as string[]).map((n) => HUB_NAME[n] ?? n);

describe('model -> nemotron_h config -> model', () => {
  it.each([
    ['hybrid MoE with LatentMoE', 'MEMEM*EMEMEM*E', {}],
    ['dense hybrid', 'M-M-M*-M-', {}],
    ['MTP depth 3', 'MEM*E/*E/*E/*E', {}],
    ['no attention, tied, fp clamp none', 'MEME', { tie_embeddings: true, blocks: { ...NEMOTRON_STYLE.blocks, mamba2: { ...NEMOTRON_STYLE.blocks.mamba2!, dt_limit: null } } }],
    ['pure attention + MoE', '*E*E', {}],
  ] as const)('is deep-equal: %s', (_label, pattern, overrides) => {
    const model = design(pattern, overrides as Partial<PatternDefaults>);
    const config = parseJsonText(formatHfConfig(hfConfigFromModel(model))) as Record<string, unknown>;
    const back = importHfConfig(config, { name: model.name }).model;
    expect(back).toEqual(model);
  });

  it.each(NEMOTRON_FIXTURES)('is deep-equal after importing %s', (name) => {
    const model = importHfConfig(fixture(name), { file: name }).model;
    const back = importHfConfig(hfConfigFromModel(model), { name: model.name }).model;
    expect(back).toEqual(model);
  });
});

describe('nemotron_h config -> model -> config', () => {
  it.each(NEMOTRON_FIXTURES)('keeps every field the importer read: %s', (name) => {
    const original = fixture(name);
    const { model, understood } = importHfConfig(original, { file: name });
    const exported = hfConfigFromModel(model);
    expect(understood.size).toBeGreaterThan(20);
    for (const field of understood) {
      const value = original[field];
      if (value === undefined) continue; // a default the importer assumed
      if (field === 'time_step_limit' && (value as number[])[1] === Infinity) {
        // (0, inf) is HF's default "no clamp"; plain JSON cannot spell it, so export leaves it out
        expect(exported[field]).toBeUndefined();
        continue;
      }
      if (field.endsWith('layers_block_type')) {
        expect(hubNames(exported[field]), field).toEqual(hubNames(value));
        continue;
      }
      expect(exported[field], field).toEqual(value);
    }
    // The layer list is written both ways, whichever the original used.
    expect(exported.hybrid_override_pattern).toBe(
      hubNames(exported.layers_block_type).map((n) => ({ mamba: 'M', attention: '*', moe: 'E', mlp: '-' })[n]).join(''),
    );
  });
});

describe('formatHfConfig', () => {
  it('writes float fields with a decimal point and keeps JSON.stringify layout otherwise', () => {
    const config = { model_type: 'nemotron_h', time_step_max: 1, time_step_limit: [0, 5], hidden_size: 64, nested: { time_step_min: 1 } };
    const text = formatHfConfig(config);
    expect(text).toContain('"time_step_max": 1.0');
    expect(text).toContain('    0.0,\n    5.0\n');
    expect(text).toContain('"hidden_size": 64,');
    expect(text).toContain('"time_step_min": 1\n');
    expect(parseJsonText(text)).toEqual(config);
    const plain = { model_type: 'x', list: [1, 'a', null, true], empty: {}, none: [] };
    expect(formatHfConfig(plain)).toBe(`${JSON.stringify(plain, null, 2)}\n`);
  });
});

describe('inexpressible designs', () => {
  const base = NEMOTRON_STYLE.blocks;
  it.each([
    ['layer 3 (moe): expert_ffn 99', () => {
      const m = design('MEM*E');
      const layers = m.stack.flatMap((i) => (i.kind === 'repeat' ? [] : [i]));
      const last = layers[layers.length - 1]!;
      if (last.kind === 'moe') last.expert_ffn = 99;
      return m;
    }, 'expert_ffn'],
    ['layer 1 (attention): rope', () => design('M*', { blocks: { ...base, attention: { ...base.attention!, rope: { theta: 10000 } } } }), 'rope'],
    ['layer 1 (mlp): activation swiglu', () => design('M-', { blocks: { ...base, mlp: { kind: 'mlp', ffn: 64, activation: 'swiglu' } } }), 'activation'],
    ['layer 1 (moe): router.type softmax', () => design('ME', { blocks: { ...base, moe: { ...base.moe!, router: { type: 'softmax' } } } }), 'router.type'],
    ['layer 1 (moe): shared_experts 0', () => design('ME', { blocks: { ...base, moe: { ...base.moe!, shared_experts: 0, shared_ffn: 0 } } }), 'shared_experts'],
    ['layer 0 (mamba2): norm_before_gate', () => design('M', { blocks: { ...base, mamba2: { ...base.mamba2!, norm_before_gate: true } } }), 'norm_before_gate'],
  ] as const)('fails naming %s', (prefix, build, field) => {
    const model = build();
    if (prefix.startsWith('layer 3')) {
      // the differing layer is compared with the first moe layer
      const error = exportError(model);
      expect(error.message).toContain("layer 4 (moe): expert_ffn 99 differs from layer 1 (moe)'s 48");
      expect(error.field).toBe(field);
      return;
    }
    const error = exportError(model);
    expect(error.message.startsWith(prefix)).toBe(true);
    expect(error.field).toBe(field);
  });

  it('lists what the config leaves out', () => {
    const model = parseModel({
      ...modelFromPattern('MM|*E/*E', { ...NEMOTRON_STYLE, mtp: { loss_weight: 0.5 } }),
      precision: { default: 'bf16', rules: [{ select: { kinds: ['mamba2'] }, format: 'nvfp4' }] },
    });
    const notes = hfExportNotes(model).join('\n');
    expect(notes).toContain('precision policy');
    expect(notes).toContain('pipeline cuts at layers 2');
    expect(notes).toContain('MTP loss_weight');
    expect(hfExportNotes(design('ME'))).toEqual([]);
  });
});

describe('transformers accepts the exported configs', () => {
  const work = mkdtempSync(join(tmpdir(), 'strata-hf-check-'));
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  function writeConfig(label: string, config: Record<string, unknown>): string {
    const folder = join(work, label);
    mkdirSync(folder, { recursive: true });
    writeFileSync(join(folder, 'config.json'), formatHfConfig(config));
    return folder;
  }

  it('loads them with NemotronHConfig, builds the models and counts the published parameters', () => {
    const exported = NEMOTRON_FIXTURES.map((name) => {
      const model = importHfConfig(fixture(name), { file: name }).model;
      return { name, model, folder: writeConfig(name.replace('.json', ''), hfConfigFromModel(model)) };
    });
    const small = design('MEM*E-/*E/*E');
    const smallFolder = writeConfig('small', hfConfigFromModel(small));
    // Fixtures of other families are checked as written (their configs are inputs, not exports).
    const qwenFolder = writeConfig('qwen3-30b-a3b', fixture('qwen3-30b-a3b.json'));
    const mambaFolder = writeConfig('mamba2-2.7b', fixture('mamba2-2.7b.json'));
    const output = execFileSync('python3', [CHECK_SCRIPT, ...exported.map((e) => e.folder), smallFolder, qwenFolder, mambaFolder], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const summaries = JSON.parse(output) as Array<Record<string, unknown>>;
    const byFolder = new Map(summaries.map((s) => [s.folder as string, s]));

    // Published exact totals (MTP excluded), shared/reference/published-models.md.
    const published: Record<string, number> = {
      'nemotron-3-nano-30b-a3b.json': 31.578e9,
      'nemotron-3-super-120b-a12b.json': 120.669e9,
      'nemotron-h-8b.json': 8.101e9,
    };
    for (const { name, model, folder } of exported) {
      const s = byFolder.get(folder)!;
      expect(s.config_class).toBe('NemotronHConfig');
      expect(s.model_class).toBe('NemotronHForCausalLM');
      const pattern = fixture(name).hybrid_override_pattern as string | undefined;
      const kinds = pattern ? parsePattern(pattern).main : (fixture(name).layers_block_type as string[]);
      expect((s.layers_block_type as string[]).length).toBe(kinds.length);
      expect(s.num_nextn_predict_layers).toBe(model.mtp?.depth ?? 0);
      expect(Math.abs((s.parameters as number) - published[name]!)).toBeLessThan(0.0005e9);
    }
    expect(Math.abs((byFolder.get(qwenFolder)!.parameters as number) - 30.532e9)).toBeLessThan(0.0005e9);
    expect(Math.abs((byFolder.get(mambaFolder)!.parameters as number) - 2.703e9)).toBeLessThan(0.0005e9);

    // The small design: shapes transformers built from the exported fields.
    const s = byFolder.get(smallFolder)!;
    expect(hubNames(s.layers_block_type)).toEqual(['mamba', 'moe', 'mamba', 'attention', 'moe', 'mlp']);
    expect(hubNames(s.mtp_layers_block_type)).toEqual(['attention', 'moe']);
    expect(s.num_nextn_predict_layers).toBe(2);
    const shapes = s.mixer_shapes as Record<string, Record<string, number[]>>;
    const [H, P, N, G, d] = [8, 16, 32, 2, 128];
    expect(shapes.linear_attention!['in_proj.weight']).toEqual([2 * H * P + 2 * G * N + H, d]);
    expect(shapes.linear_attention!['conv1d.weight']).toEqual([H * P + 2 * G * N, 1, 4]);
    expect(shapes.full_attention!['k_proj.weight']).toEqual([2 * 32, d]);
    expect(shapes.moe!['experts.up_proj']).toEqual([8, 48, 64]);
    expect(shapes.moe!['fc1_latent_proj.weight']).toEqual([64, d]);
    expect(shapes.moe!['shared_experts.up_proj.weight']).toEqual([96, d]);
    expect(shapes.mlp!['up_proj.weight']).toEqual([256, d]);
  });
});
