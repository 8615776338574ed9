// The precision policy of a design as Megatron-LM / TransformerEngine options: one global recipe
// flag set (`--bf16` plus `--fp8-format/--fp8-recipe` or `--fp4-format/--fp4-recipe`),
// `--first-last-layers-bf16` with the leading and trailing layer counts the resolved table keeps in
// BF16, and a `--te-precision-config-file` YAML whose glob matchers select a TransformerEngine
// recipe per module for everything else the per-layer table says.
//
// Conventions:
// - Input is engine/spec/precision.ts `resolvePrecision(model)`: one row per (layer, role) with a
//   format per GEMM pass. A row's recipe is taken from its formats: nvfp4 -> NVFP4 block scaling,
//   mxfp8 -> MXFP8, fp8_e4m3 -> FP8 current ("tensorwise") scaling with format e4m3, or `hybrid`
//   when the gradient passes are fp8_e5m2; bf16/fp32 -> high precision. Megatron chooses one
//   recipe per module, not per pass: a row whose passes disagree gets its forward recipe and a note.
// - Global recipe: the quantized recipe with the most rows (ties: NVFP4, then MXFP8, then FP8).
// - First/last BF16: the longest runs of leading and trailing main-stack layers whose every row is
//   high precision, capped at the layers of the first and last pipeline stage (Megatron's limit).
// - YAML (the format Megatron-LM's TE precision config reads): `configs` name TEQuantizationParams
//   recipes, `matchers` are ordered globs over module paths, first match wins. A role whose recipe
//   differs from the global one on every (non-BF16-run) layer gets one glob over all layers;
//   otherwise each differing layer gets its own glob with the layer's index local to its pipeline
//   stage (Megatron numbers `decoder.layers.N` per stage, and one file serves every stage). When two
//   layers with the same local index in different stages need different recipes, one file cannot
//   tell them apart: that is a MegatronPrecisionError naming both layers. MTP modules (`mtp.*`)
//   get matchers of their own, listed first.
// - The router, embedding and LM head are not TransformerEngine GEMMs in Megatron: they run in
//   BF16 (router with `--moe-router-dtype fp32`); a table that quantizes them gets a note.
//
// Not here: policy resolution (engine/spec/precision.ts), the other Megatron flags (launch-args.ts).
import { type GemmPass, type ModelSpec, type PrecisionFormat, type TensorRole, flattenStack } from '../document.js';
import { type PrecisionRow, resolvePrecision } from '../precision.js';
import { stageRanges } from './layout.js';

export type MegatronRecipe = 'bf16' | 'nvfp4' | 'mxfp8' | 'fp8-e4m3' | 'fp8-hybrid';

export class MegatronPrecisionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MegatronPrecisionError';
  }
}

/** Megatron module (path suffix) of each GEMM role; null where Megatron has no TE GEMM for it. */
export const MODULE_OF_ROLE: Readonly<Record<TensorRole, string | null>> = {
  embedding: null,
  head: null,
  'mamba.in_proj': 'mixer.in_proj',
  'mamba.out_proj': 'mixer.out_proj',
  'attention.qkv': 'self_attention.linear_qkv',
  'attention.o': 'self_attention.linear_proj',
  'mlp.fc1': 'mlp.linear_fc1',
  'mlp.fc2': 'mlp.linear_fc2',
  'moe.router': null,
  'moe.expert_fc1': 'mlp.experts.linear_fc1',
  'moe.expert_fc2': 'mlp.experts.linear_fc2',
  'moe.latent_down': 'mlp.fc1_latent_proj',
  'moe.latent_up': 'mlp.fc2_latent_proj',
  'moe.shared_fc1': 'mlp.shared_experts.linear_fc1',
  'moe.shared_fc2': 'mlp.shared_experts.linear_fc2',
  mtp: null,
};

const HIGH: ReadonlySet<PrecisionFormat> = new Set(['bf16', 'fp32']);
const RECIPE_PRIORITY: MegatronRecipe[] = ['nvfp4', 'mxfp8', 'fp8-hybrid', 'fp8-e4m3'];

/** YAML body of each recipe's TEQuantizationParams `training_recipe`. */
const TRAINING_RECIPE_YAML: Record<MegatronRecipe, string> = {
  bf16: '{}',
  nvfp4: '{fp4_quantization_recipe: nvfp4}',
  mxfp8: '{fp8_quantization_recipe: mxfp8}',
  'fp8-e4m3': '{fp8_quantization_recipe: tensorwise, fp8_format: e4m3}',
  'fp8-hybrid': '{fp8_quantization_recipe: tensorwise, fp8_format: hybrid}',
};

export interface RowRecipe {
  recipe: MegatronRecipe;
  /** Set when the passes ask for more than one recipe (Megatron applies the forward one). */
  mixedPasses: boolean;
}

/** The recipe of one resolved row (see the header). */
export function recipeOfRow(formats: Record<GemmPass, PrecisionFormat>): RowRecipe {
  const of = (f: PrecisionFormat): MegatronRecipe | 'fp8' => (HIGH.has(f) ? 'bf16' : f === 'nvfp4' ? 'nvfp4' : f === 'mxfp8' ? 'mxfp8' : 'fp8');
  const fprop = of(formats.fprop);
  const grads = [of(formats.dgrad), of(formats.wgrad)];
  if (fprop === 'fp8') {
    const gradsE5m2 = formats.dgrad === 'fp8_e5m2' || formats.wgrad === 'fp8_e5m2';
    const recipe: MegatronRecipe = gradsE5m2 ? 'fp8-hybrid' : 'fp8-e4m3';
    return { recipe, mixedPasses: grads.some((g) => g !== 'fp8') || formats.fprop === 'fp8_e5m2' };
  }
  return { recipe: fprop, mixedPasses: grads.some((g) => g !== fprop) };
}

export interface MatcherEntry {
  name: string;
  pattern: string;
  recipe: MegatronRecipe;
}

export interface PrecisionExport {
  /** The global recipe (bf16 when nothing is quantized). */
  recipe: MegatronRecipe;
  flags: Array<[string, string?]>;
  firstBf16: number;
  lastBf16: number;
  matchers: MatcherEntry[];
  /** The TE precision config YAML, or null when the flags say everything. */
  yaml: string | null;
  notes: string[];
}

/** File name of the TE precision config inside a launch bundle. */
export const TE_PRECISION_FILE = 'te_precision.yaml';

function rowKey(row: PrecisionRow): string {
  return `${row.scope}:${row.layer}:${row.role}`;
}

/**
 * Megatron precision options for the model with the given pipeline cuts. `configPath` is the
 * value written after --te-precision-config-file when a YAML is needed.
 */
export function megatronPrecision(model: ModelSpec, cuts: readonly number[], configPath: string): PrecisionExport {
  const table = resolvePrecision(model);
  const layerCount = flattenStack(model.stack).length;
  const notes: string[] = [];
  const recipes = new Map<string, MegatronRecipe>();
  const mixed: string[] = [];
  for (const row of table.rows) {
    const { recipe, mixedPasses } = recipeOfRow(row.formats);
    recipes.set(rowKey(row), recipe);
    if (row.scope === 'global' || MODULE_OF_ROLE[row.role] === null) {
      if (recipe !== 'bf16') {
        const where = row.scope === 'global' ? row.role : `${row.scope === 'mtp' ? 'mtp layer' : 'layer'} ${row.layer} ${row.role}`;
        notes.push(`${where} resolves to ${row.formats.fprop}, but Megatron runs it in BF16 (it is not a TransformerEngine GEMM)`);
      }
      continue;
    }
    if (mixedPasses) mixed.push(`${row.scope === 'mtp' ? 'mtp layer' : 'layer'} ${row.layer} ${row.role}`);
  }
  if (mixed.length)
    notes.push(`Megatron picks one recipe per module, not per GEMM pass: the forward format is used for ${mixed.length} rows whose passes differ (first: ${mixed[0]})`);

  const gemmRows = table.rows.filter((r) => r.scope !== 'global' && MODULE_OF_ROLE[r.role] !== null);
  const counts = new Map<MegatronRecipe, number>();
  for (const r of gemmRows) {
    const recipe = recipes.get(rowKey(r))!;
    if (recipe !== 'bf16') counts.set(recipe, (counts.get(recipe) ?? 0) + 1);
  }
  let global: MegatronRecipe = 'bf16';
  for (const candidate of RECIPE_PRIORITY) {
    const n = counts.get(candidate) ?? 0;
    if (n > (counts.get(global) ?? 0)) global = candidate;
  }

  const flags: Array<[string, string?]> = [];
  const fp32Only = model.precision.default === 'fp32' && gemmRows.every((r) => r.formats.fprop === 'fp32');
  if (!fp32Only) flags.push(['--bf16']);
  else notes.push('every GEMM resolves to fp32: no --bf16 (Megatron trains in fp32)');
  switch (global) {
    case 'nvfp4':
      flags.push(['--fp4-format', 'e2m1'], ['--fp4-recipe', 'nvfp4']);
      break;
    case 'mxfp8':
      flags.push(['--fp8-format', 'e4m3'], ['--fp8-recipe', 'mxfp8']);
      break;
    case 'fp8-e4m3':
      flags.push(['--fp8-format', 'e4m3'], ['--fp8-recipe', 'tensorwise']);
      break;
    case 'fp8-hybrid':
      flags.push(['--fp8-format', 'hybrid'], ['--fp8-recipe', 'tensorwise']);
      break;
    case 'bf16':
      break;
  }
  if (global === 'bf16') return { recipe: global, flags, firstBf16: 0, lastBf16: 0, matchers: [], yaml: null, notes };

  // Leading and trailing BF16 layer runs, capped by the first and last stage sizes.
  const stages = stageRanges(layerCount, cuts);
  const layerHigh = (i: number) => gemmRows.filter((r) => r.scope === 'layer' && r.layer === i).every((r) => recipes.get(rowKey(r)) === 'bf16');
  let lead = 0;
  while (lead < layerCount && layerHigh(lead)) lead++;
  let trail = 0;
  while (trail < layerCount - lead && layerHigh(layerCount - 1 - trail)) trail++;
  if (lead === layerCount) lead = 0; // nothing in the main stack is quantized: matchers say it
  const firstStage = stages[0]!;
  const lastStage = stages[stages.length - 1]!;
  const firstBf16 = Math.min(lead, firstStage.end - firstStage.first);
  const lastBf16 = Math.min(trail, lastStage.end - lastStage.first);
  if (firstBf16 < lead || lastBf16 < trail)
    notes.push(`the BF16 runs at the ends (${lead} first, ${trail} last layers) exceed a pipeline stage; TE config matchers cover the rest`);
  if (firstBf16 > 0 || lastBf16 > 0)
    flags.push(['--first-last-layers-bf16'], ['--num-layers-at-start-in-bf16', String(firstBf16)], ['--num-layers-at-end-in-bf16', String(lastBf16)]);
  const inBf16Run = (i: number) => i < firstBf16 || i >= layerCount - lastBf16;

  const matchers: MatcherEntry[] = [];
  const used = new Set<string>();
  const addMatcher = (name: string, pattern: string, recipe: MegatronRecipe) => {
    let unique = name;
    for (let k = 2; used.has(unique); k++) unique = `${name}_${k}`;
    used.add(unique);
    matchers.push({ name: unique, pattern, recipe });
  };
  const roleName = (role: TensorRole) => role.replace(/\./g, '_');

  // MTP modules first: one glob per role.
  const mtpRows = gemmRows.filter((r) => r.scope === 'mtp');
  for (const role of new Set(mtpRows.map((r) => r.role))) {
    const rowsOfRole = mtpRows.filter((r) => r.role === role);
    const distinct = new Set(rowsOfRole.map((r) => recipes.get(rowKey(r))!));
    if (distinct.size > 1) notes.push(`MTP layers disagree on the recipe of ${role}; the first MTP layer's is used for all`);
    const recipe = recipes.get(rowKey(rowsOfRole[0]!))!;
    if (recipe !== global) addMatcher(`mtp_${roleName(role)}_${recipe.replace('-', '_')}`, `*mtp.*${MODULE_OF_ROLE[role]}`, recipe);
  }

  // Main stack: per role, one glob when uniform, else per-layer globs with stage-local indices.
  const stageOf = (i: number) => stages.findIndex((s) => i >= s.first && i < s.end);
  const layerRows = gemmRows.filter((r) => r.scope === 'layer' && !inBf16Run(r.layer));
  for (const role of new Set(layerRows.map((r) => r.role))) {
    const rowsOfRole = layerRows.filter((r) => r.role === role);
    const module = MODULE_OF_ROLE[role]!;
    const distinct = new Set(rowsOfRole.map((r) => recipes.get(rowKey(r))!));
    if (distinct.size === 1) {
      const recipe = [...distinct][0]!;
      if (recipe !== global) addMatcher(`${roleName(role)}_${recipe.replace('-', '_')}`, `*decoder.layers.*.${module}`, recipe);
      continue;
    }
    const byLocal = new Map<number, { layer: number; recipe: MegatronRecipe }>();
    for (const r of rowsOfRole) {
      const local = r.layer - stages[stageOf(r.layer)]!.first;
      const recipe = recipes.get(rowKey(r))!;
      const seen = byLocal.get(local);
      if (seen && seen.recipe !== recipe)
        throw new MegatronPrecisionError(
          `layer ${seen.layer} and layer ${r.layer} both are layer ${local} of their pipeline stage, but ${role} is ${seen.recipe} in one and ${recipe} in the other; one TE precision config cannot tell them apart (change the cuts or the policy)`,
        );
      byLocal.set(local, { layer: r.layer, recipe });
    }
    for (const [local, { layer, recipe }] of [...byLocal.entries()].sort((a, b) => a[0] - b[0])) {
      if (recipe === global) continue;
      addMatcher(`layer${layer}_${roleName(role)}_${recipe.replace('-', '_')}`, `*decoder.layers.${local}.${module}`, recipe);
    }
  }

  if (matchers.length === 0) return { recipe: global, flags, firstBf16, lastBf16, matchers, yaml: null, notes };
  flags.push(['--te-precision-config-file', configPath]);
  const configs = [...new Set(matchers.map((m) => m.recipe))];
  const yaml = [
    `# TransformerEngine precision overrides for Megatron-LM (--te-precision-config-file), generated by Strata`,
    `# from the resolved precision table of "${model.name}". Global recipe: ${global}${firstBf16 || lastBf16 ? `; first ${firstBf16} and last ${lastBf16} layers BF16 via --first-last-layers-bf16` : ''}.`,
    `# Matchers are tried in order; the first that matches a module path picks its config.`,
    'configs:',
    ...configs.flatMap((c) => [`  ${c.replace('-', '_')}:`, '    transformer_engine_config_type: TEQuantizationParams', `    training_recipe: ${TRAINING_RECIPE_YAML[c]}`]),
    'matchers:',
    ...matchers.flatMap((m) => [`  ${m.name}:`, `    config: ${m.recipe.replace('-', '_')}`, '    type: glob', `    pattern: "${m.pattern}"`, '    enabled: true']),
    '',
  ].join('\n');
  return { recipe: global, flags, firstBf16, lastBf16, matchers, yaml, notes };
}
