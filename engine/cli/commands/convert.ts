// `strata convert INPUT --to strata|megatron|hf [--out PATH] [--name NAME]`: converts a design
// (a Strata document, a template name or an HF config.json) to
//   strata    the Strata document (JSON),
//   megatron  Megatron-LM flags: the unified --hybrid-layer-pattern and the size arguments,
//   hf        a Hugging Face nemotron_h config.json.
// Prints to stdout, or writes PATH atomically (temp file + rename) with --out. Notes on what the
// target cannot carry go to stderr as `strata: note: ...`.
//
// Not here: the conversions themselves (spec/hf, spec/megatron-args.ts), input loading (load-input.ts).
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { HfExportError, formatHfConfig, hfConfigFromModel, hfExportNotes } from '../../spec/hf/index.js';
import { MegatronExportError, formatMegatronArgs, megatronArgsFromModel } from '../../spec/megatron-args.js';
import { parseCommandArgs } from '../args.js';
import { CliError } from '../errors.js';
import { type CliIO } from '../io.js';
import { loadModelInput } from '../load-input.js';

export const TARGETS = ['strata', 'megatron', 'hf'] as const;
export type Target = (typeof TARGETS)[number];

const HELP = `usage: strata convert INPUT --to strata|megatron|hf [--out PATH] [--name NAME]

INPUT is a Strata document, a template name, or an HF config.json.
  --to strata     print the Strata document
  --to megatron   print Megatron-LM flags (--hybrid-layer-pattern and size arguments)
  --to hf         print a Hugging Face nemotron_h config.json
  --out PATH      write to PATH (atomically) instead of stdout
  --name NAME     rename the model
`;

/** Writes text to path through a temporary file in the same folder and a rename. */
export function writeFileAtomic(path: string, text: string): void {
  const temp = `${path}.tmp-${process.pid}-${Date.now()}`;
  try {
    writeFileSync(temp, text);
    renameSync(temp, path);
  } catch (error) {
    rmSync(temp, { force: true });
    const code = (error as NodeJS.ErrnoException).code;
    throw new CliError(`${path}: cannot write (${code ?? String(error)}${code === 'ENOENT' ? `: folder ${dirname(path)} does not exist` : ''})`);
  }
}

export async function run(argv: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseCommandArgs('convert', argv, {
    to: { type: 'string' },
    out: { type: 'string', short: 'o' },
    name: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    io.stdout(HELP);
    return 0;
  }
  if (positionals.length !== 1)
    throw new CliError(`convert: expected one INPUT, got ${positionals.length} (see strata convert --help)`);
  const target = values.to;
  if (!target) throw new CliError('convert: --to is required (strata, megatron or hf)');
  if (!(TARGETS as readonly string[]).includes(target))
    throw new CliError(`convert: --to ${target} is not one of ${TARGETS.join(', ')}`);
  const input = loadModelInput(positionals[0]!, io);
  const doc = values.name ? { ...input.doc, model: { ...input.doc.model, name: values.name } } : input.doc;
  const where = input.file ?? positionals[0]!;
  const notes: string[] = [...input.notes];
  let text: string;
  try {
    switch (target as Target) {
      case 'strata':
        text = `${JSON.stringify(doc, null, 2)}\n`;
        break;
      case 'hf':
        text = formatHfConfig(hfConfigFromModel(doc.model));
        notes.push(...hfExportNotes(doc.model));
        break;
      case 'megatron': {
        const args = megatronArgsFromModel(doc.model);
        text = formatMegatronArgs(args);
        notes.push(...args.notes);
        break;
      }
    }
  } catch (error) {
    if (error instanceof HfExportError || error instanceof MegatronExportError)
      throw new CliError(`${where}: cannot convert to ${target}: ${error.message}`);
    throw error;
  }
  for (const note of notes) io.stderr(`strata: note: ${note}\n`);
  if (values.out) {
    const outPath = resolve(io.cwd, values.out);
    writeFileAtomic(outPath, text);
    io.stderr(`strata: wrote ${values.out}\n`);
  } else {
    io.stdout(text);
  }
  return 0;
}
