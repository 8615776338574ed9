// Tests of Megatron-LM flags built from Strata models: per-kind size flags, MTP and pipeline
// flags, shell quoting, and errors for designs whose layers of a kind disagree.
import { describe, expect, it } from 'vitest';
import { parseModel } from './document.js';
import { MegatronExportError, formatMegatronArgs, megatronArgsFromModel, shellQuote } from './megatron-args.js';
import { type PatternDefaults, modelFromPattern } from './megatron-pattern.js';

const DEFAULTS: PatternDefaults = {
  name: 'megatron-test',
  vocab_size: 1000,
  d_model: 256,
  tie_embeddings: true,
  blocks: {
    mamba2: { kind: 'mamba2', heads: 8, head_dim: 64, d_state: 64, groups: 2, conv_kernel: 4, chunk: 128 },
    attention: { kind: 'attention', heads: 8, kv_heads: 8, head_dim: 32, rope: { theta: 500000, fraction: 0.5 }, qk_norm: true },
    mlp: { kind: 'mlp', ffn: 1024, activation: 'swiglu' },
    moe: { kind: 'moe', experts: 16, top_k: 4, expert_ffn: 128, activation: 'swiglu', shared_experts: 2, shared_ffn: 256, router: { type: 'softmax', aux_loss_coeff: 0.01 } },
  },
};

const flagMap = (pattern: string, defaults: PatternDefaults = DEFAULTS) =>
  new Map(megatronArgsFromModel(parseModel(modelFromPattern(pattern, defaults))).flags.map(([f, v]) => [f, v ?? true]));

describe('megatronArgsFromModel', () => {
  it('writes the pattern, sizes and switches of each kind', () => {
    const flags = flagMap('M*-E|M*-E/*E/*E');
    expect(flags.get('--hybrid-layer-pattern')).toBe('M*-E|M*-E/*E/*E');
    expect(flags.get('--num-layers')).toBe('8');
    expect(flags.get('--pipeline-model-parallel-size')).toBe('2');
    expect(flags.get('--mtp-num-layers')).toBe('2');
    expect(flags.get('--mtp-loss-scaling-factor')).toBe('0.3');
    expect(flags.has('--untie-embeddings-and-output-weights')).toBe(false);
    expect(flags.has('--group-query-attention')).toBe(false);
    expect(flags.get('--position-embedding-type')).toBe('rope');
    expect(flags.get('--rotary-base')).toBe('500000');
    expect(flags.get('--rotary-percent')).toBe('0.5');
    expect(flags.has('--qk-layernorm')).toBe(true);
    expect(flags.get('--ffn-hidden-size')).toBe('1024');
    expect(flags.get('--moe-shared-expert-intermediate-size')).toBe('512');
    expect(flags.get('--moe-router-score-function')).toBe('softmax');
    expect(flags.has('--moe-router-enable-expert-bias')).toBe(false);
    expect(flags.get('--moe-aux-loss-coeff')).toBe('0.01');
    expect(flags.has('--swiglu')).toBe(true);
    expect(flags.get('--mamba-num-groups')).toBe('2');
  });

  it('rejects layers of one kind that disagree, and mixed activations', () => {
    const model = parseModel(modelFromPattern('MM', DEFAULTS));
    const edited = parseModel({
      ...model,
      stack: [{ ...DEFAULTS.blocks.mamba2! }, { ...DEFAULTS.blocks.mamba2!, d_state: 128 }],
    });
    expect(() => megatronArgsFromModel(edited)).toThrow(MegatronExportError);
    expect(() => megatronArgsFromModel(edited)).toThrow("layer 1 (mamba2): d_state 128 differs from layer 0 (mamba2)'s 64; Megatron-LM flags give every mamba2 layer the same parameters");
    const mixed = { ...DEFAULTS, blocks: { ...DEFAULTS.blocks, mlp: { kind: 'mlp' as const, ffn: 64, activation: 'relu2' as const } } };
    expect(() => megatronArgsFromModel(parseModel(modelFromPattern('-E', mixed)))).toThrow('different activations');
  });

  it('formats one flag per line with shell quoting', () => {
    const text = formatMegatronArgs({ pattern: 'M*', flags: [['--hybrid-layer-pattern', 'M*|M'], ['--num-layers', '2'], ['--swiglu']], notes: [] });
    expect(text).toBe("--hybrid-layer-pattern 'M*|M' \\\n--num-layers 2 \\\n--swiglu\n");
    expect(shellQuote("it's")).toBe("'it'\\''s'");
    expect(shellQuote('MMMM')).toBe('MMMM');
  });
});
