// `strata plan INPUT --nodes N --gpus-per-node G [--gpu ID] [layout options] [--json]`: the cluster
// planner for a design (a Strata document, a template name or an HF config.json). With any layout
// option (--tp --pp --ep --cp --micro-batch --recompute --no-distributed-optimizer) it evaluates that
// layout; without, it searches every valid layout and prints the fastest that fits. Prints memory per
// GPU per pipeline stage with the fit verdict, step time and tokens/s, or with --json the Plan object.
// Exit 2 when the layout is invalid or nothing fits (with --json the object is still printed).
//
// Also exports the option parsing `strata export-megatron` shares (cluster and layout flags).
// Not here: the estimates (engine/spec/megatron/planner.ts), layout rules (engine/spec/megatron/layout.ts).
import { HARDWARE_IDS } from '../../spec/hardware.js';
import { type Cluster, type LayoutRequest, RECOMPUTE_MODES, type Recompute, completeLayout, DEFAULT_GLOBAL_BATCH, DEFAULT_SEQ_LEN } from '../../spec/megatron/layout.js';
import { type Links, type Plan, DEFAULT_LINKS, PlanError, planLayout, suggest } from '../../spec/megatron/planner.js';
import { parseCommandArgs } from '../args.js';
import { CliError, EXIT_BAD_INPUT } from '../errors.js';
import { type CliIO } from '../io.js';
import { loadModelInput } from '../load-input.js';

/** Options every cluster-aware command accepts (node:util parseArgs form). */
export const LAYOUT_OPTIONS = {
  nodes: { type: 'string' },
  'gpus-per-node': { type: 'string' },
  tp: { type: 'string' },
  pp: { type: 'string' },
  ep: { type: 'string' },
  cp: { type: 'string' },
  'micro-batch': { type: 'string' },
  'global-batch': { type: 'string' },
  'seq-len': { type: 'string' },
  recompute: { type: 'string' },
  'no-distributed-optimizer': { type: 'boolean' },
} as const;

export const LAYOUT_HELP = `  --nodes N                 nodes in the cluster (default 1)
  --gpus-per-node G         GPUs per node (default 8)
  --tp --pp --ep --cp N     tensor, pipeline, expert and context parallel sizes (DP follows)
  --micro-batch N           sequences per micro-batch (default 1)
  --global-batch N          sequences per optimizer step (default ${DEFAULT_GLOBAL_BATCH})
  --seq-len N               tokens per sequence (default ${DEFAULT_SEQ_LEN}; k suffix allowed: 8k)
  --recompute MODE          activation recomputation: ${RECOMPUTE_MODES.join(', ')} (default none)
  --no-distributed-optimizer  keep the whole optimizer state on every data-parallel rank`;

type LayoutValues = { [K in keyof typeof LAYOUT_OPTIONS]?: (typeof LAYOUT_OPTIONS)[K]['type'] extends 'boolean' ? boolean : string };

/** `8192` or `8k` (k = 1024) as a token count; throws a CliError naming the command and option. */
export function parseSeqLen(command: string, text: string): number {
  const match = /^(\d+)([kK]?)$/.exec(text.trim());
  const value = match ? Number(match[1]) * (match[2] ? 1024 : 1) : 0;
  if (value < 1) throw new CliError(`${command}: --seq-len ${JSON.stringify(text)} is not a positive whole number of tokens (e.g. 4096, 8k)`);
  return value;
}

function positiveInt(command: string, option: string, text: string): number {
  if (!/^\d+$/.test(text.trim()) || Number(text) < 1) throw new CliError(`${command}: --${option} ${JSON.stringify(text)} is not a positive whole number`);
  return Number(text);
}

/** The cluster and the layout fields the user gave (absent ones stay undefined). */
export function parseLayoutOptions(command: string, values: LayoutValues): { cluster: Cluster; request: LayoutRequest; explicit: boolean } {
  const int = (option: keyof LayoutValues) => {
    const v = values[option];
    return typeof v === 'string' ? positiveInt(command, option, v) : undefined;
  };
  const cluster: Cluster = { nodes: int('nodes') ?? 1, gpusPerNode: int('gpus-per-node') ?? 8 };
  const recompute = values.recompute;
  if (recompute !== undefined && !(RECOMPUTE_MODES as readonly string[]).includes(recompute))
    throw new CliError(`${command}: --recompute ${recompute} is not one of ${RECOMPUTE_MODES.join(', ')}`);
  const request: LayoutRequest = {
    tp: int('tp'),
    pp: int('pp'),
    ep: int('ep'),
    cp: int('cp'),
    microBatch: int('micro-batch'),
    globalBatch: int('global-batch'),
    seqLen: values['seq-len'] !== undefined ? parseSeqLen(command, values['seq-len']) : undefined,
    recompute: recompute as Recompute | undefined,
    distributedOptimizer: values['no-distributed-optimizer'] ? false : undefined,
  };
  const explicit = ['tp', 'pp', 'ep', 'cp', 'micro-batch', 'recompute', 'no-distributed-optimizer'].some((k) => values[k as keyof LayoutValues] !== undefined);
  return { cluster, request, explicit };
}

const HELP = `usage: strata plan INPUT [--nodes N] [--gpus-per-node G] [--gpu ID] [layout options] [--json]

Memory per GPU per pipeline stage, step time and tokens/s of training a design with Megatron-LM.
Without layout options it searches every valid layout and shows the fastest that fits.
INPUT is a Strata document, a template name, or an HF config.json.
${LAYOUT_HELP}
  --gpu ID                  ${HARDWARE_IDS.join(', ')} (default h100)
  --intra-bw GB/s           per-GPU bandwidth inside a node (default: NVLink of the GPU)
  --inter-bw GB/s           per-GPU bandwidth between nodes (default 50)
  --json                    print the plan as one JSON object
`;

const GIB = 1024 ** 3;
const gib = (bytes: number) => `${(bytes / GIB).toFixed(1)}`;

/** The plan as aligned text. */
export function renderPlan(plan: Plan, heading: string): string {
  const l = plan.layout;
  const rows = [['stage', 'layers', 'params', 'weights', 'grads', 'optim', 'activ', 'kv/state', 'total GiB', 'in flight']];
  for (const s of plan.memory.stages)
    rows.push([
      String(s.stage),
      `${s.first_layer}-${s.end_layer - 1}`,
      `${((s.dense_params + s.expert_params) / 1e9).toFixed(2)}B`,
      gib(s.weight_bytes),
      gib(s.gradient_bytes),
      gib(s.optimizer_bytes),
      gib(s.activation_bytes),
      gib(s.kv_state_bytes),
      gib(s.total_bytes),
      String(s.microbatches_in_flight),
    ]);
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  const table = rows.map((r) => r.map((cell, c) => (c < 2 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ')).join('\n');
  const t = plan.time;
  const slowest = t.stages.reduce((a, b) => (b.microbatch_s > a.microbatch_s ? b : a));
  return [
    heading,
    `cluster   ${plan.cluster.nodes} x ${plan.cluster.gpusPerNode} ${plan.gpu} (${plan.world} GPUs), links ${plan.links.intraNode / 1e9} GB/s in a node, ${plan.links.interNode / 1e9} GB/s between`,
    `layout    TP ${l.tp}  PP ${l.pp}  EP ${l.ep}  CP ${l.cp}  DP ${l.dp}  micro-batch ${l.microBatch}  global batch ${l.globalBatch}  seq ${l.seqLen}  recompute ${l.recompute}  dist-opt ${l.distributedOptimizer ? 'on' : 'off'}`,
    `pipeline  ${plan.microbatches} micro-batches per step, cuts ${plan.cuts.length ? plan.cuts.join(', ') : 'none'}, bubble ${(100 * t.bubble_fraction).toFixed(1)}%`,
    '',
    table,
    '',
    `memory    peak ${gib(plan.memory.peak_bytes)} GiB of ${gib(plan.memory.usable_bytes)} GiB usable (${gib(plan.memory.capacity_bytes)} GiB device): ${plan.memory.fits ? 'fits' : 'does NOT fit'}`,
    `time      slowest stage ${slowest.stage}: compute ${(1e3 * slowest.compute_s).toFixed(1)} ms, TP ${(1e3 * slowest.tp_s).toFixed(1)} ms, EP ${(1e3 * slowest.ep_s).toFixed(1)} ms, CP ${(1e3 * slowest.cp_s).toFixed(1)} ms, PP ${(1e3 * slowest.pp_s).toFixed(1)} ms per micro-batch`,
    `          pipeline ${t.pipeline_s.toFixed(3)} s + DP ${t.dp_s.toFixed(3)} s + optimizer ${t.optimizer_s.toFixed(3)} s = step ${t.step_s.toFixed(3)} s`,
    `throughput ${Math.round(t.tokens_per_s).toLocaleString('en-US')} tokens/s (${t.tokens_per_step.toLocaleString('en-US')} tokens per step)`,
    '',
  ].join('\n');
}

function parseBandwidth(option: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0) throw new CliError(`plan: --${option} ${JSON.stringify(text)} is not a positive bandwidth in GB/s`);
  return value * 1e9;
}

export async function run(argv: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseCommandArgs('plan', argv, {
    ...LAYOUT_OPTIONS,
    gpu: { type: 'string' },
    'intra-bw': { type: 'string' },
    'inter-bw': { type: 'string' },
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    io.stdout(HELP);
    return 0;
  }
  if (positionals.length !== 1) throw new CliError(`plan: expected one INPUT, got ${positionals.length} (see strata plan --help)`);
  const gpu = (values.gpu ?? 'h100').toLowerCase();
  if (!HARDWARE_IDS.includes(gpu)) throw new CliError(`plan: --gpu ${values.gpu} is not one of ${HARDWARE_IDS.join(', ')}`);
  const defaults = DEFAULT_LINKS[gpu]!;
  const links: Links = {
    intraNode: parseBandwidth('intra-bw', values['intra-bw']) ?? defaults.intraNode,
    interNode: parseBandwidth('inter-bw', values['inter-bw']) ?? defaults.interNode,
  };
  const { cluster, request, explicit } = parseLayoutOptions('plan', values);
  const input = loadModelInput(positionals[0]!, io);
  const model = input.doc.model;
  const where = input.file ?? positionals[0]!;
  for (const note of input.notes) io.stderr(`strata: note: ${note}\n`);

  if (explicit) {
    const layout = completeLayout(cluster, request);
    let plan: Plan;
    try {
      plan = planLayout(model, { cluster, gpu, links, layout });
    } catch (error) {
      if (error instanceof PlanError) throw new CliError(`plan: ${where}: the layout does not work: ${error.problems.join('; ')}`);
      throw error;
    }
    io.stdout(values.json ? `${JSON.stringify(plan, null, 2)}\n` : renderPlan(plan, `${model.name}: the requested layout`));
    return plan.memory.fits ? 0 : EXIT_BAD_INPUT;
  }
  const seqLen = request.seqLen ?? DEFAULT_SEQ_LEN;
  const globalBatch = request.globalBatch ?? DEFAULT_GLOBAL_BATCH;
  const found = suggest(model, { cluster, gpu, links, seqLen, globalBatch });
  if (values.json) {
    io.stdout(`${JSON.stringify({ considered: found.considered, fitting: found.fitting, best: found.best }, null, 2)}\n`);
  } else if (found.best) {
    io.stdout(renderPlan(found.best, `${model.name}: fastest of ${found.fitting} fitting layouts (${found.considered} valid)`));
  }
  if (!found.best) {
    io.stderr(`strata: plan: ${where}: none of the ${found.considered} valid layouts fits in ${gpu} memory on ${cluster.nodes} x ${cluster.gpusPerNode} GPUs (more GPUs, a bigger GPU, shorter sequences or a smaller global batch)\n`);
    return EXIT_BAD_INPUT;
  }
  return 0;
}
