// Loads the design a `strata` command works on from its command-line argument: a Strata document
// path, a template name (templates/<name>.json), or a Hugging Face config.json (recognized by its
// `model_type`, imported through spec/hf). Every failure is a CliError whose one-line message
// names the file first: `FILE: malformed JSON at line L column C: ...`,
// `FILE: layer 7 (attention): heads 12 is not a multiple of kv_heads 5`,
// `FILE: model_type: "gpt2" is not supported (...)`.
//
// Not here: what commands do with the document, and the import mappings themselves (spec/hf).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type StrataDocument, documentFromModel } from '../spec/document.js';
import { HfConfigError, importHfConfig, isHfConfig } from '../spec/hf/index.js';
import { JsonSyntaxError, parseJsonText } from '../spec/hf/json-text.js';
import { parseDocument } from '../spec/validate.js';
import { CliError } from './errors.js';
import { type CliIO } from './io.js';

export type InputSource = 'document' | 'template' | 'hf-config';

export interface LoadedInput {
  doc: StrataDocument;
  source: InputSource;
  /** The file as the user named it (or the template file), for messages. */
  file?: string;
  /** Warnings from validation and notes from an import (what was assumed or not carried over). */
  notes: string[];
}

/** The folder of bundled templates (templates/ at the repository root). */
export const TEMPLATES_DIR = fileURLToPath(new URL('../../templates/', import.meta.url));

/** Names of the bundled templates (file names without `.json`), sorted. */
export function templateNames(dir: string = TEMPLATES_DIR): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => f.slice(0, -'.json'.length))
    .sort();
}

function looksLikePath(arg: string): boolean {
  return arg.includes('/') || arg.includes('\\') || arg.toLowerCase().endsWith('.json') || isAbsolute(arg);
}

/** Reads and parses a JSON file; errors name the file. */
export function readJsonFile(path: string, shownAs: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new CliError(`${shownAs}: no such file`);
    if (code === 'EISDIR') throw new CliError(`${shownAs}: is a folder, not a JSON file`);
    throw new CliError(`${shownAs}: cannot read (${code ?? String(error)})`);
  }
  try {
    return parseJsonText(text);
  } catch (error) {
    if (error instanceof JsonSyntaxError) throw new CliError(`${shownAs}: ${error.message}`);
    throw error;
  }
}

/** Turns parsed JSON (a Strata document or an HF config) into a validated document. */
export function documentFromJson(json: unknown, shownAs: string): { doc: StrataDocument; hf: boolean; notes: string[] } {
  if (isHfConfig(json)) {
    try {
      const imported = importHfConfig(json, { file: shownAs });
      return { doc: documentFromModel(imported.model), hf: true, notes: imported.notes };
    } catch (error) {
      if (error instanceof HfConfigError) throw new CliError(error.message);
      throw error;
    }
  }
  const result = parseDocument(json);
  if (!result.ok) throw new CliError(`${shownAs}: ${result.errors.map((e) => e.message).join('; ')}`);
  return { doc: result.doc, hf: false, notes: result.warnings.map((w) => w.message) };
}

/**
 * Loads a design named on the command line. A path (contains a separator, ends in .json, or names
 * an existing file) is read relative to io.cwd; anything else is looked up as a template name.
 */
export function loadModelInput(arg: string, io: CliIO, templatesDir: string = TEMPLATES_DIR): LoadedInput {
  if (!arg) throw new CliError('no input given (a Strata document, a template name or an HF config.json)');
  const path = resolve(io.cwd, arg);
  if (looksLikePath(arg) || existsSync(path)) {
    const { doc, hf, notes } = documentFromJson(readJsonFile(path, arg), arg);
    return { doc, source: hf ? 'hf-config' : 'document', file: arg, notes };
  }
  const templateFile = join(templatesDir, `${arg}.json`);
  if (!existsSync(templateFile)) {
    const names = templateNames(templatesDir);
    throw new CliError(
      `${arg}: no such file or template${names.length ? ` (templates: ${names.join(', ')})` : ' (no templates are installed)'}`,
    );
  }
  const shownAs = `templates/${arg}.json`;
  const { doc, notes } = documentFromJson(readJsonFile(templateFile, shownAs), shownAs);
  return { doc, source: 'template', file: shownAs, notes };
}
