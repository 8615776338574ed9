// Hugging Face config.json import (every supported `model_type`) and nemotron_h export: the one
// entry point the CLI and the app use. `importHfConfig` dispatches on `model_type`, names the model
// after its file, and validates the result (errors name the file, then the layer or field).
//
// Not here: the field mappings of each family (nemotron-h.ts, transformer-families.ts, mamba2.ts),
// reading files (callers pass parsed JSON and the file name for messages).
import { type ModelSpec } from '../document.js';
import { parseModelSpec } from '../validate.js';
import { type HfConfig, HfConfigError } from './config-reader.js';
import { importMamba2 } from './mamba2.js';
import { type ImportResult, importNemotronH } from './nemotron-h.js';
import { importLlama, importMixtral, importQwen3, importQwen3Moe } from './transformer-families.js';

export { HfConfigError, type HfConfig } from './config-reader.js';
export { HfExportError, formatHfConfig, hfConfigFromModel, hfExportNotes, NEMOTRON_H_LAYER_NAMES } from './nemotron-h.js';
export type { ImportResult } from './nemotron-h.js';

type Importer = (config: HfConfig, file: string, name: string) => ImportResult;

const IMPORTERS: Readonly<Record<string, Importer>> = {
  nemotron_h: importNemotronH,
  qwen3_moe: importQwen3Moe,
  qwen3: importQwen3,
  llama: importLlama,
  mixtral: importMixtral,
  mamba2: importMamba2,
};

/** The model_type values importHfConfig understands. */
export const SUPPORTED_MODEL_TYPES: readonly string[] = Object.keys(IMPORTERS);

/** True when parsed JSON looks like an HF config (has a string `model_type`, is not a Strata document). */
export function isHfConfig(json: unknown): json is HfConfig {
  return (
    json !== null &&
    typeof json === 'object' &&
    !Array.isArray(json) &&
    typeof (json as HfConfig).model_type === 'string' &&
    (json as HfConfig).format !== 'strata'
  );
}

/** A model name from the file: `dir/config.json` -> `dir`, `nano.json` -> `nano`. */
export function modelNameFromFile(file: string | undefined, modelType: string): string {
  if (!file) return modelType;
  const parts = file.split(/[\\/]/).filter(Boolean);
  const base = parts[parts.length - 1] ?? '';
  if (base === 'config.json' && parts.length > 1) return parts[parts.length - 2]!;
  const stem = base.replace(/\.json$/i, '');
  return stem && stem !== 'config' ? stem : modelType;
}

export interface HfImport {
  model: ModelSpec;
  /** Things the config holds that the model cannot carry exactly, and defaults that were assumed. */
  notes: string[];
  /** Config fields that were read. */
  understood: Set<string>;
}

/**
 * Imports an HF config.json (parsed) as a validated Strata model. `file` names the file in
 * messages; `name` overrides the model name (default: from the file name).
 */
export function importHfConfig(json: unknown, options: { file?: string; name?: string } = {}): HfImport {
  const file = options.file ?? 'config.json';
  if (json === null || typeof json !== 'object' || Array.isArray(json))
    throw new HfConfigError(`${file}: expected a JSON object`, file);
  const config = json as HfConfig;
  const modelType = config.model_type;
  if (typeof modelType !== 'string')
    throw new HfConfigError(`${file}: model_type: is missing (not a Hugging Face config.json?)`, file, 'model_type');
  const importer = IMPORTERS[modelType];
  if (!importer)
    throw new HfConfigError(
      `${file}: model_type: "${modelType}" is not supported (supported: ${SUPPORTED_MODEL_TYPES.join(', ')})`,
      file,
      'model_type',
    );
  const name = options.name ?? modelNameFromFile(options.file, modelType);
  const result = importer(config, file, name);
  result.understood.add('model_type');
  const parsed = parseModelSpec(result.model);
  if (!parsed.ok) {
    const first = parsed.errors[0]!;
    throw new HfConfigError(`${file}: ${parsed.errors.map((e) => e.message).join('; ')}`, file, first.field);
  }
  const warnings = parsed.warnings.map((w) => w.message);
  return { model: parsed.model, notes: [...result.notes, ...warnings], understood: result.understood };
}
