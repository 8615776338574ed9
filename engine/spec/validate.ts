// Validation of Strata documents: structural (zod) and cross-field rules, with messages that name
// the layer index, block kind and field, e.g. `layer 7 (attention): heads 12 is not a multiple of
// kv_heads 5`. `parseDocument` is the one entry point for untrusted input (files, IPC, imports):
// it migrates older versions first, then validates.
//
// Not here: the schema itself (document.ts) and migrations (migrate.ts).
import type { z } from 'zod';
import {
  type Block,
  type ModelSpec,
  type PipelineSpec,
  type StrataDocument,
  StrataDocument as DocumentSchema,
  ModelSpec as ModelSchema,
  flattenStack,
} from './document.js';
import { migrateDocument } from './migrate.js';

export type Severity = 'error' | 'warning';

export interface DocIssue {
  severity: Severity;
  /** JSON path into the document, e.g. `model.stack[3].blocks[1].heads`. */
  path: string;
  /** Human sentence that names layer, kind and field. */
  message: string;
  /** Flattened main-stack layer index, when the issue is about one layer. */
  layer?: number;
  /** Stack item index (a block or a repeat group) the issue belongs to, for the editor. */
  item?: number;
  field?: string;
}

export type ParseResult =
  | { ok: true; doc: StrataDocument; warnings: DocIssue[]; migratedFrom?: number }
  | { ok: false; errors: DocIssue[] };

/** Formats a zod/issue path as `a.b[3].c`. */
export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out ? `.${String(part)}` : String(part);
  }
  return out;
}

/** Offsets of each raw stack item into the flattened layer list (defensive: works on bad input). */
function rawStackOffsets(rawStack: unknown): number[] {
  const offsets: number[] = [];
  if (!Array.isArray(rawStack)) return offsets;
  let n = 0;
  for (const item of rawStack) {
    offsets.push(n);
    if (item && typeof item === 'object' && (item as { kind?: unknown }).kind === 'repeat') {
      const group = item as { count?: unknown; blocks?: unknown };
      const count = typeof group.count === 'number' && group.count > 0 ? Math.floor(group.count) : 1;
      const inner = Array.isArray(group.blocks) ? group.blocks.length : 0;
      n += count * inner;
    } else {
      n += 1;
    }
  }
  return offsets;
}

function kindOf(value: unknown): string {
  if (value && typeof value === 'object' && typeof (value as { kind?: unknown }).kind === 'string') {
    return (value as { kind: string }).kind;
  }
  return 'block';
}

function get(root: unknown, path: ReadonlyArray<PropertyKey>): unknown {
  let cur: unknown = root;
  for (const p of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[p as never];
  }
  return cur;
}

/**
 * Describes where a zod path points in human terms: `layer 7 (attention): heads`.
 * `modelPrefix` is the path to the model object inside `root` (['model'] for documents, [] for
 * bare model specs).
 */
function describeZodPath(root: unknown, path: ReadonlyArray<PropertyKey>, modelPrefix: PropertyKey[]): {
  where: string;
  layer?: number;
  item?: number;
  field?: string;
} {
  const rel = path.slice(modelPrefix.length);
  const isModel = modelPrefix.every((p, i) => path[i] === p);
  if (isModel && rel[0] === 'stack' && typeof rel[1] === 'number') {
    const stack = get(root, [...modelPrefix, 'stack']);
    const offsets = rawStackOffsets(stack);
    const item = rel[1];
    const rawItem = get(root, [...modelPrefix, 'stack', item]);
    if (kindOf(rawItem) === 'repeat' && rel[2] === 'blocks' && typeof rel[3] === 'number') {
      const inner = rel[3];
      const rawBlock = get(root, [...modelPrefix, 'stack', item, 'blocks', inner]);
      const layer = (offsets[item] ?? 0) + inner;
      const field = formatPath(rel.slice(4)) || undefined;
      return { where: `layer ${layer} (${kindOf(rawBlock)})${field ? `: ${field}` : ''}`, layer, item, field };
    }
    if (kindOf(rawItem) === 'repeat') {
      const field = formatPath(rel.slice(2)) || undefined;
      return { where: `stack item ${item} (repeat group)${field ? `: ${field}` : ''}`, item, field };
    }
    const layer = offsets[item] ?? item;
    const field = formatPath(rel.slice(2)) || undefined;
    return { where: `layer ${layer} (${kindOf(rawItem)})${field ? `: ${field}` : ''}`, layer, item, field };
  }
  if (isModel && rel[0] === 'mtp' && rel[1] === 'blocks' && typeof rel[2] === 'number') {
    const rawBlock = get(root, [...modelPrefix, 'mtp', 'blocks', rel[2]]);
    const field = formatPath(rel.slice(3)) || undefined;
    return { where: `mtp layer ${rel[2]} (${kindOf(rawBlock)})${field ? `: ${field}` : ''}`, field };
  }
  const field = formatPath(path);
  return { where: field || 'document', field: field || undefined };
}

function zodIssues(root: unknown, error: z.ZodError, modelPrefix: PropertyKey[]): DocIssue[] {
  return error.issues.map((issue) => {
    const { where, layer, item, field } = describeZodPath(root, issue.path, modelPrefix);
    let message = issue.message;
    if (issue.code === 'unrecognized_keys') message = `unknown field(s) ${issue.keys.map((k) => `'${k}'`).join(', ')}`;
    if (issue.code === 'invalid_union' && issue.path.length > 0) {
      const kind = kindOf(get(root, issue.path));
      message = `unknown kind '${kind}'`;
    }
    return { severity: 'error' as const, path: formatPath(issue.path), message: `${where}: ${message}`, layer, item, field };
  });
}

// ---------------------------------------------------------------------------------------------
// Cross-field rules
// ---------------------------------------------------------------------------------------------

function blockIssues(block: Block, d: number, where: string, path: string): Array<Omit<DocIssue, 'layer' | 'item'>> {
  const out: Array<Omit<DocIssue, 'layer' | 'item'>> = [];
  const err = (field: string, message: string, severity: Severity = 'error') =>
    out.push({ severity, path: `${path}.${field}`, field, message: `${where}: ${message}` });
  switch (block.kind) {
    case 'attention':
      if (block.heads % block.kv_heads !== 0)
        err('heads', `heads ${block.heads} is not a multiple of kv_heads ${block.kv_heads}`);
      if (block.rope && block.rope.fraction < 1 && Math.round(block.head_dim * block.rope.fraction) % 2 !== 0)
        err('rope.fraction', `rope.fraction ${block.rope.fraction} of head_dim ${block.head_dim} rotates an odd number of dims`);
      if (block.rope && block.head_dim % 2 !== 0) err('head_dim', `head_dim ${block.head_dim} must be even with RoPE`);
      break;
    case 'mamba2':
      if (block.heads % block.groups !== 0)
        err('groups', `heads ${block.heads} is not a multiple of groups ${block.groups}`);
      if (block.dt_min > block.dt_max) err('dt_min', `dt_min ${block.dt_min} is larger than dt_max ${block.dt_max}`);
      if (block.dt_limit && block.dt_limit[0] >= block.dt_limit[1])
        err('dt_limit', `dt_limit [${block.dt_limit.join(', ')}] is empty`);
      break;
    case 'moe':
      if (block.top_k > block.experts) err('top_k', `top_k ${block.top_k} is larger than experts ${block.experts}`);
      if (block.shared_experts > 0 && block.shared_ffn === 0)
        err('shared_ffn', `shared_ffn is 0 but shared_experts is ${block.shared_experts}`);
      if (block.shared_experts === 0 && block.shared_ffn > 0)
        err('shared_ffn', `shared_ffn ${block.shared_ffn} is set but shared_experts is 0`, 'warning');
      if (block.latent !== null && block.latent >= d)
        err('latent', `latent ${block.latent} is not smaller than d_model ${d}, so LatentMoE saves nothing`, 'warning');
      if (block.router.expert_bias && block.router.type === 'softmax')
        err('router.expert_bias', 'expert_bias balancing is meant for the sigmoid router', 'warning');
      break;
    case 'mlp':
      break;
  }
  return out;
}

/** Cross-field rules of a model that already passed the schema. */
export function checkModel(model: ModelSpec, pathPrefix = 'model'): DocIssue[] {
  const issues: DocIssue[] = [];
  const layers = flattenStack(model.stack);
  const n = layers.length;
  // A block inside a repeat group is checked once (at its first occurrence).
  const seen = new Set<Block>();
  for (const layer of layers) {
    if (seen.has(layer.block)) continue;
    seen.add(layer.block);
    const { item, inner } = layer.source;
    const path =
      inner === undefined ? `${pathPrefix}.stack[${item}]` : `${pathPrefix}.stack[${item}].blocks[${inner}]`;
    for (const issue of blockIssues(layer.block, model.d_model, `layer ${layer.index} (${layer.block.kind})`, path)) {
      issues.push({ ...issue, layer: layer.index, item });
    }
  }
  if (model.mtp) {
    model.mtp.blocks.forEach((block, j) => {
      issues.push(...blockIssues(block, model.d_model, `mtp layer ${j} (${block.kind})`, `${pathPrefix}.mtp.blocks[${j}]`));
    });
  }
  model.pipeline_cuts.forEach((cut, i) => {
    const path = `${pathPrefix}.pipeline_cuts[${i}]`;
    if (cut >= n) issues.push({ severity: 'error', path, field: 'pipeline_cuts', message: `pipeline_cuts[${i}]: cut at layer ${cut} is past the last layer ${n - 1}` });
    if (i > 0 && cut <= model.pipeline_cuts[i - 1]!)
      issues.push({ severity: 'error', path, field: 'pipeline_cuts', message: `pipeline_cuts[${i}]: cuts must be strictly increasing (${model.pipeline_cuts[i - 1]} then ${cut})` });
  });
  model.precision.rules.forEach((rule, i) => {
    const path = `${pathPrefix}.precision.rules[${i}].select`;
    const range = rule.select.layers;
    if (range && range.from > range.to)
      issues.push({ severity: 'error', path: `${path}.layers`, field: 'layers', message: `precision rule ${i}: layers.from ${range.from} is after layers.to ${range.to}` });
    if (range && range.to >= n)
      issues.push({ severity: 'error', path: `${path}.layers`, field: 'layers', message: `precision rule ${i}: layers.to ${range.to} is past the last layer ${n - 1}` });
  });
  return issues;
}

/** Token ids the tokenizer produces must fit in the model's vocabulary. */
export const TOKENIZER_VOCAB: Record<PipelineSpec['tokenizer']['kind'], number> = {
  byte: 256 + 3, // 256 bytes + <bos>, <eos>, <pad> (see engine tokenizers)
  gpt2: 50257,
};

export function checkPipeline(doc: StrataDocument): DocIssue[] {
  const issues: DocIssue[] = [];
  const need = TOKENIZER_VOCAB[doc.pipeline.tokenizer.kind];
  if (doc.model.vocab_size < need)
    issues.push({
      severity: 'error',
      path: 'model.vocab_size',
      field: 'vocab_size',
      message: `model: vocab_size ${doc.model.vocab_size} is smaller than the ${doc.pipeline.tokenizer.kind} tokenizer's ${need} tokens`,
    });
  const t = doc.pipeline.training;
  if (t.warmup_steps > t.steps)
    issues.push({ severity: 'warning', path: 'pipeline.training.warmup_steps', field: 'warmup_steps', message: `training: warmup_steps ${t.warmup_steps} is longer than steps ${t.steps}` });
  return issues;
}

/** Validates and fills defaults of an untrusted document (any version). */
export function parseDocument(input: unknown): ParseResult {
  const migrated = migrateDocument(input);
  if (!migrated.ok) return { ok: false, errors: [{ severity: 'error', path: migrated.path, message: migrated.message }] };
  const raw = migrated.doc;
  const parsed = DocumentSchema.safeParse(raw);
  if (!parsed.success) return { ok: false, errors: zodIssues(raw, parsed.error, ['model']) };
  const issues = [...checkModel(parsed.data.model), ...checkPipeline(parsed.data)];
  const errors = issues.filter((i) => i.severity === 'error');
  if (errors.length) return { ok: false, errors };
  return { ok: true, doc: parsed.data, warnings: issues, migratedFrom: migrated.from };
}

/** Validates a bare model spec (as the importers produce). */
export function parseModelSpec(input: unknown): { ok: true; model: ModelSpec; warnings: DocIssue[] } | { ok: false; errors: DocIssue[] } {
  const parsed = ModelSchema.safeParse(input);
  if (!parsed.success) return { ok: false, errors: zodIssues(input, parsed.error, []) };
  const issues = checkModel(parsed.data, 'model');
  const errors = issues.filter((i) => i.severity === 'error');
  if (errors.length) return { ok: false, errors };
  return { ok: true, model: parsed.data, warnings: issues };
}

/** Thrown by helpers that need a valid document; carries every issue. */
export class DocumentError extends Error {
  constructor(
    readonly issues: DocIssue[],
    readonly file?: string,
  ) {
    super(issues.map((i) => (file ? `${file}: ${i.message}` : i.message)).join('\n'));
    this.name = 'DocumentError';
  }
}

/** Like parseDocument but throws a DocumentError. */
export function loadDocument(input: unknown, file?: string): StrataDocument {
  const result = parseDocument(input);
  if (!result.ok) throw new DocumentError(result.errors, file);
  return result.doc;
}
