// Hugging Face `mamba2` configs (state-spaces Mamba-2 checkpoints, transformers' Mamba2Config) to
// Strata models: `num_hidden_layers` Mamba-2 blocks and nothing else. transformers sizes the mixer
// as d_inner = expand * hidden_size with `num_heads` heads of `head_dim`, so those must agree.
//
// Not here: nemotron_h (whose Mamba layers are read in nemotron-h.ts), dispatch (index.ts).
import { type Block, type Mamba2Block } from '../document.js';
import { compressBlocks } from '../megatron-pattern.js';
import { ConfigReader, type HfConfig } from './config-reader.js';
import { type ImportResult } from './nemotron-h.js';

export function importMamba2(config: HfConfig, file: string, name: string): ImportResult {
  const r: ConfigReader = new ConfigReader(config, file);
  const notes: string[] = [];
  const hidden = r.int('hidden_size');
  const heads = r.int('num_heads', 128);
  const headDim = r.int('head_dim', 64);
  const expand = r.number('expand', 2, { positive: true });
  if (heads * headDim !== expand * hidden)
    r.fail('num_heads', `${heads} heads x head_dim ${headDim} = ${heads * headDim} does not equal expand ${expand} x hidden_size ${hidden} = ${expand * hidden}`);
  const act = r.string('hidden_act', 'silu');
  if (act !== 'silu') r.fail('hidden_act', `"${act}" is not supported (Strata's Mamba-2 uses silu)`);
  const limit = r.numberList('time_step_limit');
  let dtLimit: [number, number] | null = null;
  if (limit) {
    if (limit.length !== 2) r.fail('time_step_limit', `expected [min, max], got ${limit.length} values`);
    const [lo, hi] = limit as [number, number];
    if (hi !== Number.POSITIVE_INFINITY) dtLimit = [lo, hi];
    else if (lo !== 0) r.fail('time_step_limit', `[${lo}, Infinity]: a lower clamp without an upper one is not supported`);
  }
  const block: Mamba2Block = {
    kind: 'mamba2',
    heads,
    head_dim: headDim,
    d_state: r.int('state_size', 128),
    groups: r.int('n_groups', 8),
    conv_kernel: r.int('conv_kernel', 4),
    conv_bias: r.bool('use_conv_bias', true),
    chunk: r.int('chunk_size', 256),
    bias: r.bool('use_bias', false),
    dt_min: r.number('time_step_min', 0.001, { positive: true }),
    dt_max: r.number('time_step_max', 0.1, { positive: true }),
    dt_init_floor: r.number('time_step_floor', 1e-4, { positive: true }),
    dt_limit: dtLimit,
    norm_before_gate: false, // transformers' Mamba2 gates, then normalizes
  };
  const n = r.int('num_hidden_layers');
  const blocks: Block[] = Array.from({ length: n }, () => structuredClone(block));
  return {
    model: {
      name,
      vocab_size: r.int('vocab_size'),
      d_model: hidden,
      norm_eps: r.number('layer_norm_epsilon', 1e-5, { positive: true }),
      tie_embeddings: r.bool('tie_word_embeddings', false),
      init_std: r.number('initializer_range', 0.1, { positive: true }),
      stack: compressBlocks(blocks),
      pipeline_cuts: [],
      mtp: null,
    },
    notes,
    understood: r.understood,
  };
}
