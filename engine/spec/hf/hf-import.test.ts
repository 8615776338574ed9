// Tests of HF config.json import for every supported model_type, against the hand-written fixtures
// in tests/fixtures/hf-configs (public facts of published models), and of the error messages for
// bad configs (they name the file and the field).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { type Block, type ModelSpec, flattenStack } from '../document.js';
import { patternFromModel } from '../megatron-pattern.js';
import { HfConfigError, importHfConfig, isHfConfig, modelNameFromFile } from './index.js';
import { JsonSyntaxError, parseJsonText } from './json-text.js';

const FIXTURES = fileURLToPath(new URL('../../../tests/fixtures/hf-configs/', import.meta.url));

function fixture(name: string): Record<string, unknown> {
  return parseJsonText(readFileSync(`${FIXTURES}${name}`, 'utf8')) as Record<string, unknown>;
}

function load(name: string): ModelSpec {
  return importHfConfig(fixture(name), { file: name }).model;
}

function blocksOf(model: ModelSpec, kind: Block['kind']): Block[] {
  return flattenStack(model.stack).map((l) => l.block).filter((b) => b.kind === kind);
}

function count(model: ModelSpec): Record<string, number> {
  const out: Record<string, number> = {};
  for (const l of flattenStack(model.stack)) out[l.block.kind] = (out[l.block.kind] ?? 0) + 1;
  return out;
}

function importError(config: unknown, file = 'bad.json'): HfConfigError {
  try {
    importHfConfig(config, { file });
  } catch (error) {
    if (error instanceof HfConfigError) return error;
    throw error;
  }
  throw new Error('expected an HfConfigError');
}

describe('nemotron_h import', () => {
  it('reads Nemotron 3 Nano (hybrid_override_pattern, Python Infinity in time_step_limit)', () => {
    const nano = load('nemotron-3-nano-30b-a3b.json');
    expect(nano.name).toBe('nemotron-3-nano-30b-a3b');
    expect(count(nano)).toEqual({ mamba2: 23, moe: 23, attention: 6 });
    expect(patternFromModel(nano)).toBe('MEMEM*EMEMEM*EMEMEM*EMEMEM*EMEMEM*EMEMEMEM*EMEMEMEME');
    expect(nano).toMatchObject({ d_model: 2688, vocab_size: 131072, tie_embeddings: false, max_position_embeddings: 262144, norm_eps: 1e-5, mtp: null });
    expect(blocksOf(nano, 'mamba2')[0]).toMatchObject({ heads: 64, head_dim: 64, d_state: 128, groups: 8, conv_kernel: 4, chunk: 128, dt_limit: null, norm_before_gate: false });
    expect(blocksOf(nano, 'attention')[0]).toMatchObject({ heads: 32, kv_heads: 2, head_dim: 128, rope: null, qk_norm: false });
    expect(blocksOf(nano, 'moe')[0]).toMatchObject({
      experts: 128,
      top_k: 6,
      expert_ffn: 1856,
      shared_experts: 1,
      shared_ffn: 3712,
      activation: 'relu2',
      latent: null,
      router: { type: 'sigmoid', expert_bias: true, norm_topk: true, routed_scaling: 2.5 },
    });
  });

  it('reads Nemotron 3 Super (layers_block_type list, LatentMoE, MTP)', () => {
    const sup = load('nemotron-3-super-120b-a12b.json');
    expect(count(sup)).toEqual({ mamba2: 40, moe: 40, attention: 8 });
    expect(blocksOf(sup, 'moe')[0]).toMatchObject({ experts: 512, top_k: 22, expert_ffn: 2688, shared_ffn: 5376, latent: 1024 });
    expect(sup.mtp).toMatchObject({ depth: 2, loss_weight: 0.3, shared_weights: true });
    expect(sup.mtp!.blocks.map((b) => b.kind)).toEqual(['attention', 'moe']);
    expect(sup.mtp!.blocks[1]).toEqual(blocksOf(sup, 'moe')[0]);
  });

  it('reads Nemotron-H 8B (dense relu2 MLPs)', () => {
    const h = load('nemotron-h-8b.json');
    expect(count(h)).toEqual({ mamba2: 24, mlp: 24, attention: 4 });
    expect(blocksOf(h, 'mlp')[0]).toMatchObject({ ffn: 21504, activation: 'relu2', bias: false });
    expect(blocksOf(h, 'attention')[0]).toMatchObject({ heads: 32, kv_heads: 8 });
  });

  it('accepts transformers 5 layer names and legacy mamba_* aliases', () => {
    const model = importHfConfig({
      model_type: 'nemotron_h',
      hidden_size: 64,
      vocab_size: 300,
      layers_block_type: ['linear_attention', 'full_attention', 'mlp'],
      mamba_num_heads: 4,
      mamba_head_dim: 16,
      mamba_n_groups: 2,
      mamba_d_conv: 3,
      mamba_chunk_size: 64,
      num_attention_heads: 4,
      num_key_value_heads: 4,
      head_dim: 16,
      intermediate_size: 96,
    }).model;
    expect(patternFromModel(model)).toBe('M*-');
    expect(blocksOf(model, 'mamba2')[0]).toMatchObject({ groups: 2, conv_kernel: 3, chunk: 64 });
  });

  it('names the field of inconsistent or unsupported settings', () => {
    const nano = fixture('nemotron-3-nano-30b-a3b.json');
    expect(importError({ ...nano, num_hidden_layers: 51 }).message).toBe(
      'bad.json: num_hidden_layers: 51 does not match the 52 layers of hybrid_override_pattern',
    );
    expect(importError({ ...nano, layers_block_type: ['mamba', 'moe'] }).field).toBe('layers_block_type');
    expect(importError({ ...nano, hybrid_override_pattern: 'MEQ' }).message).toContain("hybrid_override_pattern: pattern \"MEQ\": bad character 'Q' at position 3");
    expect(importError({ ...nano, mlp_hidden_act: 'silu' }).message).toContain('bad.json: mlp_hidden_act: "silu" is not supported');
    expect(importError({ ...nano, n_group: 8, topk_group: 4 }).field).toBe('topk_group');
    expect(importError({ ...nano, mamba_num_heads: '64' }).message).toBe('bad.json: mamba_num_heads: expected a positive integer, got "64"');
    expect(importError({ ...nano, num_key_value_heads: 5 }).message).toContain('heads 32 is not a multiple of kv_heads 5');
    const { hybrid_override_pattern: _p, ...noLayers } = nano;
    expect(importError(noLayers).field).toBe('layers_block_type');
  });
});

describe('other families', () => {
  it('reads Qwen3-30B-A3B as 48 x (attention with QK-norm and RoPE, softmax MoE)', () => {
    const q = load('qwen3-30b-a3b.json');
    expect(count(q)).toEqual({ attention: 48, moe: 48 });
    expect(q.stack).toHaveLength(1);
    expect(q.stack[0]).toMatchObject({ kind: 'repeat', count: 48 });
    expect(blocksOf(q, 'attention')[0]).toMatchObject({ heads: 32, kv_heads: 4, head_dim: 128, qk_norm: true, rope: { theta: 1e6, fraction: 1 } });
    expect(blocksOf(q, 'moe')[0]).toMatchObject({
      experts: 128,
      top_k: 8,
      expert_ffn: 768,
      activation: 'swiglu',
      shared_experts: 0,
      router: { type: 'softmax', expert_bias: false, norm_topk: true, aux_loss_coeff: 0.001 },
    });
    expect(q).toMatchObject({ vocab_size: 151936, d_model: 2048, norm_eps: 1e-6, tie_embeddings: false });
  });

  it('honors qwen3_moe decoder_sparse_step and mlp_only_layers', () => {
    const base = fixture('qwen3-30b-a3b.json');
    const q = importHfConfig({ ...base, num_hidden_layers: 4, decoder_sparse_step: 2, mlp_only_layers: [3] }).model;
    expect(patternFromModel(q)).toBe('*-*E*-*-');
    expect(blocksOf(q, 'mlp')[0]).toMatchObject({ ffn: 6144, activation: 'swiglu' });
    expect(importError({ ...base, mlp_only_layers: [60] }).field).toBe('mlp_only_layers');
  });

  it('reads Mamba2-2.7B', () => {
    const m = load('mamba2-2.7b.json');
    expect(count(m)).toEqual({ mamba2: 64 });
    expect(blocksOf(m, 'mamba2')[0]).toMatchObject({ heads: 80, head_dim: 64, d_state: 128, groups: 1, chunk: 256 });
    expect(m).toMatchObject({ d_model: 2560, vocab_size: 50288, tie_embeddings: true });
    expect(importError({ ...fixture('mamba2-2.7b.json'), num_heads: 64 }).message).toContain(
      'bad.json: num_heads: 64 heads x head_dim 64 = 4096 does not equal expand 2 x hidden_size 2560 = 5120',
    );
  });

  it('reads llama, qwen3 and mixtral', () => {
    const llama = load('llama-tiny.json');
    expect(patternFromModel(llama)).toBe('*-*-*-*-');
    expect(blocksOf(llama, 'attention')[0]).toMatchObject({ heads: 8, kv_heads: 4, head_dim: 32, rope: { theta: 10000 }, qk_norm: false });
    expect(blocksOf(llama, 'mlp')[0]).toMatchObject({ ffn: 688, activation: 'swiglu' });
    expect(llama.tie_embeddings).toBe(true);
    const qwen = load('qwen3-tiny.json');
    expect(blocksOf(qwen, 'attention')[0]).toMatchObject({ head_dim: 64, qk_norm: true, rope: { theta: 1e6 } });
    const mixtral = load('mixtral-tiny.json');
    expect(patternFromModel(mixtral)).toBe('*E*E*E*E');
    expect(blocksOf(mixtral, 'moe')[0]).toMatchObject({ experts: 8, top_k: 2, expert_ffn: 1024, router: { type: 'softmax', norm_topk: true, aux_loss_coeff: 0.02 } });
    expect(importError({ ...fixture('llama-tiny.json'), hidden_act: 'gelu' }).field).toBe('hidden_act');
  });

  it('passes validation warnings on as notes', () => {
    const nano = fixture('nemotron-3-nano-30b-a3b.json');
    const result = importHfConfig({ ...nano, moe_latent_size: 4096 });
    expect(result.notes.join(' ')).toContain('latent 4096 is not smaller than d_model 2688');
  });

  it('notes RoPE scaling it cannot model', () => {
    const result = importHfConfig({ ...fixture('llama-tiny.json'), rope_parameters: { rope_theta: 5e5, rope_type: 'llama3', factor: 8 } });
    expect(result.notes.join(' ')).toContain('rope_type "llama3" is not modeled');
    expect(blocksOf(result.model, 'attention')[0]).toMatchObject({ rope: { theta: 5e5 } });
  });
});

describe('dispatch', () => {
  it('rejects unknown and missing model_type, naming the file', () => {
    expect(importError({ model_type: 'gpt2' }, 'x/config.json').message).toBe(
      'x/config.json: model_type: "gpt2" is not supported (supported: nemotron_h, qwen3_moe, qwen3, llama, mixtral, mamba2)',
    );
    expect(importError({ hidden_size: 3 }).field).toBe('model_type');
    expect(importError([1, 2]).message).toBe('bad.json: expected a JSON object');
  });

  it('recognizes HF configs and names models after their files', () => {
    expect(isHfConfig({ model_type: 'llama' })).toBe(true);
    expect(isHfConfig({ format: 'strata', model_type: 'x' })).toBe(false);
    expect(isHfConfig({ format: 'strata', version: 2 })).toBe(false);
    expect(modelNameFromFile('models/nano/config.json', 'nemotron_h')).toBe('nano');
    expect(modelNameFromFile('qwen.json', 'qwen3')).toBe('qwen');
    expect(modelNameFromFile('config.json', 'qwen3')).toBe('qwen3');
    expect(modelNameFromFile(undefined, 'llama')).toBe('llama');
  });
});

describe('parseJsonText', () => {
  it('parses standard JSON and Python non-finite tokens', () => {
    expect(parseJsonText('{"a": [1, 2.5e3, "x\\"y"], "b": null}')).toEqual({ a: [1, 2500, 'x"y'], b: null });
    expect(parseJsonText('[0.0, Infinity, -Infinity]')).toEqual([0, Infinity, -Infinity]);
    expect(Number.isNaN((parseJsonText('{"v": NaN}') as { v: number }).v)).toBe(true);
  });

  it.each([
    ['{\n  "a": 1\n  "b": 2\n}', 3, 3],
    ['{"a": }', 1, 7],
    ['[1, 2', 1, 6],
    ['{"a": 1} x', 1, 10],
    ['{"a": "unterminated\n"}', 1, 20],
    ['{"x": Infinit}', 1, 7],
  ])('reports line and column of %j', (text, line, column) => {
    try {
      parseJsonText(text);
    } catch (error) {
      expect(error).toBeInstanceOf(JsonSyntaxError);
      expect([(error as JsonSyntaxError).line, (error as JsonSyntaxError).column]).toEqual([line, column]);
      return;
    }
    throw new Error('expected a JsonSyntaxError');
  });
});
