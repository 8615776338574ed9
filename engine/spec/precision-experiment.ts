// The NVFP4 pretraining paper's small experiment, as data: the arms (same design, data and seed;
// BF16, NVFP4 with the Nemotron 3 recipe's exceptions, NVFP4 without exceptions), the designs each
// arm trains, and the summary of finished runs: final training loss, held-out loss, relative loss gap
// to BF16, and where NVFP4 flushes most values to zero (from the engine's `precision` events).
// Pure TypeScript: the command (engine/cli/commands/precision-experiment.ts) runs the training jobs
// and writes the report. Not here: training, policy resolution (precision.ts), inspection (precision-inspect.ts).
import type { StrataDocument } from './document.js';
import { type PresetName, PRESETS, presetPolicy } from './precision.js';
import type { PrecisionEvent } from './precision-inspect.js';

export interface ExperimentArm {
  id: string;
  preset: PresetName;
  title: string;
}

export const EXPERIMENT_ARMS: readonly ExperimentArm[] = [
  { id: 'bf16', preset: 'bf16', title: 'BF16' },
  { id: 'nvfp4-recipe', preset: 'nemotron3-nvfp4', title: 'NVFP4, Nemotron 3 recipe' },
  { id: 'nvfp4-all', preset: 'nvfp4-all', title: 'NVFP4, no exceptions' },
];

export interface ExperimentSettings {
  steps: number;
  batch: number;
  seqLen: number;
  seed: number;
  /** Training steps between inspections (the engine inspects on evaluation steps). */
  inspectEvery: number;
}

/** The document one arm trains: the design with the arm's preset policy and the shared settings. */
export function armDocument(base: StrataDocument, arm: ExperimentArm, settings: ExperimentSettings): StrataDocument {
  const doc = structuredClone(base);
  doc.model.precision = presetPolicy(arm.preset);
  Object.assign(doc.pipeline.training, {
    steps: settings.steps,
    batch_size: settings.batch,
    seq_len: settings.seqLen,
    seed: settings.seed,
    eval_every: settings.inspectEvery,
    checkpoint_every: 0,
    warmup_steps: Math.min(doc.pipeline.training.warmup_steps, Math.max(1, Math.floor(settings.steps / 10))),
  });
  return doc;
}

export interface ArmEvents {
  arm: ExperimentArm;
  /** Losses of the `step` events, in order. */
  stepLosses: number[];
  /** Losses of the `eval` events, in order. */
  evalLosses: number[];
  precision: PrecisionEvent[];
}

export interface ArmSummary {
  arm: ExperimentArm;
  steps: number;
  /** Mean training loss over the last `tail` steps (smooths batch noise). */
  finalLoss: number;
  tail: number;
  evalLoss: number | null;
  /** (loss - loss_bf16) / loss_bf16, for training and held-out loss; 0 for the BF16 arm. */
  gap: number;
  evalGap: number | null;
  /** Share of nonzero NVFP4 operand values flushed to zero over the last inspected step. */
  nvfp4Underflow: number | null;
}

export interface LayerUnderflow {
  layer: number;
  role: string;
  pass: string;
  operand: string;
  underflow: number;
}

export interface ExperimentSummary {
  arms: ArmSummary[];
  /** Per NVFP4 arm: its (layer, role, pass, operand) records with the most underflow. */
  worst: Record<string, LayerUnderflow[]>;
  /** Per NVFP4 arm and main-stack layer: element-weighted underflow of its NVFP4 operands. */
  byLayer: Record<string, Array<{ layer: number; underflow: number }>>;
}

function lastStepEvents(events: PrecisionEvent[]): PrecisionEvent[] {
  if (events.length === 0) return [];
  const step = Math.max(...events.map((e) => e.step));
  return events.filter((e) => e.step === step);
}

/** Element-weighted underflow share of NVFP4 records (nonzero counts are not in events: elements weigh). */
function weightedUnderflow(events: PrecisionEvent[]): number | null {
  const nvfp4 = events.filter((e) => e.format === 'nvfp4');
  const total = nvfp4.reduce((sum, e) => sum + e.elements, 0);
  return total > 0 ? nvfp4.reduce((sum, e) => sum + e.underflow * e.elements, 0) / total : null;
}

/** Summarizes finished arms; the first arm with preset 'bf16' is the reference for the gaps. */
export function summarizeExperiment(runs: ArmEvents[], worstCount = 8): ExperimentSummary {
  const summaries = runs.map((r) => {
    const tail = Math.max(1, Math.min(r.stepLosses.length, Math.ceil(r.stepLosses.length / 10)));
    const finalLoss = r.stepLosses.slice(-tail).reduce((a, b) => a + b, 0) / tail;
    return { r, tail, finalLoss, evalLoss: r.evalLosses.length ? r.evalLosses[r.evalLosses.length - 1]! : null };
  });
  const reference = summaries.find((s) => s.r.arm.preset === 'bf16');
  if (!reference) throw new Error('precision experiment: no BF16 arm to compare with');
  const arms: ArmSummary[] = summaries.map((s) => ({
    arm: s.r.arm,
    steps: s.r.stepLosses.length,
    finalLoss: s.finalLoss,
    tail: s.tail,
    evalLoss: s.evalLoss,
    gap: (s.finalLoss - reference.finalLoss) / reference.finalLoss,
    evalGap: s.evalLoss !== null && reference.evalLoss !== null ? (s.evalLoss - reference.evalLoss) / reference.evalLoss : null,
    nvfp4Underflow: weightedUnderflow(lastStepEvents(s.r.precision)),
  }));
  const worst: ExperimentSummary['worst'] = {};
  const byLayer: ExperimentSummary['byLayer'] = {};
  for (const r of runs) {
    const last = lastStepEvents(r.precision).filter((e) => e.format === 'nvfp4');
    if (last.length === 0) continue;
    worst[r.arm.id] = [...last]
      .sort((a, b) => b.underflow - a.underflow)
      .slice(0, worstCount)
      .map((e) => ({ layer: e.layer, role: e.role, pass: e.pass, operand: e.operand, underflow: e.underflow }));
    const layers = [...new Set(last.filter((e) => e.layer >= 0).map((e) => e.layer))].sort((a, b) => a - b);
    byLayer[r.arm.id] = layers.map((layer) => ({ layer, underflow: weightedUnderflow(last.filter((e) => e.layer === layer)) ?? 0 }));
  }
  return { arms, worst, byLayer };
}

const pct = (x: number | null, digits = 2) => (x === null ? '-' : `${(x * 100).toFixed(digits)}%`);
const signedPct = (x: number | null) => (x === null ? '-' : `${x >= 0 ? '+' : ''}${(x * 100).toFixed(2)}%`);

/** The report as Markdown (the body of docs/precision-experiment.md). */
export function renderExperiment(
  summary: ExperimentSummary,
  context: { design: string; settings: ExperimentSettings; data: string; command: string; notes?: string[] },
): string {
  const s = context.settings;
  const lines = [
    '# Precision experiment: BF16 vs NVFP4',
    '',
    `Design \`${context.design}\`, data ${context.data}, ${s.steps} steps of ${s.batch} x ${s.seqLen} tokens, seed ${s.seed}; all arms`,
    'share data order, initialization and seed. NVFP4 is emulated (quantize-dequantize around fp32 GEMMs on the CPU engine)',
    'with the recipe of the NVFP4 pretraining paper: 16x16 weight blocks, 1x16 activation and gradient blocks, random Hadamard',
    'transform on weight-gradient inputs, stochastic rounding of gradients. Generated by:',
    '',
    '```',
    context.command,
    '```',
    '',
    '| arm | policy | final train loss | held-out loss | gap vs BF16 (train) | gap vs BF16 (held-out) | NVFP4 underflow |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: |',
    ...summary.arms.map(
      (a) =>
        `| ${a.arm.title} | \`${a.arm.preset}\` | ${a.finalLoss.toFixed(4)} | ${a.evalLoss === null ? '-' : a.evalLoss.toFixed(4)} | ${a.arm.preset === 'bf16' ? '-' : signedPct(a.gap)} | ${a.arm.preset === 'bf16' ? '-' : signedPct(a.evalGap)} | ${pct(a.nvfp4Underflow)} |`,
    ),
    '',
    `Final train loss is the mean of the last ${summary.arms[0]?.tail ?? 1} step losses. NVFP4 underflow is the element-weighted share of`,
    'nonzero GEMM-operand values that quantize to zero (flush to zero), at the last inspected step.',
  ];
  for (const arm of EXPERIMENT_ARMS) {
    const worst = summary.worst[arm.id];
    if (!worst) continue;
    lines.push('', `## Where NVFP4 underflows most: ${arm.title}`, '', `Policy: ${PRESETS[arm.preset].description}`, '');
    lines.push('| layer | role | pass | operand | underflow |', '| ---: | --- | --- | --- | ---: |');
    for (const w of worst) lines.push(`| ${w.layer < 0 ? '-' : w.layer} | ${w.role} | ${w.pass} | ${w.operand} | ${pct(w.underflow)} |`);
    const layers = summary.byLayer[arm.id] ?? [];
    if (layers.length) {
      lines.push('', 'By layer (NVFP4 operands only): ' + layers.map((l) => `${l.layer}: ${pct(l.underflow, 1)}`).join(', '));
    }
  }
  if (context.notes?.length) {
    lines.push('', '## Notes', '', 'GEMM operands the engine quantized differently from the resolved policy table:', '');
    for (const note of context.notes) lines.push(`- ${note}`);
  }
  return lines.join('\n') + '\n';
}
