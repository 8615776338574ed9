// `strata inspect-precision TARGET [--step N] [--top N] [--json]`: the resolved per-layer, per-role,
// per-pass precision table of a design, joined with measured quantization statistics:
//   - TARGET a run folder: the `precision` events the engine wrote while training (the given step or
//     the last inspected one); without such events, the weights of its newest checkpoint;
//   - TARGET a checkpoint (a checkpoints/step-N folder or a .safetensors file inside a run): its
//     weights quantized with their fprop formats by the TS mirror of the engine's quantizers;
//   - TARGET a design (document, template name, HF config.json): the resolved table only.
// --json prints one object {source, step, rows, worst}; rows carry the measured events verbatim.
//
// Not here: the table logic (engine/spec/precision-inspect.ts), quantization (precision-quantize.ts).
import { closeSync, existsSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { StrataDocument } from '../../spec/document.js';
import { resolvePrecision } from '../../spec/precision.js';
import { parseDocument } from '../../spec/validate.js';
import {
  type PrecisionEvent,
  type WeightTensor,
  asPrecisionEvent,
  eventsOfStep,
  inspectWeights,
  inspectionRows,
  parameterPlace,
  renderInspection,
  worstUnderflow,
} from '../../spec/precision-inspect.js';
import { bf16Decode } from '../../spec/precision-quantize.js';
import { latestCheckpoint, modelWeightsFile } from '../../runtime/checkpoints.js';
import { RUN_FILES, readEvents } from '../../runtime/runs.js';
import { readSafetensorsHeader } from '../../runtime/safetensors.js';
import { parseCommandArgs } from '../args.js';
import { CliError } from '../errors.js';
import { type CliIO } from '../io.js';
import { loadModelInput } from '../load-input.js';

const HELP = `usage: strata inspect-precision TARGET [--step N] [--top N] [--json]

TARGET is a run folder, a checkpoint (checkpoints/step-N folder or .safetensors file of a run),
or a design (Strata document, template name, HF config.json).
  --step N   which inspected training step to show (default: the last one)
  --top N    how many (layer, role, pass, operand) records to list by underflow (default 8)
  --json     print one JSON object instead of the table
`;

interface Measured {
  source: string;
  doc: StrataDocument;
  events: PrecisionEvent[];
  /** Step of the checkpoint the weights came from (checkpoint inspections). */
  checkpointStep?: number;
}

/** The run's document.json, validated (so defaults are filled in and old versions migrated). */
function readRunDocument(dir: string): StrataDocument {
  const file = join(dir, RUN_FILES.document);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new CliError(`inspect-precision: ${file}: ${(error as Error).message}`);
  }
  const parsed = parseDocument(json);
  if (!parsed.ok) throw new CliError(`inspect-precision: ${file}: ${parsed.errors[0]!.path}: ${parsed.errors[0]!.message}`);
  return parsed.doc;
}

function isRunFolder(dir: string): boolean {
  return existsSync(join(dir, RUN_FILES.document)) && existsSync(join(dir, RUN_FILES.events));
}

/** The run folder a checkpoint belongs to: RUN/checkpoints/ENTRY[/model.safetensors]. */
function runOfCheckpoint(path: string): string | null {
  let dir = dirname(resolve(path));
  for (let i = 0; i < 3; i++) {
    if (basename(dir) === RUN_FILES.checkpoints && isRunFolder(dirname(dir))) return dirname(dir);
    dir = dirname(dir);
  }
  return null;
}

function stepOfCheckpoint(path: string): number {
  const match = /(\d+)(?:\.safetensors)?$/.exec(basename(path));
  return match ? Number(match[1]) : -1;
}

/** F32 / BF16 tensors of a safetensors file that some GEMM reads. */
function readGemmWeights(file: string, tied: boolean): WeightTensor[] {
  const header = readSafetensorsHeader(file);
  const fd = openSync(file, 'r');
  try {
    const prefix = Buffer.alloc(8);
    readSync(fd, prefix, 0, 8, 0);
    const dataStart = 8 + Number(prefix.readBigUInt64LE(0));
    const tensors: WeightTensor[] = [];
    for (const [name, entry] of Object.entries(header.tensors)) {
      if (!parameterPlace(name, tied)) continue;
      if (entry.dtype !== 'F32' && entry.dtype !== 'BF16')
        throw new CliError(`inspect-precision: ${file}: tensor ${name} has dtype ${entry.dtype}; only F32 and BF16 weights can be inspected`);
      const [begin, end] = entry.data_offsets;
      const bytes = Buffer.alloc(end - begin);
      readSync(fd, bytes, 0, bytes.length, dataStart + begin);
      const count = entry.dtype === 'F32' ? bytes.length / 4 : bytes.length / 2;
      const values = new Float32Array(count);
      for (let i = 0; i < count; i++) values[i] = entry.dtype === 'F32' ? bytes.readFloatLE(4 * i) : bf16Decode(bytes.readUInt16LE(2 * i));
      tensors.push({ name, shape: entry.shape, values });
    }
    return tensors;
  } finally {
    closeSync(fd);
  }
}

function checkpointEvents(weightsFile: string, doc: StrataDocument, step: number): PrecisionEvent[] {
  const table = resolvePrecision(doc.model);
  return inspectWeights(readGemmWeights(weightsFile, doc.model.tie_embeddings), table, step, doc.model.tie_embeddings);
}

function measuredFromRun(dir: string): Measured {
  const doc = readRunDocument(dir);
  const events: PrecisionEvent[] = [];
  try {
    readEvents(dir).forEach((raw, i) => {
      const event = asPrecisionEvent(raw as Record<string, unknown>, `${join(dir, RUN_FILES.events)} event ${i + 1}`);
      if (event) events.push(event);
    });
  } catch (error) {
    throw new CliError(`inspect-precision: ${(error as Error).message}`);
  }
  if (events.length > 0) return { source: `run ${dir}`, doc, events };
  const checkpoint = latestCheckpoint(dir);
  const weights = checkpoint ? modelWeightsFile(checkpoint.path) : null;
  if (!checkpoint || !weights) return { source: `run ${dir} (no precision events, no checkpoint)`, doc, events: [] };
  return { source: `checkpoint ${checkpoint.path}`, doc, events: checkpointEvents(weights, doc, checkpoint.step), checkpointStep: checkpoint.step };
}

function measuredFromCheckpoint(path: string): Measured {
  const weights = path.endsWith('.safetensors') ? path : modelWeightsFile(path);
  if (!weights) throw new CliError(`inspect-precision: ${path} holds no model weights (.safetensors)`);
  const run = runOfCheckpoint(weights);
  if (!run) throw new CliError(`inspect-precision: cannot find the run folder (document.json) of checkpoint ${path}; pass the run folder instead`);
  const doc = readRunDocument(run);
  const step = stepOfCheckpoint(path);
  return { source: `checkpoint ${path}`, doc, events: checkpointEvents(weights, doc, step), checkpointStep: step };
}

function wholeNumber(option: string, text: string | undefined, fallback: number | undefined): number | undefined {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0) throw new CliError(`inspect-precision: ${option} ${JSON.stringify(text)} is not a whole number >= 0`);
  return value;
}

export async function run(argv: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseCommandArgs('inspect-precision', argv, {
    step: { type: 'string' },
    top: { type: 'string' },
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    io.stdout(HELP);
    return 0;
  }
  if (positionals.length !== 1) throw new CliError('inspect-precision: give exactly one TARGET (run folder, checkpoint or design)');
  const requestedStep = wholeNumber('--step', values.step as string | undefined, undefined);
  const top = wholeNumber('--top', values.top as string | undefined, 8)!;
  const target = positionals[0]!;
  const path = resolve(io.cwd, target);
  let measured: Measured;
  if (existsSync(path) && statSync(path).isDirectory() && isRunFolder(path)) measured = measuredFromRun(path);
  else if (existsSync(path) && (path.endsWith('.safetensors') || (statSync(path).isDirectory() && modelWeightsFile(path))))
    measured = measuredFromCheckpoint(path);
  else {
    const input = loadModelInput(target, io);
    measured = { source: `design ${target}`, doc: input.doc, events: [] };
  }
  const chosen = eventsOfStep(measured.events, requestedStep);
  if (requestedStep !== undefined && chosen.events.length === 0 && measured.events.length > 0) {
    const steps = [...new Set(measured.events.map((e) => e.step))].join(', ');
    throw new CliError(`inspect-precision: no precision events at step ${requestedStep} (inspected steps: ${steps})`);
  }
  const rows = inspectionRows(resolvePrecision(measured.doc.model), chosen.events);
  const worst = worstUnderflow(chosen.events, top);
  if (values.json) {
    io.stdout(JSON.stringify({ source: measured.source, step: chosen.step, rows, worst }) + '\n');
    return 0;
  }
  io.stdout(`${measured.source}\n`);
  if (measured.doc.pipeline.training.device === 'cuda')
    io.stdout('note: on CUDA, bf16 and fp8_e4m3 cells multiply natively (fp8 tensor cores, per-tensor scaling); fp8_e5m2, mxfp8 and nvfp4 operands are quantize-dequantized on the GPU (the CPU rules, bit for bit) before a bf16 GEMM\n');
  io.stdout(renderInspection(rows, chosen.step, worst, measured.doc.pipeline.training.device === 'cpu' ? 'cpu' : undefined));
  return 0;
}
