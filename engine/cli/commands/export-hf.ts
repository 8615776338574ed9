// `strata export-hf INPUT --out DIR [--checkpoint PATH]`: writes a Hugging Face `nemotron_h` folder
// that transformers loads with AutoModelForCausalLM / AutoTokenizer:
//   config.json              from the design (spec/hf hfConfigFromModel) + the tokenizer's special ids
//   model.safetensors        the run's newest checkpoint weights, copied as they are (the engine
//                            already stores HF names and layouts), or for a design fresh engine weights
//   tokenizer.json, tokenizer_config.json, special_tokens_map.json   (runtime/tokenizers/hf-files.ts)
//   generation_config.json   bos/eos/pad ids
//
// Not here: the config mapping (spec/hf), tokenizer files (runtime/tokenizers/hf-files.ts).
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { HfExportError, hfConfigFromModel, hfExportNotes } from '../../spec/hf/index.js';
import { copyFileAtomic, writeFileAtomic } from '../../runtime/atomic-write.js';
import { modelWeightsFile, verifyCheckpointFile } from '../../runtime/checkpoints.js';
import { checkEngineMemory, intOption, loadTarget, requireEngine } from '../../runtime/command-support.js';
import { eventPrinter, reportJobError, superviseJob } from '../../runtime/job-runner.js';
import { readSafetensorsHeader } from '../../runtime/safetensors.js';
import { writeHfTokenizerFiles } from '../../runtime/tokenizers/hf-files.js';
import { createTokenizer } from '../../runtime/tokenizers/index.js';
import { parseCommandArgs } from '../args.js';
import { CliError, EXIT_INTERNAL } from '../errors.js';
import type { CliIO } from '../io.js';

const HELP = `usage: strata export-hf INPUT --out DIR [--checkpoint PATH] [--seed N] [--force]

INPUT is a training run folder (its newest checkpoint is exported), or a design (exported with
freshly initialized engine weights).
  --out DIR            folder to write (created; must be empty unless --force)
  --checkpoint PATH    export these weights instead (a checkpoint folder or .safetensors file)
  --seed N             initialization seed of a design exported without weights (default: the document's)
  --force              write into a folder that already has files
`;

export async function run(argv: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseCommandArgs('export-hf', argv, {
    out: { type: 'string', short: 'o' },
    checkpoint: { type: 'string' },
    seed: { type: 'string' },
    force: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    io.stdout(HELP);
    return 0;
  }
  if (positionals.length !== 1) throw new CliError(`export-hf: expected one INPUT, got ${positionals.length} (see strata export-hf --help)`);
  if (!values.out) throw new CliError('export-hf: --out DIR is required');
  const seed = intOption('export-hf', 'seed', values.seed, 0);
  const target = loadTarget(positionals[0]!, io);
  const out = resolve(io.cwd, values.out);
  if (existsSync(out) && readdirSync(out).length > 0 && !values.force) throw new CliError(`export-hf: ${values.out} is not empty (use --force to write into it)`);

  let config: Record<string, unknown>;
  try {
    config = hfConfigFromModel(target.doc.model) as Record<string, unknown>;
  } catch (error) {
    if (error instanceof HfExportError) throw new CliError(`${target.where}: cannot export to nemotron_h: ${error.message}`);
    throw error;
  }
  const tokenizer = createTokenizer(target.doc.pipeline.tokenizer.kind);
  const specialIds = { bos_token_id: tokenizer.bosId, eos_token_id: tokenizer.eosId, pad_token_id: tokenizer.padId };
  Object.assign(config, specialIds, { torch_dtype: 'float32' });

  let weightsSource: string | null = null;
  if (values.checkpoint) {
    const given = resolve(io.cwd, values.checkpoint);
    weightsSource = modelWeightsFile(given);
    if (!weightsSource) throw new CliError(`export-hf: --checkpoint ${values.checkpoint}: no model .safetensors file there`);
  } else if (target.checkpoint) {
    weightsSource = modelWeightsFile(target.checkpoint.path);
  } else if (target.runDir) {
    throw new CliError(`${target.where}: the run has no checkpoint yet`);
  }

  mkdirSync(out, { recursive: true });
  const weightsOut = join(out, 'model.safetensors');
  if (weightsSource) {
    try {
      verifyCheckpointFile(weightsSource);
      readSafetensorsHeader(weightsSource);
    } catch (error) {
      throw new CliError((error as Error).message);
    }
    copyFileAtomic(weightsSource, weightsOut);
  } else {
    checkEngineMemory(target.where, target.doc, 'inference');
    const engine = requireEngine();
    const printer = eventPrinter({ stdout: io.stderr, stderr: io.stderr, isTTY: false }, { json: false });
    const outcome = await superviseJob(engine.init({ document: target.doc, out: weightsOut, ...(seed !== undefined ? { seed } : {}) }, printer.onEvent), printer, io, { json: false });
    if (outcome.error) {
      reportJobError('export-hf', outcome, io, false);
      return EXIT_INTERNAL;
    }
  }
  const tensors = Object.keys(readSafetensorsHeader(weightsOut).tensors).length;
  writeFileAtomic(join(out, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
  writeFileAtomic(join(out, 'generation_config.json'), `${JSON.stringify({ ...specialIds, _from_model_config: true }, null, 2)}\n`);
  writeHfTokenizerFiles(out, tokenizer.kind, target.doc.model.max_position_embeddings);
  for (const note of hfExportNotes(target.doc.model)) io.stderr(`strata: note: ${note}\n`);
  io.stdout(`wrote ${out}: config.json, model.safetensors (${tensors} tensors${weightsSource ? '' : ', freshly initialized'}), ${tokenizer.kind} tokenizer\n`);
  return 0;
}
