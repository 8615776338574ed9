// Tests of the memory figures: format bytes with block scales, weight bytes by resolved precision,
// training state, activations, and the KV cache / Mamba state of the published designs.
import { describe, expect, it } from 'vitest';
import { parseModel } from '../document.js';
import { presetPolicy } from '../precision.js';
import { parseDocument } from '../validate.js';
import { templateDocument } from '../../../templates/index.js';
import { countMemory, formatBytes } from './memory.js';
import { smallModel } from './testing-models.js';

function template(name: string) {
  const parsed = parseDocument(templateDocument(name));
  if (!parsed.ok) throw new Error(`${name} does not parse`);
  return parsed.doc.model;
}

const KiB = 1024;
const MiB = 1024 * 1024;

describe('memory', () => {
  it('prices formats with their block and tensor scales', () => {
    expect(formatBytes('fp32', 10)).toBe(40);
    expect(formatBytes('bf16', 10)).toBe(20);
    expect(formatBytes('fp8_e4m3', 10)).toBe(14); // 1 byte each + fp32 tensor scale
    expect(formatBytes('mxfp8', 64)).toBe(66); // + one E8M0 byte per 32
    expect(formatBytes('nvfp4', 32)).toBe(16 + 2 + 4); // half a byte each + E4M3 per 16 + fp32 tensor scale
  });

  it('prices weights by the resolved precision, keeping embedding, head and norms in bf16', () => {
    const model = parseModel({
      name: 'm',
      vocab_size: 32,
      d_model: 16,
      stack: [{ kind: 'mlp', ffn: 32 }],
      precision: { default: 'nvfp4', rules: [] },
    });
    const m = countMemory(model, { context: 4, batch: 1 });
    // fc1, fc2: 512 elements each in nvfp4 = 256 + 32 + 4; norms 2 x 16 bf16; embedding and head 512 bf16 each
    expect(m.weights.total_bytes).toBe(2 * 292 + 64 + 2048);
    expect(m.weights.by_format.nvfp4).toEqual({ params: 1024, bytes: 584 });
    expect(m.weights.embedding_bytes).toBe(1024);
    expect(m.layers[0]!.formats).toEqual({ 'mlp.fc1': 'nvfp4', 'mlp.fc2': 'nvfp4' });
    // 16 bytes per parameter for fp32 master, gradient, m and v
    expect(m.training.params).toBe(2080);
    expect(m.training.master_grad_optimizer_bytes).toBe(16 * 2080);
    // activations per token: block input 16 + normed 16 + fc1 out 32 + act 32 (bf16) + head 2*16 bf16 + 32 fp32 logits
    expect(m.training.activation_bytes_per_token).toBe(96 * 2 + 64 + 128);
    expect(m.training.activation_bytes).toBe(4 * 384);
  });

  it('gives every routed expert its own tensor scale', () => {
    const model = smallModel({ stack: [{ kind: 'moe', experts: 4, top_k: 1, expert_ffn: 8, router: { type: 'softmax' } }], precision: { default: 'fp8_e4m3', rules: [] } });
    const m = countMemory(model, { context: 4, batch: 1 });
    // router 32 + 4 experts x 2 matrices x 64 elements, each tensor + 4 bytes; norm 8 bf16
    expect(m.layers[0]!.weight_bytes).toBe(36 + 8 * 68 + 16);
  });

  it('Nano: 6 KiB of KV cache per token and about 46.8 MiB of Mamba state per sequence', () => {
    const m = countMemory(template('nemotron-3-nano-30b-a3b'), { context: 8192, batch: 1 });
    expect(m.kv_cache_bytes_per_token).toBe(6 * KiB);
    // 23 layers x (64*64*128 fp32 SSM state + 3 x (4096 + 2*8*128) bf16 conv state)
    expect(m.state_bytes_per_sequence).toBe(23 * (64 * 64 * 128 * 4 + 3 * 6144 * 2));
    expect(m.state_bytes_per_sequence / MiB).toBeCloseTo(46.8, 1);
    const at1M = m.at_context.find((c) => c.context === 1024 * 1024)!;
    expect(at1M.kv_cache_bytes).toBe(6 * KiB * 1024 * 1024);
    expect(at1M.state_bytes).toBe(m.state_bytes_per_sequence);
  });

  it('Qwen3-30B-A3B: 96 KiB of KV cache per token and no state', () => {
    const m = countMemory(template('qwen3-30b-a3b'), { context: 8192, batch: 1 });
    expect(m.kv_cache_bytes_per_token).toBe(96 * KiB);
    expect(m.state_bytes_per_sequence).toBe(0);
  });

  it('the NVFP4 recipe makes Nano weights smaller than BF16 but larger than half', () => {
    const model = template('nemotron-3-nano-30b-a3b');
    const recipe = countMemory(model, { context: 8192, batch: 1 }).weights.total_bytes;
    const bf16 = countMemory({ ...model, precision: presetPolicy('bf16') }, { context: 8192, batch: 1 }).weights.total_bytes;
    expect(bf16).toBeCloseTo(2 * 31.578e9, -8);
    expect(recipe).toBeLessThan(0.5 * bf16);
    expect(recipe).toBeGreaterThan(0.25 * bf16);
  });

  it('caps sliding-window layers at their window', () => {
    const model = parseModel({ name: 'w', vocab_size: 16, d_model: 16, stack: [{ kind: 'attention', heads: 2, kv_heads: 1, head_dim: 8, sliding_window: 100 }] });
    const m = countMemory(model, { context: 8, batch: 2, contexts: [50, 1000] });
    expect(m.kv_cache_bytes_per_token).toBe(2 * 8 * 2);
    expect(m.at_context.map((c) => c.kv_cache_bytes)).toEqual([50 * 32 * 2, 100 * 32 * 2]);
  });

  it('counts MTP weights apart and in the training state', () => {
    const mtp = { kind: 'mtp' as const, depth: 2, blocks: [{ kind: 'mlp' as const, ffn: 4 }] };
    const without = countMemory(smallModel(), { context: 4, batch: 1 });
    const withMtp = countMemory(smallModel({ mtp }), { context: 4, batch: 1 });
    expect(withMtp.weights.total_bytes).toBe(without.weights.total_bytes);
    expect(withMtp.weights.mtp_bytes).toBe(224 * 2); // all bf16
    expect(withMtp.training.params - without.training.params).toBe(224);
  });
});
