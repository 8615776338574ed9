// Precision policy resolution: the document's ordered rules -> one table of
// (layer, tensor role) -> format for each GEMM pass (fprop, dgrad, wgrad), plus the presets.
//
// Conventions (the engine, the analytics, the exporters and the UI all read this table):
// - Rows: one per GEMM role present in each main-stack layer (roles depend on the block: a MoE
//   block has latent rows only with `latent`, shared rows only with shared experts), one per role
//   of each MTP module layer (scope 'mtp'), and the two global rows `embedding` and `head`.
// - Matching: a rule matches a main-stack row when every criterion it gives holds (`kinds` the
//   block kind, `roles` the row's role, layer-position criteria its index). MTP rows are selected as
//   a whole: by a rule whose roles include `mtp`, or by one with no criteria besides `passes`
//   (position, kind and other role criteria never reach them). `passes` restricts which of the
//   three passes the rule sets. The native engine (engine/native/src/model/config.cpp) resolves
//   with the same rules.
// - The last matching rule wins per pass; unmatched passes take the policy's `default`.
// - Global rows (embedding, head) stay in high precision unless a rule names their role
//   explicitly: they take `default` when it is fp32 or bf16, else bf16 (as Megatron/TE keep
//   embeddings and the LM head out of FP8/FP4).
// - A pass's format applies to both GEMM operands, except `fp8_e5m2` on dgrad/wgrad, which means
//   TransformerEngine's HYBRID recipe: the gradient operand in E5M2, the other operand in E4M3.
// - `last_percent: p` selects the last ceil(p/100 * n_layers) layers.
//
// Not here: the quantizers themselves (engine/native/src/ops/quant.*) and format metadata
// (precision-formats.ts).
import {
  type BlockKind,
  type GemmPass,
  type ModelSpec,
  type PrecisionFormat,
  type PrecisionPolicy,
  type PrecisionRule,
  type TensorRole,
  type Block,
  GEMM_PASSES,
  flattenStack,
} from './document.js';

export type RowScope = 'layer' | 'mtp' | 'global';

export interface PrecisionRow {
  scope: RowScope;
  /** Main-stack layer index (scope 'layer'), MTP module layer index (scope 'mtp'), -1 for global rows. */
  layer: number;
  kind: BlockKind | null;
  role: TensorRole;
  formats: Record<GemmPass, PrecisionFormat>;
  /** Index of the rule that set each pass, or null when the default applied. */
  ruleIndex: Record<GemmPass, number | null>;
}

export interface PrecisionTable {
  rows: PrecisionRow[];
  nLayers: number;
}

/** The GEMM roles a block has. */
export function rolesOfBlock(block: Block): TensorRole[] {
  switch (block.kind) {
    case 'mamba2':
      return ['mamba.in_proj', 'mamba.out_proj'];
    case 'attention':
      return ['attention.qkv', 'attention.o'];
    case 'mlp':
      return ['mlp.fc1', 'mlp.fc2'];
    case 'moe': {
      const roles: TensorRole[] = ['moe.router'];
      if (block.latent !== null) roles.push('moe.latent_down');
      roles.push('moe.expert_fc1', 'moe.expert_fc2');
      if (block.latent !== null) roles.push('moe.latent_up');
      if (block.shared_experts > 0) roles.push('moe.shared_fc1', 'moe.shared_fc2');
      return roles;
    }
  }
}

interface RowTarget {
  scope: RowScope;
  layer: number;
  kind: BlockKind | null;
  role: TensorRole;
}

function lastCount(n: number, percent: number): number {
  return Math.ceil((percent / 100) * n - 1e-9);
}

function ruleMatches(rule: PrecisionRule, row: RowTarget, n: number): boolean {
  const s = rule.select;
  const positional = s.layers !== undefined || s.first_n !== undefined || s.last_n !== undefined || s.last_percent !== undefined;
  if (row.scope === 'global') {
    // Only explicit role rules touch the embedding and the head.
    if (!s.roles || !s.roles.includes(row.role) || positional || s.kinds) return false;
    return true;
  }
  if (row.scope === 'mtp') {
    // MTP modules are selected as a whole: by the `mtp` role, or by a rule with no criteria but passes.
    if (positional || s.kinds) return false;
    return !s.roles || s.roles.includes('mtp');
  }
  if (s.kinds && (row.kind === null || !s.kinds.includes(row.kind))) return false;
  if (s.roles && !s.roles.includes(row.role)) return false;
  if (s.layers && (row.layer < s.layers.from || row.layer > s.layers.to)) return false;
  if (s.first_n !== undefined && row.layer >= s.first_n) return false;
  if (s.last_n !== undefined && row.layer < n - s.last_n) return false;
  if (s.last_percent !== undefined && row.layer < n - lastCount(n, s.last_percent)) return false;
  return true;
}

function resolveRow(policy: PrecisionPolicy, row: RowTarget, n: number): PrecisionRow {
  const base: PrecisionFormat =
    row.scope === 'global' ? (policy.default === 'fp32' || policy.default === 'bf16' ? policy.default : 'bf16') : policy.default;
  const formats = { fprop: base, dgrad: base, wgrad: base } as Record<GemmPass, PrecisionFormat>;
  const ruleIndex = { fprop: null, dgrad: null, wgrad: null } as Record<GemmPass, number | null>;
  policy.rules.forEach((rule, i) => {
    if (!ruleMatches(rule, row, n)) return;
    for (const pass of rule.select.passes ?? GEMM_PASSES) {
      formats[pass] = rule.format;
      ruleIndex[pass] = i;
    }
  });
  return { ...row, formats, ruleIndex };
}

/** Resolves the model's precision policy into the per-layer, per-role, per-pass table. */
export function resolvePrecision(model: ModelSpec, policy: PrecisionPolicy = model.precision): PrecisionTable {
  const layers = flattenStack(model.stack);
  const n = layers.length;
  const rows: PrecisionRow[] = [];
  rows.push(resolveRow(policy, { scope: 'global', layer: -1, kind: null, role: 'embedding' }, n));
  for (const layer of layers) {
    for (const role of rolesOfBlock(layer.block)) {
      rows.push(resolveRow(policy, { scope: 'layer', layer: layer.index, kind: layer.block.kind, role }, n));
    }
  }
  model.mtp?.blocks.forEach((block, j) => {
    for (const role of rolesOfBlock(block)) rows.push(resolveRow(policy, { scope: 'mtp', layer: j, kind: block.kind, role }, n));
  });
  rows.push(resolveRow(policy, { scope: 'global', layer: -1, kind: null, role: 'head' }, n));
  return { rows, nLayers: n };
}

/** The rows of one main-stack layer. */
export function rowsOfLayer(table: PrecisionTable, layer: number): PrecisionRow[] {
  return table.rows.filter((r) => r.scope === 'layer' && r.layer === layer);
}

/** Format of one (layer, role, pass); undefined when the layer has no such role. */
export function formatOf(table: PrecisionTable, layer: number, role: TensorRole, pass: GemmPass = 'fprop'): PrecisionFormat | undefined {
  return table.rows.find((r) => r.scope === 'layer' && r.layer === layer && r.role === role)?.formats[pass];
}

/** Distinct forward formats of a layer's GEMMs, most common first (for the layer strip). */
export function layerForwardFormats(table: PrecisionTable, layer: number): PrecisionFormat[] {
  const counts = new Map<PrecisionFormat, number>();
  for (const r of rowsOfLayer(table, layer)) counts.set(r.formats.fprop, (counts.get(r.formats.fprop) ?? 0) + 1);
  return [...counts.entries()].sort((a, b) => b[1] - a[1]).map(([f]) => f);
}

// ---------------------------------------------------------------------------------------------
// Presets
// ---------------------------------------------------------------------------------------------

export const PRESET_NAMES = ['bf16', 'fp8-tensorwise', 'mxfp8', 'nemotron3-nvfp4', 'nvfp4-all'] as const;
export type PresetName = (typeof PRESET_NAMES)[number];

const routerBf16: PrecisionRule = {
  select: { roles: ['moe.router'] },
  format: 'bf16',
  note: 'router logits stay in high precision',
};

export const PRESETS: Record<PresetName, { title: string; description: string; policy: PrecisionPolicy }> = {
  bf16: {
    title: 'All BF16',
    description: 'Every GEMM input in BF16; fp32 master weights and optimizer state.',
    policy: { preset: 'bf16', default: 'bf16', rules: [] },
  },
  'fp8-tensorwise': {
    title: 'FP8 tensorwise (HYBRID)',
    description: 'E4M3 forward, E5M2 gradients, per-tensor current scaling; router in BF16. Native on Hopper.',
    policy: {
      preset: 'fp8-tensorwise',
      default: 'fp8_e4m3',
      rules: [{ select: { passes: ['dgrad', 'wgrad'] }, format: 'fp8_e5m2', note: 'gradients in E5M2' }, routerBf16],
    },
  },
  mxfp8: {
    title: 'MXFP8',
    description: '32-element blocks with E8M0 scales for every linear layer; router in BF16. Native on Blackwell, emulated elsewhere.',
    policy: { preset: 'mxfp8', default: 'mxfp8', rules: [routerBf16] },
  },
  'nemotron3-nvfp4': {
    title: 'Nemotron 3 NVFP4 recipe',
    description:
      'NVFP4 everywhere except: attention QKV/O in BF16, Mamba out_proj in MXFP8, LatentMoE projections and MTP in BF16, router in BF16, the last 15% of layers in BF16.',
    policy: {
      preset: 'nemotron3-nvfp4',
      default: 'nvfp4',
      rules: [
        { select: { roles: ['attention.qkv', 'attention.o'] }, format: 'bf16', note: 'attention projections BF16' },
        { select: { roles: ['mamba.out_proj'] }, format: 'mxfp8', note: 'NVFP4 flushes too many out_proj values to zero' },
        { select: { roles: ['moe.latent_down', 'moe.latent_up'] }, format: 'bf16', note: 'LatentMoE projections BF16' },
        { select: { roles: ['mtp'] }, format: 'bf16', note: 'MTP layers BF16' },
        routerBf16,
        { select: { last_percent: 15 }, format: 'bf16', note: 'last 15% of the network BF16' },
      ],
    },
  },
  'nvfp4-all': {
    title: 'NVFP4 without exceptions',
    description: 'Every linear layer in NVFP4 (router in BF16): the ablation the Nemotron 3 recipe is compared with.',
    policy: { preset: 'nvfp4-all', default: 'nvfp4', rules: [routerBf16] },
  },
};

/** A fresh copy of a preset's policy (safe to mutate). */
export function presetPolicy(name: PresetName): PrecisionPolicy {
  return structuredClone(PRESETS[name].policy);
}

/** The rule the layer strip appends when a user paints layers [from, to] with a format. */
export function paintRule(from: number, to: number, format: PrecisionFormat, roles?: TensorRole[]): PrecisionRule {
  const select: PrecisionRule['select'] = { layers: { from: Math.min(from, to), to: Math.max(from, to) } };
  if (roles && roles.length) select.roles = roles;
  return { select, format, note: 'painted' };
}
