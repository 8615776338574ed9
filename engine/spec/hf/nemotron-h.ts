// Hugging Face `nemotron_h` configs (NVIDIA Nemotron-H and Nemotron 3) to and from Strata models.
// Field names and defaults follow transformers' NemotronHConfig (configuration_nemotron_h.py) and
// what modeling_nemotron_h.py reads:
//   - layers come from `layers_block_type` (hub names mamba/attention/moe/mlp, or transformers 5
//     names linear_attention/full_attention) or the older `hybrid_override_pattern` string; MTP
//     layers from `mtp_layers_block_type` or `mtp_hybrid_override_pattern`, applied
//     `num_nextn_predict_layers` times (Strata `mtp.depth`);
//   - one parameter set per kind: every Mamba, attention, MLP and MoE layer (MTP layers included)
//     is built from the same fields, so a design exports only when its layers of a kind agree;
//   - attention has no RoPE and no QK-norm; MLPs and experts are not gated (`mlp_hidden_act`
//     relu2 or gelu); Mamba gates before its grouped RMSNorm and uses SiLU;
//   - the MoE router is sigmoid with a selection bias (e_score_correction_bias), top-k weights
//     optionally renormalized (`norm_topk_prob`) and scaled (`routed_scaling_factor`), with shared
//     experts of width `moe_shared_expert_intermediate_size` and LatentMoE via `moe_latent_size`;
//     group-limited routing (n_group/topk_group) is accepted only when it selects like plain top-k.
// Missing fields take NemotronHConfig's defaults. Export writes the hub layer names plus
// `hybrid_override_pattern` (read by older transformers), and omits `time_step_limit` when there is
// no clamp (HF's default (0, inf), which plain JSON cannot spell).
//
// Not here: the other families (transformer-families.ts, mamba2.ts), dispatch (index.ts).
import {
  type Activation,
  type AttentionBlock,
  type Block,
  type BlockKind,
  type MlpBlock,
  type MoeBlock,
  type Mamba2Block,
  type ModelSpec,
  type ModelSpecInput,
  flattenStack,
  parseModel,
} from '../document.js';
import { compressBlocks, deepEqualJson, formatPattern, parsePattern, PatternError } from '../megatron-pattern.js';
import { ConfigReader, type HfConfig } from './config-reader.js';

/** transformers' names of layer types, by Strata kind (hub style, also accepted by transformers 5). */
export const NEMOTRON_H_LAYER_NAMES: Readonly<Record<BlockKind, string>> = {
  mamba2: 'mamba',
  attention: 'attention',
  moe: 'moe',
  mlp: 'mlp',
};

const KIND_OF_LAYER_NAME: Readonly<Record<string, BlockKind>> = {
  mamba: 'mamba2',
  linear_attention: 'mamba2',
  attention: 'attention',
  full_attention: 'attention',
  moe: 'moe',
  mlp: 'mlp',
};

/** Activations a non-gated nemotron_h MLP/expert can have, by HF name. */
const ACTIVATION_OF_HF: Readonly<Record<string, Activation>> = { relu2: 'relu2', gelu: 'gelu' };

export interface ImportResult {
  model: ModelSpecInput;
  /** Things the importer could not carry over exactly, in words. */
  notes: string[];
  /** Config fields the importer read. */
  understood: Set<string>;
}

function layerKinds(r: ConfigReader, listField: string, patternField: string): BlockKind[] | undefined {
  const list = r.stringList(listField);
  const pattern = r.has(patternField) ? r.string(patternField) : undefined;
  let fromList: BlockKind[] | undefined;
  if (list) {
    fromList = list.map((name, i) => {
      const kind = KIND_OF_LAYER_NAME[name];
      if (!kind)
        r.fail(`${listField}[${i}]`, `unknown layer type ${JSON.stringify(name)} (expected mamba, attention, moe or mlp)`);
      return kind;
    });
  }
  let fromPattern: BlockKind[] | undefined;
  if (pattern !== undefined) {
    try {
      const parsed = parsePattern(pattern);
      if (parsed.mtp || parsed.pipelineCuts.length)
        r.fail(patternField, `"${pattern}" may hold only the letters M * - E (no '|' or '/')`);
      fromPattern = parsed.main;
    } catch (error) {
      if (error instanceof PatternError) r.fail(patternField, error.message);
      throw error;
    }
  }
  if (fromList && fromPattern && !deepEqualJson(fromList, fromPattern))
    r.fail(listField, `disagrees with ${patternField} "${pattern}"`);
  return fromList ?? fromPattern;
}

function timeStepLimit(r: ConfigReader): [number, number] | null {
  const limit = r.numberList('time_step_limit');
  if (!limit) return null;
  if (limit.length !== 2) r.fail('time_step_limit', `expected [min, max], got ${limit.length} values`);
  const [lo, hi] = limit as [number, number];
  if (hi === Number.POSITIVE_INFINITY) {
    if (lo === 0) return null;
    r.fail('time_step_limit', `[${lo}, Infinity]: a lower clamp without an upper one is not supported`);
  }
  if (lo < 0 || !(hi > 0)) r.fail('time_step_limit', `[${lo}, ${hi}] is not a valid clamp range`);
  return [lo, hi];
}

function activation(r: ConfigReader): Activation {
  const name = r.string('mlp_hidden_act', 'relu2');
  const act = ACTIVATION_OF_HF[name];
  if (!act) r.fail('mlp_hidden_act', `"${name}" is not supported (nemotron_h MLPs are not gated: relu2 or gelu)`);
  return act;
}

function blockTemplate(kind: BlockKind, r: ConfigReader, hidden: number): Block {
  switch (kind) {
    case 'mamba2': {
      const act = r.string('mamba_hidden_act', 'silu');
      if (act !== 'silu') r.fail('mamba_hidden_act', `"${act}" is not supported (Strata's Mamba-2 uses silu)`);
      const block: Mamba2Block = {
        kind: 'mamba2',
        heads: r.int('mamba_num_heads', 128),
        head_dim: r.int('mamba_head_dim', 64),
        d_state: r.int('ssm_state_size', 128),
        groups: r.int(r.nameOf('n_groups', 'mamba_n_groups'), 8),
        conv_kernel: r.int(r.nameOf('conv_kernel', 'mamba_d_conv'), 4),
        conv_bias: r.bool(r.nameOf('use_conv_bias', 'mamba_conv_bias'), true),
        chunk: r.int(r.nameOf('chunk_size', 'mamba_chunk_size'), 128),
        bias: r.bool('use_bias', false),
        dt_min: r.number(r.nameOf('time_step_min', 'mamba_dt_min'), 0.001, { positive: true }),
        dt_max: r.number(r.nameOf('time_step_max', 'mamba_dt_max'), 0.1, { positive: true }),
        dt_init_floor: r.number(r.nameOf('time_step_floor', 'mamba_dt_init_floor'), 1e-4, { positive: true }),
        dt_limit: timeStepLimit(r),
        norm_before_gate: false,
      };
      return block;
    }
    case 'attention': {
      const heads = r.int('num_attention_heads', 32);
      const block: AttentionBlock = {
        kind: 'attention',
        heads,
        kv_heads: r.int('num_key_value_heads', heads),
        head_dim: r.int('head_dim', Math.floor(hidden / heads)),
        rope: null,
        qk_norm: false,
        bias: r.bool('attention_bias', false),
        sliding_window: r.optionalInt('sliding_window'),
      };
      return block;
    }
    case 'mlp': {
      const block: MlpBlock = {
        kind: 'mlp',
        ffn: r.int('intermediate_size', 21504),
        activation: activation(r),
        bias: r.bool('mlp_bias', false),
      };
      return block;
    }
    case 'moe': {
      const experts = r.int(r.nameOf('n_routed_experts', 'num_local_experts'), 8);
      const nGroup = r.int('n_group', 1);
      const topkGroup = r.int('topk_group', 1);
      if (nGroup > 1 && topkGroup < nGroup)
        r.fail('topk_group', `${topkGroup} of n_group ${nGroup}: group-limited routing is not supported by Strata`);
      if (experts % nGroup !== 0) r.fail('n_group', `${nGroup} does not divide n_routed_experts ${experts}`);
      const shared = r.int('n_shared_experts', 1, 0);
      const block: MoeBlock = {
        kind: 'moe',
        experts,
        top_k: r.int('num_experts_per_tok', 2),
        expert_ffn: r.int('moe_intermediate_size', 7688),
        activation: activation(r),
        shared_experts: shared,
        shared_ffn: shared > 0 ? r.int('moe_shared_expert_intermediate_size', 7688) : 0,
        router: {
          type: 'sigmoid',
          expert_bias: true,
          bias_update_rate: 1e-3,
          norm_topk: r.bool('norm_topk_prob', true),
          routed_scaling: r.number('routed_scaling_factor', 1, { positive: true }),
          aux_loss_coeff: 0,
        },
        latent: r.optionalInt('moe_latent_size'),
        bias: r.bool('mlp_bias', false),
      };
      return block;
    }
  }
}

/** Reads a nemotron_h config into a Strata model (input form). */
export function importNemotronH(config: HfConfig, file: string, name: string): ImportResult {
  const r: ConfigReader = new ConfigReader(config, file);
  const notes: string[] = [];
  const hidden = r.int('hidden_size', 4096);
  const kinds = layerKinds(r, 'layers_block_type', 'hybrid_override_pattern');
  if (!kinds) r.fail('layers_block_type', 'is missing (neither layers_block_type nor hybrid_override_pattern is given)');
  if (kinds.length === 0) r.fail('layers_block_type', 'is empty');
  if (r.has('num_hidden_layers')) {
    const n = r.int('num_hidden_layers');
    if (n !== kinds.length)
      r.fail('num_hidden_layers', `${n} does not match the ${kinds.length} layers of ${r.has('layers_block_type') ? 'layers_block_type' : 'hybrid_override_pattern'}`);
  }
  const mtpDepth = r.int('num_nextn_predict_layers', 0, 0);
  let mtpKinds: BlockKind[] | undefined;
  if (mtpDepth > 0) {
    mtpKinds = layerKinds(r, 'mtp_layers_block_type', 'mtp_hybrid_override_pattern') ?? ['attention', 'moe'];
    if (mtpKinds.length === 0) r.fail('mtp_layers_block_type', 'is empty');
  }
  const templates = new Map<BlockKind, Block>();
  const blockOf = (kind: BlockKind): Block => {
    let block = templates.get(kind);
    if (!block) {
      block = blockTemplate(kind, r, hidden);
      templates.set(kind, block);
    }
    return structuredClone(block);
  };
  const stackBlocks = kinds.map(blockOf);
  const model: ModelSpecInput = {
    name,
    vocab_size: r.int('vocab_size', 131072),
    d_model: hidden,
    norm_eps: r.number('layer_norm_epsilon', 1e-5, { positive: true }),
    tie_embeddings: r.bool('tie_word_embeddings', false),
    max_position_embeddings: r.int('max_position_embeddings', 4096),
    init_std: r.number('initializer_range', 0.02, { positive: true }),
    stack: compressBlocks(stackBlocks),
    pipeline_cuts: [],
    mtp: mtpKinds
      ? { kind: 'mtp', depth: mtpDepth, blocks: mtpKinds.map(blockOf), loss_weight: 0.3, shared_weights: true }
      : null,
  };
  if (mtpKinds) notes.push('MTP loss weight and weight sharing are not in nemotron_h configs; using 0.3 and shared weights');
  return { model, notes, understood: r.understood };
}

// ---------------------------------------------------------------------------------------------
// Export
// ---------------------------------------------------------------------------------------------

/** A design that a nemotron_h config cannot express; the message names layer and field. */
export class HfExportError extends Error {
  constructor(
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = 'HfExportError';
  }
}

/** A block and where it sits, for messages. */
export interface PlacedBlock {
  block: Block;
  where: string; // `layer 7 (moe)` or `mtp layer 1 (moe)`
}

function withoutEditorFields(block: Block): Record<string, unknown> {
  const { id: _id, label: _label, ...rest } = block;
  return rest;
}

/**
 * The one parameter set of each kind (main stack and MTP layers), checking that every layer of
 * that kind agrees (ids and labels aside). `format` names the target in the message.
 */
export function uniformBlocks(model: ModelSpec, format = 'nemotron_h configs'): Map<BlockKind, PlacedBlock> {
  const placed: PlacedBlock[] = flattenStack(model.stack).map((l) => ({ block: l.block, where: `layer ${l.index} (${l.block.kind})` }));
  model.mtp?.blocks.forEach((block, j) => placed.push({ block, where: `mtp layer ${j} (${block.kind})` }));
  const first = new Map<BlockKind, PlacedBlock>();
  for (const p of placed) {
    const seen = first.get(p.block.kind);
    if (!seen) {
      first.set(p.block.kind, p);
      continue;
    }
    const a = withoutEditorFields(seen.block);
    const b = withoutEditorFields(p.block);
    if (deepEqualJson(a, b)) continue;
    const field = Object.keys(b).find((k) => !deepEqualJson(a[k], b[k])) ?? 'kind';
    throw new HfExportError(
      `${p.where}: ${field} ${JSON.stringify(b[field])} differs from ${seen.where}'s ${JSON.stringify(a[field])}; ${format} give every ${p.block.kind} layer the same parameters`,
      field,
    );
  }
  return first;
}

function hfActivation(act: Activation, where: string): string {
  if (act === 'swiglu')
    throw new HfExportError(`${where}: activation swiglu cannot be expressed (nemotron_h MLPs and experts are not gated)`, 'activation');
  return act;
}

/**
 * The nemotron_h config.json of a model (field names as transformers' NemotronHConfig reads them).
 * Throws HfExportError for designs the config cannot express.
 */
export function hfConfigFromModel(model: ModelSpec): HfConfig {
  const blocks = uniformBlocks(model);
  const layers = flattenStack(model.stack).map((l) => l.block.kind);
  const config: HfConfig = {
    architectures: ['NemotronHForCausalLM'],
    model_type: 'nemotron_h',
    vocab_size: model.vocab_size,
    hidden_size: model.d_model,
    num_hidden_layers: layers.length,
    layers_block_type: layers.map((k) => NEMOTRON_H_LAYER_NAMES[k]),
    hybrid_override_pattern: formatPattern({ main: layers, pipelineCuts: [], mtp: null }),
    tie_word_embeddings: model.tie_embeddings,
    max_position_embeddings: model.max_position_embeddings,
    initializer_range: model.init_std,
    layer_norm_epsilon: model.norm_eps,
  };
  const mamba = blocks.get('mamba2');
  if (mamba && mamba.block.kind === 'mamba2') {
    const m = mamba.block;
    if (m.norm_before_gate)
      throw new HfExportError(`${mamba.where}: norm_before_gate true cannot be expressed (nemotron_h gates before the norm)`, 'norm_before_gate');
    Object.assign(config, {
      mamba_num_heads: m.heads,
      mamba_head_dim: m.head_dim,
      ssm_state_size: m.d_state,
      n_groups: m.groups,
      conv_kernel: m.conv_kernel,
      use_conv_bias: m.conv_bias,
      chunk_size: m.chunk,
      use_bias: m.bias,
      mamba_hidden_act: 'silu',
      time_step_min: m.dt_min,
      time_step_max: m.dt_max,
      time_step_floor: m.dt_init_floor,
    });
    if (m.dt_limit) config.time_step_limit = [...m.dt_limit];
  }
  const attention = blocks.get('attention');
  if (attention && attention.block.kind === 'attention') {
    const a = attention.block;
    if (a.rope) throw new HfExportError(`${attention.where}: rope cannot be expressed (nemotron_h attention has no position embedding)`, 'rope');
    if (a.qk_norm) throw new HfExportError(`${attention.where}: qk_norm cannot be expressed in nemotron_h`, 'qk_norm');
    Object.assign(config, {
      num_attention_heads: a.heads,
      num_key_value_heads: a.kv_heads,
      head_dim: a.head_dim,
      attention_bias: a.bias,
      sliding_window: a.sliding_window,
    });
  }
  const mlp = blocks.get('mlp');
  const moe = blocks.get('moe');
  if (mlp && moe && mlp.block.kind === 'mlp' && moe.block.kind === 'moe') {
    if (mlp.block.activation !== moe.block.activation)
      throw new HfExportError(`${moe.where}: activation ${moe.block.activation} differs from ${mlp.where}'s ${mlp.block.activation}; nemotron_h has one mlp_hidden_act`, 'activation');
    if (mlp.block.bias !== moe.block.bias)
      throw new HfExportError(`${moe.where}: bias ${moe.block.bias} differs from ${mlp.where}'s ${mlp.block.bias}; nemotron_h has one mlp_bias`, 'bias');
  }
  if (mlp && mlp.block.kind === 'mlp') {
    Object.assign(config, {
      intermediate_size: mlp.block.ffn,
      mlp_hidden_act: hfActivation(mlp.block.activation, mlp.where),
      mlp_bias: mlp.block.bias,
    });
  }
  if (moe && moe.block.kind === 'moe') {
    const e = moe.block;
    if (e.router.type !== 'sigmoid')
      throw new HfExportError(`${moe.where}: router.type ${e.router.type} cannot be expressed (nemotron_h routers are sigmoid)`, 'router.type');
    if (!e.router.expert_bias)
      throw new HfExportError(`${moe.where}: router.expert_bias false cannot be expressed (nemotron_h routers always carry a selection bias)`, 'router.expert_bias');
    if (e.shared_experts === 0)
      throw new HfExportError(`${moe.where}: shared_experts 0 cannot be expressed (nemotron_h MoE layers always have a shared expert)`, 'shared_experts');
    Object.assign(config, {
      mlp_hidden_act: hfActivation(e.activation, moe.where),
      mlp_bias: e.bias,
      n_routed_experts: e.experts,
      num_experts_per_tok: e.top_k,
      moe_intermediate_size: e.expert_ffn,
      n_shared_experts: e.shared_experts,
      moe_shared_expert_intermediate_size: e.shared_ffn,
      moe_latent_size: e.latent,
      routed_scaling_factor: e.router.routed_scaling,
      norm_topk_prob: e.router.norm_topk,
      n_group: 1,
      topk_group: 1,
    });
  }
  if (model.mtp) {
    const mtpKinds = model.mtp.blocks.map((b) => b.kind);
    Object.assign(config, {
      num_nextn_predict_layers: model.mtp.depth,
      mtp_layers_block_type: mtpKinds.map((k) => NEMOTRON_H_LAYER_NAMES[k]),
      mtp_hybrid_override_pattern: formatPattern({ main: mtpKinds, pipelineCuts: [], mtp: null }),
    });
  } else {
    config.num_nextn_predict_layers = 0;
  }
  return config;
}

/** What a nemotron_h config leaves out of a model that it can otherwise express, in words. */
export function hfExportNotes(model: ModelSpec): string[] {
  const notes: string[] = [];
  const defaults = parseModel({ name: 'x', vocab_size: 1, d_model: 1, stack: [{ kind: 'mlp', ffn: 1 }] });
  if (!deepEqualJson(model.precision, defaults.precision))
    notes.push('the precision policy is not part of a nemotron_h config');
  if (model.pipeline_cuts.length) notes.push(`pipeline cuts at layers ${model.pipeline_cuts.join(', ')} are not part of a nemotron_h config`);
  if (model.mtp && (model.mtp.loss_weight !== 0.3 || !model.mtp.shared_weights))
    notes.push('MTP loss_weight and shared_weights are not part of a nemotron_h config');
  const layers = flattenStack(model.stack).map((l) => l.block);
  const all = [...layers, ...(model.mtp?.blocks ?? [])];
  if (all.some((b) => b.id !== undefined || b.label !== undefined)) notes.push('block ids and labels are not kept');
  if (all.some((b) => b.kind === 'moe' && (b.router.aux_loss_coeff !== 0 || b.router.bias_update_rate !== 1e-3)))
    notes.push('router training settings (aux_loss_coeff, bias_update_rate) are not kept');
  return notes;
}

/** NemotronHConfig fields typed `float` (transformers rejects an integer there, e.g. `1` for 1.0). */
export const NEMOTRON_H_FLOAT_FIELDS: ReadonlySet<string> = new Set([
  'time_step_min',
  'time_step_max',
  'time_step_floor',
  'time_step_limit',
  'initializer_range',
  'layer_norm_epsilon',
  'routed_scaling_factor',
]);

function jsonValue(value: unknown, indent: string, asFloat: boolean): string {
  if (typeof value === 'number' && asFloat && Number.isInteger(value)) return `${value}.0`;
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]';
    const inner = `${indent}  `;
    return `[\n${value.map((v) => inner + jsonValue(v, inner, asFloat)).join(',\n')}\n${indent}]`;
  }
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined);
    if (entries.length === 0) return '{}';
    const inner = `${indent}  `;
    return `{\n${entries
      .map(([k, v]) => `${inner}${JSON.stringify(k)}: ${jsonValue(v, inner, indent === '' && NEMOTRON_H_FLOAT_FIELDS.has(k))}`)
      .join(',\n')}\n${indent}}`;
  }
  return JSON.stringify(value);
}

/**
 * config.json text of a nemotron_h config: JSON.stringify's layout, but float-typed fields are
 * written with a decimal point (`1.0`) so Python reads them as floats.
 */
export function formatHfConfig(config: HfConfig): string {
  return `${jsonValue(config, '', false)}\n`;
}
