// The cluster planner: for a design, a cluster (nodes x GPUs of a hardware.ts profile, with
// intra-node and inter-node link bandwidths) and a parallel layout, the memory each GPU of each
// pipeline stage needs with a fit verdict, and the estimated step time and tokens/s; `suggest`
// enumerates valid layouts and returns the fastest that fits.
//
// Memory per GPU of pipeline stage s (Megatron-Core mixed precision, every figure in bytes):
// - Parameters on the GPU, from the analytics' weight inventory (analytics/tensors.ts): routed-
//   expert tensors hold E/EP copies (expert tensor parallelism 1); the pre-norms, the router and its
//   expert bias, LatentMoE down/up projections and QK-norm weights are replicated; every other
//   tensor is split over TP. Stage 0 holds the vocab-parallel embedding (V x d / TP); the last stage
//   the LM head (V x d / TP, also when tied and PP > 1, where Megatron keeps a copy), the final norm
//   and the MTP modules (one when weights are shared).
// - weights 2 per parameter (BF16 model copy; 4 when the policy trains in fp32), gradients 4 (fp32
//   main grads), optimizer 12 (fp32 master + Adam m + v); with the distributed optimizer the 12 are
//   sharded over DP x CP for dense parameters and over the expert-data-parallel ranks
//   (TP x CP x DP / EP) for expert parameters.
// - Activations: per token and layer the analytics' training activation bytes
//   (memory.ts blockActivationBytes at the sequence length), split into `kv_state` (attention K and
//   V, 2 x kv_heads x head_dim x 2 bytes, and Mamba fp32 chunk states H x P x N x 4 / min(chunk, T))
//   and the rest. A micro-batch holds micro_batch x seq / CP tokens, divided by TP (sequence
//   parallelism shards them all). Under 1F1B, stage s keeps min(PP - s, m) micro-batches in flight
//   (1 without pipelining). Recompute selective (moe_act + layernorm) drops the pre-norm output (d)
//   of attention, MLP and MoE layers and the expert and shared-expert activation outputs; full keeps
//   only each layer's input (d) plus one layer's whole activations for the micro-batch being
//   recomputed, and no kv_state. The last stage adds the head (2 d of norms + 4 V fp32 logits per
//   token) and per MTP depth its blocks, its 2 d input and the head again, for one micro-batch.
// - Fits when the largest stage total is at most 90% of the device memory (the rest: CUDA context,
//   NCCL buffers, allocator fragmentation).
//
// Time (one optimizer step):
// - Compute per micro-batch of a stage = the roofline's training compute term of its layers
//   (analytics/roofline.ts: GEMMs at their resolved formats' rates, attention and SSD scan at the
//   BF16 tensor rate) for micro_batch x seq tokens, divided by TP x CP; the last stage adds the head
//   and MTP (training FLOPs at the BF16 rate). Memory traffic is not modeled (training micro-batches
//   are compute-bound).
// - Communication per micro-batch, not overlapped with compute: TP: 2 all-reduces per layer (forward
//   and backward; with sequence parallelism an all-gather + reduce-scatter pair moves the same
//   bytes) of tokens x d x 2 bytes, ring cost 2 (TP-1)/TP each. MoE all-to-all (EP > 1): per MoE
//   layer tokens/TP x top_k x width x 2 bytes x 2 (dispatch + combine) x 2 (forward + backward) x
//   (EP-1)/EP, where width is the latent size l with LatentMoE (smaller by d / l), else d. CP:
//   attention passes K and V around the ring, (CP-1) x tokens/TP x 2 kv_heads x head_dim x 2 bytes x 3
//   (forward, backward K/V and their gradients); Mamba layers swap sequence for head sharding with
//   all-to-alls of the in_proj output and the scan output, forward and backward, x (CP-1)/CP. PP:
//   the stage's output activations forward and their gradients backward, tokens/TP x d x 2 bytes each.
// - Recompute full multiplies the layers' compute by 4/3 (a second forward) and their TP/EP/CP
//   communication by 1.5 (the forward's collectives again); selective (norms and activations) is
//   counted as free compute, so at equal speed the planner prefers less recomputation.
// - Pipeline: step = (m + PP - 1) x the slowest stage's micro-batch time, so the bubble is
//   (PP-1)/(m+PP-1). Then the data-parallel gradient exchange of the stage with most parameters
//   (exposed): dense gradients over DP x CP ranks, expert gradients over the expert-data-parallel
//   ranks; all-reduce 2 (n-1)/n x 4 bytes per parameter, or with the distributed optimizer a
//   reduce-scatter of fp32 gradients and an all-gather of BF16 parameters, (n-1)/n x 6 bytes. Then
//   the optimizer update, 28 bytes per locally owned parameter at the HBM bandwidth.
// - Links: a collective runs at the intra-node bandwidth when its group fits in one node (TP:
//   TP <= G; CP: TP x CP <= G; EP ranks are consecutive: EP <= G; DP: TP x CP x DP <= G; PP: the
//   stages share a node when the world fits in one node), else at the inter-node bandwidth.
//
// Not here: the FLOP, activation and weight conventions (engine/spec/analytics/*), layout rules
// (layout.ts), Megatron flags (launch-args.ts).
import { type Block, type ModelSpec, flattenStack } from '../document.js';
import { type HardwareProfile, type RateSource, bandwidth, gemmRate, hardwareProfile } from '../hardware.js';
import { countFlops } from '../analytics/flops.js';
import { blockActivationBytes } from '../analytics/memory.js';
import { estimateRoofline } from '../analytics/roofline.js';
import { blockTensors, embeddingTensor, mambaInner, mtpFrameTensors, tensorElements, type WeightTensor } from '../analytics/tensors.js';
import { resolvePrecision } from '../precision.js';
import {
  type Cluster,
  type ParallelLayout,
  type Recompute,
  RECOMPUTE_MODES,
  expertDataParallel,
  layoutProblems,
  microBatchesPerStep,
  stageCuts,
  stageRanges,
  worldSize,
} from './layout.js';

/** Per-GPU link bandwidths in bytes/s, one direction. */
export interface Links {
  intraNode: number;
  interNode: number;
}

const GB = 1e9;
/** NVLink per GPU per direction (H100/H200: NVLink 4, 450 GB/s; B200: NVLink 5, 900 GB/s); one 400 Gb/s NIC per GPU (50 GB/s) between nodes. */
export const DEFAULT_LINKS: Readonly<Record<string, Links>> = {
  h100: { intraNode: 450 * GB, interNode: 50 * GB },
  h200: { intraNode: 450 * GB, interNode: 50 * GB },
  b200: { intraNode: 900 * GB, interNode: 50 * GB },
  cpu: { intraNode: 10 * GB, interNode: 1.25 * GB },
};

export const USABLE_MEMORY_FRACTION = 0.9;
const BF16 = 2;
const FP32 = 4;
const GRAD_BYTES = 4;
const OPTIMIZER_BYTES = 12;
const OPTIMIZER_TRAFFIC_BYTES = 28;

export interface PlanRequest {
  cluster: Cluster;
  /** hardware.ts profile id. */
  gpu: string;
  links?: Links;
  layout: ParallelLayout;
  rates?: RateSource;
}

export interface StageMemory {
  stage: number;
  first_layer: number;
  end_layer: number;
  /** Parameters this GPU holds that are not routed experts, and that are. */
  dense_params: number;
  expert_params: number;
  weight_bytes: number;
  gradient_bytes: number;
  optimizer_bytes: number;
  activation_bytes: number;
  kv_state_bytes: number;
  total_bytes: number;
  microbatches_in_flight: number;
}

export interface StageTime {
  stage: number;
  compute_s: number;
  tp_s: number;
  ep_s: number;
  cp_s: number;
  pp_s: number;
  /** Per micro-batch: compute + all communication. */
  microbatch_s: number;
}

export interface Plan {
  gpu: string;
  cluster: Cluster;
  world: number;
  links: Links;
  layout: ParallelLayout;
  microbatches: number;
  cuts: number[];
  memory: { stages: StageMemory[]; peak_bytes: number; capacity_bytes: number; usable_bytes: number; fits: boolean };
  time: {
    stages: StageTime[];
    bubble_fraction: number;
    pipeline_s: number;
    dp_s: number;
    optimizer_s: number;
    step_s: number;
    tokens_per_step: number;
    tokens_per_s: number;
  };
}

export class PlanError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('; '));
    this.name = 'PlanError';
  }
}

// ---------------------------------------------------------------------------------------------
// Parameters per GPU
// ---------------------------------------------------------------------------------------------

const REPLICATED_NAMES = new Set(['norm', 'router.expert_bias', 'q_norm', 'k_norm', 'latent_down.bias', 'latent_up.bias', 'enorm', 'hnorm', 'final_norm']);

/** How a tensor is split over the GPUs of a stage (see the header). */
export function tensorSharding(t: WeightTensor): 'expert' | 'replicated' | 'tensor-parallel' {
  if (t.routed) return 'expert';
  if (REPLICATED_NAMES.has(t.name) || t.role === 'moe.router' || t.role === 'moe.latent_down' || t.role === 'moe.latent_up') return 'replicated';
  return 'tensor-parallel';
}

interface ParamSplit {
  dense: number;
  expert: number;
}

function tensorsOnGpu(tensors: WeightTensor[], tp: number, ep: number, multiplier = 1): ParamSplit {
  const out = { dense: 0, expert: 0 };
  for (const t of tensors) {
    const n = tensorElements(t) * t.copies * multiplier;
    const sharding = tensorSharding(t);
    if (sharding === 'expert') out.expert += n / ep;
    else if (sharding === 'replicated') out.dense += n;
    else out.dense += n / tp;
  }
  return out;
}

function addSplit(a: ParamSplit, b: ParamSplit): ParamSplit {
  return { dense: a.dense + b.dense, expert: a.expert + b.expert };
}

/** Parameters one GPU of each stage holds. */
export function stageParams(model: ModelSpec, layout: ParallelLayout, cuts: readonly number[]): ParamSplit[] {
  const layers = flattenStack(model.stack);
  const d = model.d_model;
  const ranges = stageRanges(layers.length, cuts);
  const vocabShard = tensorElements(embeddingTensor(model)) / layout.tp;
  return ranges.map((range, s) => {
    let split: ParamSplit = { dense: 0, expert: 0 };
    for (const layer of layers.slice(range.first, range.end)) split = addSplit(split, tensorsOnGpu(blockTensors(layer.block, d), layout.tp, layout.ep));
    if (s === 0) split.dense += vocabShard;
    if (s === ranges.length - 1) {
      const headOwnCopy = !model.tie_embeddings || ranges.length > 1;
      if (headOwnCopy) split.dense += vocabShard;
      split.dense += d; // final norm
      if (model.mtp) {
        const modules = model.mtp.shared_weights ? 1 : model.mtp.depth;
        split = addSplit(split, tensorsOnGpu(mtpFrameTensors(model), layout.tp, layout.ep, modules));
        for (const block of model.mtp.blocks) split = addSplit(split, tensorsOnGpu(blockTensors(block, d), layout.tp, layout.ep, modules));
      }
    }
    return split;
  });
}

// ---------------------------------------------------------------------------------------------
// Activations per token (before the TP split)
// ---------------------------------------------------------------------------------------------

/** Bytes per token of attention K/V and Mamba fp32 chunk states a layer saves for backward. */
export function kvStateBytesPerToken(block: Block, seqLen: number): number {
  if (block.kind === 'attention') return 2 * block.kv_heads * block.head_dim * BF16;
  if (block.kind === 'mamba2') return (block.heads * block.head_dim * block.d_state * FP32) / Math.min(block.chunk, seqLen);
  return 0;
}

/** Bytes per token selective recomputation (moe_act + layernorm) does not keep. */
export function selectiveSavingsPerToken(block: Block, d: number): number {
  if (block.kind === 'mamba2') return 0;
  let elements = d; // the pre-norm output of attention, MLP and MoE layers
  if (block.kind === 'moe') elements += block.top_k * block.expert_ffn + block.shared_experts * block.shared_ffn;
  return elements * BF16;
}

interface LayerCosts {
  block: Block;
  full: number;
  kvState: number;
  selectiveSavings: number;
}

function layerCosts(model: ModelSpec, seqLen: number): LayerCosts[] {
  const d = model.d_model;
  return flattenStack(model.stack).map((l) => ({
    block: l.block,
    full: blockActivationBytes(l.block, d, seqLen),
    kvState: kvStateBytesPerToken(l.block, seqLen),
    selectiveSavings: selectiveSavingsPerToken(l.block, d),
  }));
}

/** Activation and kv/state bytes per token of a stage's layers for one micro-batch, by recompute mode. */
function stageActivationPerToken(costs: LayerCosts[], d: number, recompute: Recompute): { activation: number; kvState: number; working: number } {
  if (recompute === 'full') {
    return { activation: costs.length * d * BF16, kvState: 0, working: Math.max(0, ...costs.map((c) => c.full)) };
  }
  let activation = 0;
  let kvState = 0;
  for (const c of costs) {
    kvState += c.kvState;
    activation += c.full - c.kvState - (recompute === 'selective' ? c.selectiveSavings : 0);
  }
  return { activation, kvState, working: 0 };
}

/** Head and MTP activation bytes per token on the last stage. */
function tailActivationPerToken(model: ModelSpec, seqLen: number): number {
  const d = model.d_model;
  const head = 2 * d * BF16 + FP32 * model.vocab_size;
  let mtp = 0;
  if (model.mtp) {
    const blocks = model.mtp.blocks.reduce((a, b) => a + blockActivationBytes(b, d, seqLen), 0);
    mtp = model.mtp.depth * (blocks + 2 * d * BF16 + head);
  }
  return head + mtp;
}

// ---------------------------------------------------------------------------------------------
// The plan
// ---------------------------------------------------------------------------------------------

function trainsInFp32(model: ModelSpec): boolean {
  return model.precision.default === 'fp32' && resolvePrecision(model).rows.every((r) => r.formats.fprop === 'fp32');
}

function ringAllReduce(bytes: number, n: number, bw: number): number {
  return n <= 1 ? 0 : (2 * (n - 1) * bytes) / n / bw;
}

/** Precomputed per-model figures shared by every layout with the same micro-batch and sequence length. */
interface ModelCosts {
  layers: LayerCosts[];
  /** Roofline training compute seconds of each main layer and the head for micro_batch x seq tokens on one GPU. */
  layerCompute: number[];
  headCompute: number;
  mtpCompute: number;
}

const costCache = new WeakMap<ModelSpec, Map<string, ModelCosts>>();

function modelCosts(model: ModelSpec, hw: HardwareProfile, rates: RateSource, microBatch: number, seqLen: number): ModelCosts {
  const key = `${hw.id}:${rates}:${microBatch}:${seqLen}`;
  let perModel = costCache.get(model);
  if (!perModel) costCache.set(model, (perModel = new Map()));
  const cached = perModel.get(key);
  if (cached) return cached;
  const table = resolvePrecision(model);
  const roofline = estimateRoofline(model, table, hw, { context: seqLen, batch: microBatch, rates });
  const rows = roofline.train.rows;
  const flops = countFlops(model, seqLen);
  const tokens = microBatch * seqLen;
  const costs: ModelCosts = {
    layers: layerCosts(model, seqLen),
    layerCompute: rows.filter((r) => r.index >= 0).map((r) => r.compute_s),
    headCompute: rows.find((r) => r.index === -1)?.compute_s ?? 0,
    mtpCompute: flops.mtp ? (flops.mtp.training_per_token * tokens) / gemmRate(hw, 'bf16', rates) : 0,
  };
  perModel.set(key, costs);
  return costs;
}

/** Memory and time of one layout; throws PlanError when the layout breaks a rule. */
export function planLayout(model: ModelSpec, request: PlanRequest): Plan {
  const { cluster, layout } = request;
  const problems = layoutProblems(model, cluster, layout);
  if (problems.length) throw new PlanError(problems);
  const hw = hardwareProfile(request.gpu);
  const links = request.links ?? DEFAULT_LINKS[hw.id] ?? DEFAULT_LINKS.h100!;
  const rates = request.rates ?? 'datasheet';
  const G = cluster.gpusPerNode;
  const world = worldSize(cluster);
  const { tp, pp, ep, cp, dp } = layout;
  const d = model.d_model;
  const m = microBatchesPerStep(layout);
  const { cuts } = stageCuts(model, pp);
  const ranges = stageRanges(flattenStack(model.stack).length, cuts);
  const costs = modelCosts(model, hw, rates, layout.microBatch, layout.seqLen);
  const params = stageParams(model, layout, cuts);
  const weightBytesPerParam = trainsInFp32(model) ? FP32 : BF16;
  const edp = expertDataParallel(layout);
  const tokensPerGpu = (layout.microBatch * layout.seqLen) / cp / tp;

  const stagesMemory: StageMemory[] = ranges.map((range, s) => {
    const p = params[s]!;
    const total = p.dense + p.expert;
    const optimizerParams = layout.distributedOptimizer ? p.dense / (dp * cp) + p.expert / edp : total;
    const inFlight = pp > 1 ? Math.min(pp - s, m) : 1;
    const stageLayers = costs.layers.slice(range.first, range.end);
    const perToken = stageActivationPerToken(stageLayers, d, layout.recompute);
    const tail = s === ranges.length - 1 ? tailActivationPerToken(model, layout.seqLen) : 0;
    const activation = tokensPerGpu * (inFlight * perToken.activation + perToken.working + tail);
    const kvState = tokensPerGpu * inFlight * perToken.kvState;
    const weight = total * weightBytesPerParam;
    const gradient = total * GRAD_BYTES;
    const optimizer = optimizerParams * OPTIMIZER_BYTES;
    return {
      stage: s,
      first_layer: range.first,
      end_layer: range.end,
      dense_params: p.dense,
      expert_params: p.expert,
      weight_bytes: weight,
      gradient_bytes: gradient,
      optimizer_bytes: optimizer,
      activation_bytes: activation,
      kv_state_bytes: kvState,
      total_bytes: weight + gradient + optimizer + activation + kvState,
      microbatches_in_flight: inFlight,
    };
  });
  const peak = Math.max(...stagesMemory.map((s) => s.total_bytes));
  const usable = USABLE_MEMORY_FRACTION * hw.memory_bytes;

  const intraOr = (fits: boolean) => (fits ? links.intraNode : links.interNode);
  const bwTp = intraOr(tp <= G);
  const bwCp = intraOr(tp * cp <= G);
  const bwEp = intraOr(ep <= G);
  const bwDp = intraOr(tp * cp * dp <= G);
  const bwPp = intraOr(world <= G);
  const tokensMb = (layout.microBatch * layout.seqLen) / cp; // tokens of one micro-batch on one CP rank (before TP)

  const layerComm = (block: Block) => {
    let tpS = 0;
    let epS = 0;
    let cpS = 0;
    if (tp > 1) tpS = 2 * ringAllReduce(tokensMb * d * BF16, tp, bwTp);
    if (block.kind === 'moe' && ep > 1) {
      const width = block.latent ?? d;
      epS = ((tokensMb / tp) * block.top_k * width * BF16 * 2 * 2 * (ep - 1)) / ep / bwEp;
    }
    if (cp > 1 && block.kind === 'attention') cpS = ((cp - 1) * (tokensMb / tp) * 2 * block.kv_heads * block.head_dim * BF16 * 3) / bwCp;
    if (cp > 1 && block.kind === 'mamba2') {
      const inner = mambaInner(block);
      const inProjOut = 2 * inner + 2 * block.groups * block.d_state + block.heads;
      cpS = ((tokensMb / tp) * (inProjOut + inner) * BF16 * 2 * (cp - 1)) / cp / bwCp;
    }
    return { tpS, epS, cpS };
  };

  const stagesTime: StageTime[] = ranges.map((range, s) => {
    let compute = 0;
    let tpS = 0;
    let epS = 0;
    let cpS = 0;
    // Full recomputation runs every layer's forward again in the backward: training compute goes
    // from 3 to 4 forwards and the forward's TP/EP/CP collectives (half of them) run twice.
    const redo = layout.recompute === 'full' ? { compute: 4 / 3, comm: 1.5 } : { compute: 1, comm: 1 };
    for (let i = range.first; i < range.end; i++) {
      compute += costs.layerCompute[i]! * redo.compute;
      const c = layerComm(costs.layers[i]!.block);
      tpS += c.tpS * redo.comm;
      epS += c.epS * redo.comm;
      cpS += c.cpS * redo.comm;
    }
    if (s === ranges.length - 1) {
      compute += costs.headCompute + costs.mtpCompute;
      for (const block of model.mtp ? model.mtp.blocks : []) {
        const c = layerComm(block);
        tpS += c.tpS * model.mtp!.depth;
        epS += c.epS * model.mtp!.depth;
        cpS += c.cpS * model.mtp!.depth;
      }
    }
    compute /= tp * cp;
    const ppS = pp > 1 ? (2 * (tokensMb / tp) * d * BF16) / bwPp : 0;
    return { stage: s, compute_s: compute, tp_s: tpS, ep_s: epS, cp_s: cpS, pp_s: ppS, microbatch_s: compute + tpS + epS + cpS + ppS };
  });
  const slowest = Math.max(...stagesTime.map((t) => t.microbatch_s));
  const pipeline = (m + pp - 1) * slowest;

  // Data-parallel exchange and optimizer update of the stage with the most parameters.
  const heaviest = params.reduce((a, b) => (a.dense + a.expert >= b.dense + b.expert ? a : b));
  const denseRanks = dp * cp;
  const exchange = (paramsOnGpu: number, ranks: number, bw: number) => {
    if (ranks <= 1) return 0;
    return layout.distributedOptimizer ? ((ranks - 1) / ranks) * paramsOnGpu * (GRAD_BYTES + BF16) / bw : ringAllReduce(paramsOnGpu * GRAD_BYTES, ranks, bw);
  };
  const bwEdp = intraOr(tp * cp * dp <= G);
  const dpS = exchange(heaviest.dense, denseRanks, bwDp) + exchange(heaviest.expert, edp, bwEdp);
  const owned = layout.distributedOptimizer ? heaviest.dense / denseRanks + heaviest.expert / edp : heaviest.dense + heaviest.expert;
  const optimizerS = (owned * OPTIMIZER_TRAFFIC_BYTES) / bandwidth(hw, rates);
  const step = pipeline + dpS + optimizerS;
  const tokensPerStep = layout.globalBatch * layout.seqLen;
  return {
    gpu: hw.id,
    cluster,
    world,
    links,
    layout,
    microbatches: m,
    cuts,
    memory: { stages: stagesMemory, peak_bytes: peak, capacity_bytes: hw.memory_bytes, usable_bytes: usable, fits: peak <= usable },
    time: {
      stages: stagesTime,
      bubble_fraction: (pp - 1) / (m + pp - 1),
      pipeline_s: pipeline,
      dp_s: dpS,
      optimizer_s: optimizerS,
      step_s: step,
      tokens_per_step: tokensPerStep,
      tokens_per_s: tokensPerStep / step,
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Suggestions
// ---------------------------------------------------------------------------------------------

export interface SuggestRequest {
  cluster: Cluster;
  gpu: string;
  links?: Links;
  seqLen: number;
  globalBatch: number;
  rates?: RateSource;
}

export interface Suggestion {
  best: Plan | null;
  /** Valid layouts evaluated, and how many of them fit. */
  considered: number;
  fitting: number;
  /** The fitting plans, fastest first (at most 10). */
  ranking: Plan[];
}

function divisors(n: number): number[] {
  const out: number[] = [];
  for (let k = 1; k <= n; k++) if (n % k === 0) out.push(k);
  return out;
}

const MICRO_BATCHES = [1, 2, 4, 8];
const MAX_TP = 8;
const MAX_CP = 8;
const MAX_PP = 16;

/** Enumerates valid layouts for the cluster and returns the fastest that fits (ties: less memory). */
export function suggest(model: ModelSpec, request: SuggestRequest): Suggestion {
  const world = worldSize(request.cluster);
  const layers = flattenStack(model.stack).length;
  const experts = Math.max(0, ...[...flattenStack(model.stack).map((l) => l.block), ...(model.mtp?.blocks ?? [])].map((b) => (b.kind === 'moe' ? b.experts : 0)));
  const plans: Plan[] = [];
  let considered = 0;
  for (const tp of divisors(world).filter((t) => t <= Math.min(MAX_TP, request.cluster.gpusPerNode)))
    for (const pp of divisors(world / tp).filter((p) => p <= Math.min(MAX_PP, layers)))
      for (const cp of divisors(world / (tp * pp)).filter((c) => c <= MAX_CP)) {
        const dp = world / (tp * pp * cp);
        const eps = experts > 0 ? divisors(experts).filter((e) => (tp * cp * dp) % e === 0) : [1];
        for (const ep of eps)
          for (const microBatch of MICRO_BATCHES)
            for (const recompute of RECOMPUTE_MODES)
              for (const distributedOptimizer of [true, false]) {
                const layout: ParallelLayout = { tp, pp, ep, cp, dp, microBatch, globalBatch: request.globalBatch, seqLen: request.seqLen, recompute, distributedOptimizer };
                if (layoutProblems(model, request.cluster, layout).length) continue;
                considered++;
                const plan = planLayout(model, { cluster: request.cluster, gpu: request.gpu, links: request.links, layout, rates: request.rates });
                if (plan.memory.fits) plans.push(plan);
              }
      }
  // Equal speed: prefer less recomputation (selective costs no modeled FLOPs), then less memory.
  const recomputeRank = (p: Plan) => RECOMPUTE_MODES.indexOf(p.layout.recompute);
  plans.sort((a, b) => b.time.tokens_per_s - a.time.tokens_per_s || recomputeRank(a) - recomputeRank(b) || a.memory.peak_bytes - b.memory.peak_bytes);
  return { best: plans[0] ?? null, considered, fitting: plans.length, ranking: plans.slice(0, 10) };
}
