// Parallel layouts for training a Strata design with Megatron-LM: the cluster shape, the
// parallelism degrees (TP, PP, EP, CP, DP), batch and sequence sizes, activation recomputation and
// the distributed optimizer; the rules a layout must satisfy for the design; and the pipeline
// stages (which layers each pipeline rank holds).
//
// Conventions (as Megatron-LM/Megatron-Core lay ranks out):
// - world = nodes x gpus_per_node = TP x PP x CP x DP. Experts use expert parallelism EP with
//   expert tensor parallelism 1 (as the Nemotron 3 recipes do), so the EP group is carved out of
//   the TP x CP x DP ranks of one pipeline stage: (TP x CP x DP) % EP == 0 and experts % EP == 0;
//   the expert-data-parallel degree is TP x CP x DP / EP.
// - TP splits attention heads, KV heads (query groups), Mamba heads and groups, dense MLP and
//   shared-expert widths; each must divide by TP. CP for Mamba layers shards heads over the CP
//   ranks as well, so Mamba heads must divide by TP x CP; CP needs seq_len % (2 x CP) == 0.
// - Micro-batches per step per data-parallel replica m = global_batch / (micro_batch x DP), a
//   whole number >= 1.
// - Pipeline stages: the document's `pipeline_cuts` when they give exactly PP stages, otherwise
//   balanced cuts by layer count (the first stages take one more layer when the count does not
//   divide). The cuts become `|` in the exported hybrid layer pattern.
//
// Not here: memory and time of a layout (planner.ts), Megatron flags (launch-args.ts).
import { type ModelSpec, flattenStack } from '../document.js';

export const RECOMPUTE_MODES = ['none', 'selective', 'full'] as const;
export type Recompute = (typeof RECOMPUTE_MODES)[number];

export interface Cluster {
  nodes: number;
  gpusPerNode: number;
}

export interface ParallelLayout {
  tp: number;
  pp: number;
  ep: number;
  cp: number;
  dp: number;
  /** Sequences per micro-batch per data-parallel replica. */
  microBatch: number;
  /** Sequences per optimizer step over all replicas. */
  globalBatch: number;
  seqLen: number;
  recompute: Recompute;
  distributedOptimizer: boolean;
}

/** What a caller may leave out: everything but the cluster has a default (dp follows from the rest). */
export type LayoutRequest = Partial<Omit<ParallelLayout, 'dp'>> & { dp?: number };

export const DEFAULT_SEQ_LEN = 8192;
export const DEFAULT_GLOBAL_BATCH = 512;

/** A layout that breaks a rule; the message names the degree and the model field involved. */
export class LayoutError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('; '));
    this.name = 'LayoutError';
  }
}

export function worldSize(cluster: Cluster): number {
  return cluster.nodes * cluster.gpusPerNode;
}

/** Micro-batches each data-parallel replica runs per optimizer step. */
export function microBatchesPerStep(layout: ParallelLayout): number {
  return layout.globalBatch / (layout.microBatch * layout.dp);
}

/** The expert-data-parallel degree: ranks of one stage that hold the same experts. */
export function expertDataParallel(layout: ParallelLayout): number {
  return (layout.tp * layout.cp * layout.dp) / layout.ep;
}

/** Fills defaults (TP=PP=EP=CP=1, micro-batch 1, 8k tokens, global batch 512, no recompute, distributed optimizer) and derives DP. */
export function completeLayout(cluster: Cluster, request: LayoutRequest): ParallelLayout {
  const tp = request.tp ?? 1;
  const pp = request.pp ?? 1;
  const cp = request.cp ?? 1;
  const world = worldSize(cluster);
  const dp = request.dp ?? Math.max(1, Math.floor(world / (tp * pp * cp)));
  return {
    tp,
    pp,
    ep: request.ep ?? 1,
    cp,
    dp,
    microBatch: request.microBatch ?? 1,
    globalBatch: request.globalBatch ?? DEFAULT_GLOBAL_BATCH,
    seqLen: request.seqLen ?? DEFAULT_SEQ_LEN,
    recompute: request.recompute ?? 'none',
    distributedOptimizer: request.distributedOptimizer ?? true,
  };
}

function isPositiveInteger(n: number): boolean {
  return Number.isInteger(n) && n >= 1;
}

/** Every rule the layout breaks for this model on this cluster (empty when it is valid). */
export function layoutProblems(model: ModelSpec, cluster: Cluster, layout: ParallelLayout): string[] {
  const problems: string[] = [];
  const numeric: Array<[string, number]> = [
    ['nodes', cluster.nodes],
    ['gpus per node', cluster.gpusPerNode],
    ['TP', layout.tp],
    ['PP', layout.pp],
    ['EP', layout.ep],
    ['CP', layout.cp],
    ['DP', layout.dp],
    ['micro-batch', layout.microBatch],
    ['global batch', layout.globalBatch],
    ['sequence length', layout.seqLen],
  ];
  for (const [name, value] of numeric) if (!isPositiveInteger(value)) problems.push(`${name} ${value} is not a positive whole number`);
  if (problems.length) return problems;

  const world = worldSize(cluster);
  const { tp, pp, ep, cp, dp } = layout;
  if (tp * pp * cp * dp !== world)
    problems.push(`TP ${tp} x PP ${pp} x CP ${cp} x DP ${dp} = ${tp * pp * cp * dp} does not equal the ${world} GPUs (${cluster.nodes} nodes x ${cluster.gpusPerNode})`);

  const layers = flattenStack(model.stack);
  const blocks = [...layers.map((l) => ({ block: l.block, where: `layer ${l.index} (${l.block.kind})` })), ...(model.mtp?.blocks ?? []).map((block, j) => ({ block, where: `mtp layer ${j} (${block.kind})` }))];
  const reported = new Set<string>();
  const need = (where: string, field: string, value: number, divisor: number, label: string) => {
    const key = `${field}:${value}:${label}`;
    if (value % divisor === 0 || reported.has(key)) return;
    reported.add(key);
    problems.push(`${where}: ${field} ${value} is not a multiple of ${label} ${divisor}`);
  };
  let experts = 0;
  for (const { block, where } of blocks) {
    switch (block.kind) {
      case 'attention':
        need(where, 'heads', block.heads, tp, 'TP');
        need(where, 'kv_heads', block.kv_heads, tp, 'TP');
        break;
      case 'mamba2':
        need(where, 'heads', block.heads, tp * cp, cp > 1 ? 'TP x CP' : 'TP');
        need(where, 'groups', block.groups, tp, 'TP');
        break;
      case 'mlp':
        need(where, 'ffn', block.ffn, tp, 'TP');
        break;
      case 'moe':
        experts = block.experts;
        need(where, 'experts', block.experts, ep, 'EP');
        if (block.shared_experts > 0) need(where, 'shared_ffn', block.shared_ffn, tp, 'TP');
        break;
    }
  }
  if (ep > 1 && experts === 0) problems.push(`EP ${ep} needs MoE layers; the design has none`);
  if ((tp * cp * dp) % ep !== 0) problems.push(`EP ${ep} does not divide TP x CP x DP = ${tp * cp * dp} (the ranks of one pipeline stage)`);
  if (pp > layers.length) problems.push(`PP ${pp} exceeds the ${layers.length} layers`);
  if (cp > 1 && layout.seqLen % (2 * cp) !== 0) problems.push(`sequence length ${layout.seqLen} is not a multiple of 2 x CP = ${2 * cp}`);
  if (layout.globalBatch % (layout.microBatch * dp) !== 0)
    problems.push(`global batch ${layout.globalBatch} is not a multiple of micro-batch ${layout.microBatch} x DP ${dp} = ${layout.microBatch * dp}`);
  return problems;
}

/** Throws a LayoutError listing every problem when the layout is not valid. */
export function assertLayout(model: ModelSpec, cluster: Cluster, layout: ParallelLayout): void {
  const problems = layoutProblems(model, cluster, layout);
  if (problems.length) throw new LayoutError(problems);
}

/** Cuts (first layer index of stages 2..PP) that split `layerCount` layers into PP stages by count. */
export function balancedCuts(layerCount: number, pp: number): number[] {
  const cuts: number[] = [];
  const base = Math.floor(layerCount / pp);
  const extra = layerCount % pp;
  let start = 0;
  for (let s = 0; s < pp - 1; s++) {
    start += base + (s < extra ? 1 : 0);
    cuts.push(start);
  }
  return cuts;
}

export interface StagePlan {
  cuts: number[];
  /** Where the cuts came from: the document's own, or balanced because the document has none for this PP. */
  source: 'document' | 'balanced';
}

/** The pipeline cuts used for PP stages (see the header). */
export function stageCuts(model: ModelSpec, pp: number): StagePlan {
  if (pp <= 1) return { cuts: [], source: model.pipeline_cuts.length ? 'balanced' : 'document' };
  if (model.pipeline_cuts.length === pp - 1) return { cuts: [...model.pipeline_cuts], source: 'document' };
  return { cuts: balancedCuts(flattenStack(model.stack).length, pp), source: 'balanced' };
}

/** [first, end) layer ranges of each stage given its cuts. */
export function stageRanges(layerCount: number, cuts: readonly number[]): Array<{ first: number; end: number }> {
  const bounds = [0, ...cuts, layerCount];
  return bounds.slice(0, -1).map((first, s) => ({ first, end: bounds[s + 1]! }));
}
