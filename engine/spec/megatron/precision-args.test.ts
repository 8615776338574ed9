// Tests of the precision policy as Megatron options: the Nemotron 3 recipe (NVFP4 global, last 15%
// BF16, MXFP8 out_proj and BF16 attention via the TE YAML), the FP8 and all-BF16 presets, per-layer
// matchers with stage-local indices, the pipeline ambiguity error, and the BF16-run cap per stage.
import { describe, expect, it } from 'vitest';
import { type ModelSpec, type PrecisionPolicy, parseModel } from '../document.js';
import { presetPolicy } from '../precision.js';
import { parseDocument } from '../validate.js';
import { templateDocument } from '../../../templates/index.js';
import { MegatronPrecisionError, megatronPrecision, recipeOfRow } from './precision-args.js';

function template(name: string): ModelSpec {
  const parsed = parseDocument(templateDocument(name));
  if (!parsed.ok) throw new Error(parsed.errors.map((e) => e.message).join('; '));
  return parsed.doc.model;
}

/** Eight layers M E M * M E M E, d 64. */
function small(precision: PrecisionPolicy): ModelSpec {
  const mamba = { kind: 'mamba2', heads: 4, head_dim: 16, d_state: 16, groups: 1, conv_kernel: 4, chunk: 64 } as const;
  const moe = { kind: 'moe', experts: 4, top_k: 2, expert_ffn: 32, router: { type: 'softmax' } } as const;
  const attention = { kind: 'attention', heads: 4, kv_heads: 2, head_dim: 16 } as const;
  return parseModel({ name: 'small', vocab_size: 256, d_model: 64, stack: [mamba, moe, mamba, attention, mamba, moe, mamba, moe], precision });
}

const flagMap = (flags: Array<[string, string?]>) => new Map(flags.map(([f, v]) => [f, v ?? true]));

describe('megatronPrecision', () => {
  it('exports the Nemotron 3 NVFP4 recipe of Nano as fp4 flags, the last 8 layers in BF16 and a TE YAML', () => {
    const out = megatronPrecision(template('nemotron-3-nano-30b-a3b'), [], 'cfg.yaml');
    const flags = flagMap(out.flags);
    expect(out.recipe).toBe('nvfp4');
    expect(flags.get('--bf16')).toBe(true);
    expect(flags.get('--fp4-format')).toBe('e2m1');
    expect(flags.get('--fp4-recipe')).toBe('nvfp4');
    // last_percent 15 of 52 layers: ceil(7.8) = 8.
    expect(flags.get('--num-layers-at-end-in-bf16')).toBe('8');
    expect(flags.get('--num-layers-at-start-in-bf16')).toBe('0');
    expect(flags.get('--te-precision-config-file')).toBe('cfg.yaml');
    expect(out.matchers.map((m) => [m.pattern, m.recipe])).toEqual([
      ['*decoder.layers.*.mixer.out_proj', 'mxfp8'],
      ['*decoder.layers.*.self_attention.linear_qkv', 'bf16'],
      ['*decoder.layers.*.self_attention.linear_proj', 'bf16'],
    ]);
    expect(out.yaml).toContain('training_recipe: {fp8_quantization_recipe: mxfp8}');
    expect(out.yaml).toContain('transformer_engine_config_type: TEQuantizationParams');
  });

  it('gives Super MTP modules their own BF16 matchers and keeps LatentMoE projections in BF16', () => {
    const out = megatronPrecision(template('nemotron-3-super-120b-a12b'), [], 'cfg.yaml');
    const patterns = out.matchers.map((m) => `${m.pattern}=${m.recipe}`);
    expect(patterns).toContain('*decoder.layers.*.mlp.fc1_latent_proj=bf16');
    expect(patterns).toContain('*decoder.layers.*.mlp.fc2_latent_proj=bf16');
    expect(patterns).toContain('*mtp.*self_attention.linear_qkv=bf16');
    expect(patterns).toContain('*mtp.*mlp.experts.linear_fc1=bf16');
    expect(out.matchers.findIndex((m) => m.pattern.startsWith('*mtp.'))).toBe(0);
    // 15% of 88 layers: ceil(13.2) = 14.
    expect(out.lastBf16).toBe(14);
  });

  it('maps the FP8 tensorwise preset to --fp8-format hybrid (E5M2 gradients) with a BF16 router note-free', () => {
    const out = megatronPrecision(small(presetPolicy('fp8-tensorwise')), [], 'cfg.yaml');
    const flags = flagMap(out.flags);
    expect(flags.get('--fp8-format')).toBe('hybrid');
    expect(flags.get('--fp8-recipe')).toBe('tensorwise');
    expect(out.yaml).toBeNull();
    expect(out.notes).toEqual([]);
  });

  it('writes only --bf16 for an all-BF16 policy and nothing for an all-fp32 one', () => {
    expect(megatronPrecision(small(presetPolicy('bf16')), [], 'x').flags).toEqual([['--bf16']]);
    const fp32 = megatronPrecision(small({ default: 'fp32', rules: [] }), [], 'x');
    expect(fp32.flags).toEqual([]);
    expect(fp32.notes.join(' ')).toMatch(/fp32/);
  });

  it('uses stage-local layer indices for per-layer overrides', () => {
    // Layer 2 (Mamba) in_proj MXFP8; with PP 2 cut at 4 it is layer 2 of stage 0, and layer 6
    // (local 2 of stage 1) is NVFP4 like the default: ambiguous. With the cut at 3 it is not.
    const policy: PrecisionPolicy = { default: 'nvfp4', rules: [{ select: { layers: { from: 2, to: 2 }, roles: ['mamba.in_proj'] }, format: 'mxfp8' }] };
    const unambiguous = megatronPrecision(small(policy), [3], 'x');
    expect(unambiguous.matchers).toEqual([{ name: 'layer2_mamba_in_proj_mxfp8', pattern: '*decoder.layers.2.mixer.in_proj', recipe: 'mxfp8' }]);
    expect(() => megatronPrecision(small(policy), [4], 'x')).toThrow(MegatronPrecisionError);
    expect(() => megatronPrecision(small(policy), [4], 'x')).toThrow(/layer 2 and layer 6 both are layer 2 of their pipeline stage/);
  });

  it('caps the trailing BF16 run at the last stage and covers the rest with matchers', () => {
    const policy: PrecisionPolicy = { default: 'nvfp4', rules: [{ select: { last_n: 3 }, format: 'bf16' }] };
    const out = megatronPrecision(small(policy), [6], 'x');
    expect(out.lastBf16).toBe(2);
    expect(out.notes.join(' ')).toMatch(/exceed a pipeline stage/);
    expect(out.matchers.some((m) => m.pattern === '*decoder.layers.5.mlp.experts.linear_fc1' && m.recipe === 'bf16')).toBe(true);
  });

  it('names rows whose passes ask for different recipes, and quantized routers Megatron keeps in BF16', () => {
    const policy: PrecisionPolicy = {
      default: 'nvfp4',
      rules: [
        { select: { passes: ['wgrad'] }, format: 'bf16' },
        { select: { roles: ['moe.router'] }, format: 'nvfp4' },
      ],
    };
    const notes = megatronPrecision(small(policy), [], 'x').notes.join(' ');
    expect(notes).toMatch(/one recipe per module, not per GEMM pass/);
    expect(notes).toMatch(/layer 1 moe.router resolves to nvfp4, but Megatron runs it in BF16/);
  });

  it('reads recipes from pass formats', () => {
    expect(recipeOfRow({ fprop: 'fp8_e4m3', dgrad: 'fp8_e5m2', wgrad: 'fp8_e5m2' })).toEqual({ recipe: 'fp8-hybrid', mixedPasses: false });
    expect(recipeOfRow({ fprop: 'fp8_e4m3', dgrad: 'fp8_e4m3', wgrad: 'fp8_e4m3' })).toEqual({ recipe: 'fp8-e4m3', mixedPasses: false });
    expect(recipeOfRow({ fprop: 'fp32', dgrad: 'bf16', wgrad: 'bf16' })).toEqual({ recipe: 'bf16', mixedPasses: false });
    expect(recipeOfRow({ fprop: 'nvfp4', dgrad: 'mxfp8', wgrad: 'nvfp4' })).toEqual({ recipe: 'nvfp4', mixedPasses: true });
  });
});
