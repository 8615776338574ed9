// `strata export-megatron INPUT --out DIR [--nodes N] [--gpus-per-node G] [layout options]
// [--gpu ID] [--tokenizer-model ID] [--force]`: writes the Megatron-LM launch bundle of a design (a
// Strata document, a template name or an HF config.json) into DIR: arguments, TE precision config,
// torchrun and Slurm launchers, data preparation, checkpoint import, a Megatron-Bridge recipe for
// Nemotron 3 Nano/Super designs, and a README (engine/spec/megatron/bundle.ts lists the files).
// The bundle is written into a temporary sibling folder and renamed into place, so DIR is either
// the old content or the complete new bundle; an existing non-empty DIR needs --force.
//
// Not here: the bundle's content (engine/spec/megatron/*), option parsing shared with plan (plan.ts).
import { chmodSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { HARDWARE_IDS } from '../../spec/hardware.js';
import { MegatronExportError } from '../../spec/megatron-args.js';
import { type Bundle, buildBundle } from '../../spec/megatron/bundle.js';
import { type Cluster, type LayoutRequest, type ParallelLayout, LayoutError, completeLayout } from '../../spec/megatron/layout.js';
import { suggest } from '../../spec/megatron/planner.js';
import { type ModelSpec } from '../../spec/document.js';
import { MegatronPrecisionError } from '../../spec/megatron/precision-args.js';
import { parseCommandArgs } from '../args.js';
import { CliError } from '../errors.js';
import { type CliIO } from '../io.js';
import { loadModelInput } from '../load-input.js';
import { LAYOUT_HELP, LAYOUT_OPTIONS, parseLayoutOptions } from './plan.js';

const HELP = `usage: strata export-megatron INPUT --out DIR [--nodes N] [--gpus-per-node G] [layout options] [--force]

Writes a Megatron-LM launch bundle (arguments, TE precision config, torchrun and Slurm scripts,
data preparation, checkpoint import, README) for training the design on N nodes x G GPUs.
INPUT is a Strata document, a template name, or an HF config.json.
  --out DIR                 bundle folder (created; replaced only with --force)
${LAYOUT_HELP}
  --gpu ID                  GPU the README's planner estimate uses: ${HARDWARE_IDS.join(', ')} (default h100)
  --tokenizer-model ID      Hugging Face tokenizer id or folder (default chosen by vocabulary size)
  --force                   replace a non-empty DIR
`;

/** Writes the bundle's files into `outDir` atomically (temp folder + rename; see the header). */
export function writeBundle(bundle: Bundle, outDir: string, force: boolean): void {
  const parent = dirname(outDir);
  if (!existsSync(parent)) throw new CliError(`export-megatron: ${outDir}: folder ${parent} does not exist`);
  const occupied = existsSync(outDir);
  if (occupied && !statSync(outDir).isDirectory()) throw new CliError(`export-megatron: ${outDir}: exists and is not a folder`);
  if (occupied && readdirSync(outDir).length > 0 && !force)
    throw new CliError(`export-megatron: ${outDir}: folder is not empty (use --force to replace it)`);
  const stamp = `${process.pid}-${Date.now()}`;
  const temp = join(parent, `.${basename(outDir)}.tmp-${stamp}`);
  const old = join(parent, `.${basename(outDir)}.old-${stamp}`);
  try {
    mkdirSync(temp);
    for (const file of bundle.files) {
      const path = join(temp, file.path);
      writeFileSync(path, file.text);
      if (file.executable) chmodSync(path, 0o755);
    }
    if (occupied) renameSync(outDir, old);
    renameSync(temp, outDir);
    if (occupied) rmSync(old, { recursive: true, force: true });
  } catch (error) {
    rmSync(temp, { recursive: true, force: true });
    if (occupied && !existsSync(outDir) && existsSync(old)) renameSync(old, outDir);
    if (error instanceof CliError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    throw new CliError(`export-megatron: ${outDir}: cannot write the bundle (${code ?? String(error)})`);
  }
}

/**
 * Without layout options the bundle uses the planner's fastest layout that fits the GPU memory;
 * when none fits, the plain data-parallel layout (the planner's note then says it does not fit).
 */
function suggestedLayout(model: ModelSpec, cluster: Cluster, request: LayoutRequest, gpu: string): { layout: ParallelLayout; note: string } {
  const fallback = completeLayout(cluster, request);
  const { best, fitting } = suggest(model, { cluster, gpu, seqLen: fallback.seqLen, globalBatch: fallback.globalBatch });
  if (!best) return { layout: fallback, note: `no parallel layout of ${cluster.nodes} x ${cluster.gpusPerNode} ${gpu} GPUs fits this design; using TP1 PP1 EP1` };
  const l = best.layout;
  return {
    layout: l,
    note: `layout chosen by the planner (fastest of ${fitting} that fit): TP${l.tp} PP${l.pp} EP${l.ep} CP${l.cp} DP${l.dp}, micro-batch ${l.microBatch}, recompute ${l.recompute}; pass --tp/--pp/--ep/--cp to choose your own`,
  };
}

export async function run(argv: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseCommandArgs('export-megatron', argv, {
    ...LAYOUT_OPTIONS,
    out: { type: 'string', short: 'o' },
    gpu: { type: 'string' },
    'tokenizer-model': { type: 'string' },
    force: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    io.stdout(HELP);
    return 0;
  }
  if (positionals.length !== 1) throw new CliError(`export-megatron: expected one INPUT, got ${positionals.length} (see strata export-megatron --help)`);
  if (!values.out) throw new CliError('export-megatron: --out DIR is required');
  const gpu = (values.gpu ?? 'h100').toLowerCase();
  if (!HARDWARE_IDS.includes(gpu)) throw new CliError(`export-megatron: --gpu ${values.gpu} is not one of ${HARDWARE_IDS.join(', ')}`);
  const { cluster, request, explicit } = parseLayoutOptions('export-megatron', values);
  const input = loadModelInput(positionals[0]!, io);
  const where = input.file ?? positionals[0]!;
  const chosen = explicit ? { layout: completeLayout(cluster, request), note: null } : suggestedLayout(input.doc.model, cluster, request, gpu);
  const layout = chosen.layout;
  let bundle: Bundle;
  try {
    bundle = buildBundle(input.doc, { cluster, layout, gpu, tokenizerModel: values['tokenizer-model'] });
  } catch (error) {
    if (error instanceof LayoutError) throw new CliError(`export-megatron: ${where}: the layout does not work: ${error.problems.join('; ')}`);
    if (error instanceof MegatronExportError || error instanceof MegatronPrecisionError)
      throw new CliError(`export-megatron: ${where}: cannot export to Megatron-LM: ${error.message}`);
    throw error;
  }
  writeBundle(bundle, resolve(io.cwd, values.out), values.force ?? false);
  for (const note of [...input.notes, ...(chosen.note ? [chosen.note] : []), ...bundle.notes]) io.stderr(`strata: note: ${note}\n`);
  io.stderr(`strata: wrote ${values.out} (${bundle.files.map((f) => f.path).join(', ')})\n`);
  return 0;
}
