// Migrations of Strata documents from older versions to the current one (DOCUMENT_VERSION).
// Each step is a pure function from version N's JSON to version N+1's JSON; `migrateDocument`
// chains them. It does not validate: parseDocument (validate.ts) does that after migrating.
//
// Version history
//   1: flat `model.blocks` (no repeat groups), `model.precision` a single format string,
//      `model.mtp_depth` (MTP modules implied as attention + MoE copied from the first such blocks),
//      `pipeline.train` instead of `pipeline.training`.
//   2: `model.stack` with repeat groups, precision policy with ordered rules, `model.mtp` spec,
//      `pipeline.training`, `view.positions`.
import { DOCUMENT_FORMAT, DOCUMENT_VERSION } from './document.js';

type Json = Record<string, unknown>;

export type MigrationResult = { ok: true; doc: Json; from?: number } | { ok: false; path: string; message: string };

function isObject(v: unknown): v is Json {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** v1 -> v2 */
function v1ToV2(doc: Json): Json {
  const model = isObject(doc.model) ? { ...doc.model } : {};
  const blocks = Array.isArray(model.blocks) ? (model.blocks as unknown[]) : [];
  delete model.blocks;
  model.stack = blocks;
  if (typeof model.precision === 'string') {
    model.precision = { default: model.precision, rules: [] };
  }
  const depth = model.mtp_depth;
  delete model.mtp_depth;
  if (typeof depth === 'number' && depth > 0) {
    const firstOf = (kind: string) => blocks.find((b) => isObject(b) && b.kind === kind);
    const mtpBlocks = [firstOf('attention'), firstOf('moe') ?? firstOf('mlp')].filter(Boolean);
    model.mtp = { kind: 'mtp', depth, blocks: mtpBlocks, loss_weight: 0.3, shared_weights: true };
  }
  const pipeline = isObject(doc.pipeline) ? { ...doc.pipeline } : undefined;
  if (pipeline && 'train' in pipeline) {
    pipeline.training = pipeline.train;
    delete pipeline.train;
  }
  const view = isObject(doc.view) ? doc.view : undefined;
  const positions = view && isObject(view.positions) ? view.positions : view && isObject(view.nodes) ? view.nodes : {};
  const out: Json = { ...doc, version: 2, model };
  if (pipeline) out.pipeline = pipeline;
  out.view = { positions };
  return out;
}

const STEPS: Record<number, (doc: Json) => Json> = { 1: v1ToV2 };

/** Brings any supported older document up to DOCUMENT_VERSION. */
export function migrateDocument(input: unknown): MigrationResult {
  if (!isObject(input)) return { ok: false, path: '', message: 'document: expected a JSON object' };
  if (input.format !== DOCUMENT_FORMAT)
    return { ok: false, path: 'format', message: `format: expected "${DOCUMENT_FORMAT}", got ${JSON.stringify(input.format)}` };
  const version = input.version;
  if (typeof version !== 'number' || !Number.isInteger(version) || version < 1)
    return { ok: false, path: 'version', message: `version: expected a positive integer, got ${JSON.stringify(version)}` };
  if (version > DOCUMENT_VERSION)
    return {
      ok: false,
      path: 'version',
      message: `version: ${version} is newer than this Strata Studio understands (${DOCUMENT_VERSION}); update the app`,
    };
  let doc: Json = input;
  for (let v = version; v < DOCUMENT_VERSION; v++) {
    const step = STEPS[v];
    if (!step) return { ok: false, path: 'version', message: `version: no migration from version ${v}` };
    doc = step(doc);
  }
  return version === DOCUMENT_VERSION ? { ok: true, doc } : { ok: true, doc, from: version };
}
