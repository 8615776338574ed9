// `strata import-hf DIR [options]`: imports a Hugging Face checkpoint folder (config.json of a
// supported model_type + model.safetensors, as `strata export-hf` or transformers' save_pretrained
// write) as a Strata run: a run folder whose document comes from config.json (spec/hf import) and
// whose checkpoints/imported/model.safetensors holds the weights, so `strata eval|generate|
// export-hf RUN` and fine-tuning start from it. The tokenizer is recognized from tokenizer.json
// (Strata byte or GPT-2) or given with --tokenizer.
//
// Not here: the config mapping (spec/hf), checkpoint formats beyond one safetensors file.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { copyFileAtomic } from '../../runtime/atomic-write.js';
import { applyOverrides, openRunFolder } from '../../runtime/command-support.js';
import { RUN_FILES } from '../../runtime/runs.js';
import { readSafetensorsHeader } from '../../runtime/safetensors.js';
import type { TokenizerKind } from '../../runtime/tokenizers/types.js';
import { RUN_FOLDER_OPTIONS, parseCommandArgs } from '../args.js';
import { CliError } from '../errors.js';
import type { CliIO } from '../io.js';
import { loadModelInput } from '../load-input.js';

const HELP = `usage: strata import-hf DIR [options]

DIR holds config.json (a supported model_type) and model.safetensors.
  --tokenizer KIND     byte or gpt2 (default: recognized from DIR/tokenizer.json)
  --run-dir DIR / --runs DIR / --name NAME   where the run folder goes
  --json               print the run summary as JSON
`;

/** Recognizes Strata's two tokenizers from an HF tokenizer.json by vocabulary size and specials. */
export function detectTokenizer(path: string): TokenizerKind | null {
  if (!existsSync(path)) return null;
  let json: { model?: { vocab?: Record<string, number> }; added_tokens?: { content: string; id: number }[] };
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    return null; // an unreadable tokenizer.json is reported as "not recognized" by the caller
  }
  const vocab = Object.keys(json.model?.vocab ?? {}).length;
  const added = new Map((json.added_tokens ?? []).map((t) => [t.content, t.id]));
  if (vocab === 256 && added.get('<bos>') === 256 && added.get('<eos>') === 257 && added.get('<pad>') === 258) return 'byte';
  if (vocab + (added.has('<|endoftext|>') && !json.model?.vocab?.['<|endoftext|>'] ? 1 : 0) === 50257 && added.get('<|endoftext|>') === 50256) return 'gpt2';
  return null;
}

export async function run(argv: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseCommandArgs('import-hf', argv, {
    tokenizer: { type: 'string' },
    ...RUN_FOLDER_OPTIONS,
  });
  if (values.help) {
    io.stdout(HELP);
    return 0;
  }
  if (positionals.length !== 1) throw new CliError(`import-hf: expected one DIR, got ${positionals.length} (see strata import-hf --help)`);
  const dir = resolve(io.cwd, positionals[0]!);
  const configPath = join(dir, 'config.json');
  if (!existsSync(configPath)) throw new CliError(`${positionals[0]}: no config.json in this folder`);
  const weights = join(dir, 'model.safetensors');
  if (!existsSync(weights)) {
    const sharded = existsSync(join(dir, 'model.safetensors.index.json'));
    throw new CliError(`${positionals[0]}: no model.safetensors${sharded ? ' (sharded checkpoints are not supported; save with max_shard_size large enough for one file)' : ''}`);
  }
  let header;
  try {
    header = readSafetensorsHeader(weights);
  } catch (error) {
    throw new CliError((error as Error).message);
  }
  const loaded = loadModelInput(configPath, io);
  for (const note of loaded.notes) io.stderr(`strata: note: ${note}\n`);
  const tokenizer = values.tokenizer ?? detectTokenizer(join(dir, 'tokenizer.json'));
  if (!tokenizer) throw new CliError(`${positionals[0]}: tokenizer not recognized (tokenizer.json is neither Strata's byte tokenizer nor GPT-2); pass --tokenizer byte|gpt2`);
  const doc = applyOverrides('import-hf', loaded.doc, { tokenizer }, io);
  const runFolder = openRunFolder(doc, 'train', io, {
    runDir: values['run-dir'],
    runs: values.runs,
    name: values.name ?? `${doc.model.name} (imported)`,
    extra: { data: `imported from ${dir}`, steps: 0 },
  });
  copyFileAtomic(weights, join(runFolder.dir, RUN_FILES.checkpoints, 'imported', 'model.safetensors'));
  const events = [
    { type: 'start', t: 0, kind: 'train', steps: 0 },
    { type: 'checkpoint', t: 0, step: 0, path: join(RUN_FILES.checkpoints, 'imported') },
    { type: 'log', t: 0, message: `imported ${Object.keys(header.tensors).length} tensors from ${dir}` },
    { type: 'done', t: 0 },
  ];
  writeFileSync(join(runFolder.dir, RUN_FILES.events), events.map((e) => `${JSON.stringify(e)}\n`).join(''));
  if (values.json) io.stdout(`${JSON.stringify({ runId: runFolder.runId, dir: runFolder.dir, tensors: Object.keys(header.tensors).length, tokenizer })}\n`);
  else io.stdout(`imported ${Object.keys(header.tensors).length} tensors as run ${runFolder.runId} (${runFolder.dir})\n`);
  return 0;
}
