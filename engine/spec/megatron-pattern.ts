// Megatron-LM hybrid layer patterns (`--hybrid-layer-pattern`, formerly
// `--hybrid-override-pattern`) to and from Strata models, and `compressStack`, which folds a flat
// list of blocks into repeat groups.
//
// What is implemented (Megatron-LM megatron/core/ssm/mamba_hybrid_layer_allocation.py semantics):
//   - One letter per layer: `M` Mamba-2, `*` attention, `-` dense MLP, `E` MoE.
//   - `|` between letters of the main pattern marks a pipeline-stage cut; it maps to
//     `model.pipeline_cuts`, the flattened index of the first layer of the new stage. A `|` at the
//     start or end of the main pattern, or two in a row, is an error (an empty stage).
//   - `/` introduces Multi-Token Prediction: `MAIN/X/X` is main stack MAIN and an MTP module with
//     layer pattern X repeated once per depth (here depth 2). Every MTP segment must be identical
//     and non-empty (Megatron requires identical segments; Strata also rejects empty ones and a
//     `|` inside MTP segments). The main pattern must be non-empty.
// Positions in error messages are 1-based character positions in the pattern string.
//
// Not here: Megatron launch flags (cli/commands/convert.ts builds them), HF configs (spec/hf/).
import {
  type Block,
  type BlockInput,
  type BlockKind,
  type ModelSpec,
  type ModelSpecInput,
  type MtpSpec,
  type StackItem,
  flattenStack,
} from './document.js';

/** Pattern letter of each block kind. */
export const LETTER_OF_KIND: Readonly<Record<BlockKind, string>> = {
  mamba2: 'M',
  attention: '*',
  mlp: '-',
  moe: 'E',
};

/** Block kind of each pattern letter. */
export const KIND_OF_LETTER: Readonly<Record<string, BlockKind>> = {
  M: 'mamba2',
  '*': 'attention',
  '-': 'mlp',
  E: 'moe',
};

export const PIPELINE_SEPARATOR = '|';
export const MTP_SEPARATOR = '/';

/** A pattern that cannot be parsed or built; `position` is 1-based (0 when about the whole pattern). */
export class PatternError extends Error {
  constructor(
    message: string,
    readonly position: number,
    readonly character: string,
  ) {
    super(message);
    this.name = 'PatternError';
  }
}

/** A pattern split into its parts, with no block parameters yet. */
export interface ParsedPattern {
  /** Kinds of the main-stack layers, in order. */
  main: BlockKind[];
  /** Flattened layer indices where a new pipeline stage begins. */
  pipelineCuts: number[];
  /** The MTP module's layer kinds and how many times it is applied, or null without MTP. */
  mtp: { kinds: BlockKind[]; depth: number } | null;
}

function badCharacter(pattern: string, index: number, expected: string): PatternError {
  const ch = pattern[index] ?? '';
  return new PatternError(
    `pattern "${pattern}": bad character '${ch}' at position ${index + 1} (expected ${expected})`,
    index + 1,
    ch,
  );
}

/** Splits a Megatron hybrid layer pattern into main kinds, pipeline cuts and the MTP module. */
export function parsePattern(pattern: string): ParsedPattern {
  const main: BlockKind[] = [];
  const pipelineCuts: number[] = [];
  let i = 0;
  // Main pattern: letters and single `|` between letters.
  for (; i < pattern.length; i++) {
    const ch = pattern[i]!;
    if (ch === MTP_SEPARATOR) break;
    if (ch === PIPELINE_SEPARATOR) {
      const next = pattern[i + 1];
      if (main.length === 0 || next === undefined || next === MTP_SEPARATOR || next === PIPELINE_SEPARATOR)
        throw new PatternError(
          `pattern "${pattern}": pipeline cut '|' at position ${i + 1} leaves an empty stage`,
          i + 1,
          ch,
        );
      pipelineCuts.push(main.length);
      continue;
    }
    const kind = KIND_OF_LETTER[ch];
    if (!kind) throw badCharacter(pattern, i, "one of M * - E, '|' or '/'");
    main.push(kind);
  }
  if (main.length === 0) {
    if (pattern.length === 0) throw new PatternError('pattern is empty', 0, '');
    throw new PatternError(`pattern "${pattern}": the main pattern before '/' at position ${i + 1} is empty`, i + 1, '/');
  }
  if (i >= pattern.length) return { main, pipelineCuts, mtp: null };

  // MTP segments: `/X/X/...`, all identical and non-empty.
  const segments: Array<{ start: number; text: string }> = [];
  while (i < pattern.length) {
    const start = i + 1; // index of the segment's first character
    let end = start;
    while (end < pattern.length && pattern[end] !== MTP_SEPARATOR) end++;
    const text = pattern.slice(start, end);
    if (text.length === 0)
      throw new PatternError(`pattern "${pattern}": MTP segment after '/' at position ${i + 1} is empty`, i + 1, '/');
    for (let j = start; j < end; j++) {
      if (!KIND_OF_LETTER[pattern[j]!]) throw badCharacter(pattern, j, 'one of M * - E inside an MTP segment');
    }
    segments.push({ start, text });
    i = end;
  }
  const first = segments[0]!;
  for (const segment of segments.slice(1)) {
    if (segment.text !== first.text) {
      const offset = [...segment.text].findIndex((c, k) => c !== first.text[k]);
      const at = segment.start + (offset >= 0 ? offset : Math.min(segment.text.length, first.text.length));
      throw new PatternError(
        `pattern "${pattern}": MTP segment "${segment.text}" at position ${segment.start + 1} differs from the first MTP segment "${first.text}" (every MTP depth uses the same module)`,
        at + 1,
        pattern[at] ?? '',
      );
    }
  }
  return {
    main,
    pipelineCuts,
    mtp: { kinds: [...first.text].map((c) => KIND_OF_LETTER[c]!), depth: segments.length },
  };
}

/** The pattern string of parsed parts (inverse of parsePattern). */
export function formatPattern(parsed: ParsedPattern): string {
  const cuts = new Set(parsed.pipelineCuts);
  let out = '';
  parsed.main.forEach((kind, index) => {
    if (cuts.has(index) && index > 0) out += PIPELINE_SEPARATOR;
    out += LETTER_OF_KIND[kind];
  });
  if (parsed.mtp) {
    const segment = parsed.mtp.kinds.map((k) => LETTER_OF_KIND[k]).join('');
    for (let d = 0; d < parsed.mtp.depth; d++) out += MTP_SEPARATOR + segment;
  }
  return out;
}

/** The Megatron hybrid layer pattern of a model: layer letters, `|` at pipeline cuts, `/` MTP segments. */
export function patternFromModel(model: Pick<ModelSpec, 'stack' | 'pipeline_cuts' | 'mtp'>): string {
  return formatPattern({
    main: flattenStack(model.stack).map((layer) => layer.block.kind),
    pipelineCuts: model.pipeline_cuts,
    mtp: model.mtp ? { kinds: model.mtp.blocks.map((b) => b.kind), depth: model.mtp.depth } : null,
  });
}

/** One template block per kind; the `kind` field of each must match its key. */
export type BlockTemplates = { [K in BlockKind]?: Extract<BlockInput, { kind: K }> };

/** What a pattern does not say: model-level fields and the block parameters of each letter. */
export type PatternDefaults = Omit<ModelSpecInput, 'stack' | 'pipeline_cuts' | 'mtp'> & {
  blocks: BlockTemplates;
  /** MTP settings the pattern cannot express (loss weight, weight sharing). */
  mtp?: Partial<Pick<MtpSpec, 'loss_weight' | 'shared_weights'>>;
};

/**
 * Builds a model (input form, defaults not yet filled) from a pattern: each letter becomes a copy
 * of that kind's template block; runs of repeats are folded into repeat groups (compressStack).
 */
export function modelFromPattern(pattern: string, defaults: PatternDefaults): ModelSpecInput {
  const parsed = parsePattern(pattern);
  const { blocks: templates, mtp: mtpDefaults, ...modelFields } = defaults;
  const letterPositions = letterPositionsOf(pattern);
  const blockFor = (kind: BlockKind, letterIndex: number): BlockInput => {
    const template = templates[kind];
    const position = letterPositions[letterIndex] ?? 0;
    if (!template)
      throw new PatternError(
        `pattern "${pattern}": no ${kind} block template for '${LETTER_OF_KIND[kind]}' at position ${position}`,
        position,
        LETTER_OF_KIND[kind],
      );
    if (template.kind !== kind)
      throw new PatternError(`block template for ${kind} has kind '${template.kind}'`, position, LETTER_OF_KIND[kind]);
    return structuredClone(template);
  };
  const mainBlocks = parsed.main.map((kind, i) => blockFor(kind, i));
  const model: ModelSpecInput = {
    ...modelFields,
    stack: compressStack(mainBlocks),
    pipeline_cuts: parsed.pipelineCuts,
    mtp: null,
  };
  if (parsed.mtp) {
    const mtpBlocks = parsed.mtp.kinds.map((kind, j) => blockFor(kind, parsed.main.length + j));
    model.mtp = { kind: 'mtp', depth: parsed.mtp.depth, blocks: mtpBlocks as Block[], ...mtpDefaults };
  }
  return model;
}

/** 1-based positions of the layer letters (main stack, then the first MTP segment). */
function letterPositionsOf(pattern: string): number[] {
  const positions: number[] = [];
  let mtpSegments = 0;
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i]!;
    if (ch === MTP_SEPARATOR) mtpSegments++;
    else if (KIND_OF_LETTER[ch] && mtpSegments <= 1) positions.push(i + 1);
  }
  return positions;
}

// ---------------------------------------------------------------------------------------------
// Repeat detection
// ---------------------------------------------------------------------------------------------

/** Structural equality of JSON-like values (objects compared by keys, order-insensitive). */
export function deepEqualJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    return a.length === bb.length && a.every((v, i) => deepEqualJson(v, bb[i]));
  }
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  const keys = Object.keys(ao).filter((k) => ao[k] !== undefined);
  const otherKeys = Object.keys(bo).filter((k) => bo[k] !== undefined);
  return keys.length === otherKeys.length && keys.every((k) => deepEqualJson(ao[k], bo[k]));
}

/** A repeat group over blocks of type B (the stack item shape). */
export interface RepeatOf<B> {
  kind: 'repeat';
  count: number;
  blocks: B[];
}

/**
 * Folds a flat block list into stack items: scanning left to right, at each position it takes the
 * period p and count c (c >= 2) of consecutive identical runs that cover the most layers (ties: the
 * shorter period), emits `repeat{count: c, blocks}` and continues after it; a block that starts no
 * run is emitted as is. Lossless: flattenStack(compressStack(x)) lists exactly x.
 */
export function compressStack<B extends { kind: string }>(blocks: readonly B[]): Array<B | RepeatOf<B>> {
  const items: Array<B | RepeatOf<B>> = [];
  const n = blocks.length;
  const same = (i: number, j: number) => deepEqualJson(blocks[i], blocks[j]);
  let i = 0;
  while (i < n) {
    let bestPeriod = 0;
    let bestCount = 1;
    for (let period = 1; i + 2 * period <= n; period++) {
      let count = 1;
      while (i + (count + 1) * period <= n) {
        const start = i + count * period;
        let matches = true;
        for (let k = 0; k < period && matches; k++) matches = same(i + k, start + k);
        if (!matches) break;
        count++;
      }
      if (count >= 2 && period * count > bestPeriod * bestCount) {
        bestPeriod = period;
        bestCount = count;
      }
    }
    if (bestCount >= 2) {
      items.push({ kind: 'repeat', count: bestCount, blocks: blocks.slice(i, i + bestPeriod).map((b) => structuredClone(b)) });
      i += bestPeriod * bestCount;
    } else {
      items.push(structuredClone(blocks[i]!));
      i += 1;
    }
  }
  return items;
}

/** compressStack for parsed blocks, typed as document stack items. */
export function compressBlocks(blocks: readonly Block[]): StackItem[] {
  return compressStack(blocks).map((item) =>
    item.kind === 'repeat' ? { ...(item as RepeatOf<Block>), collapsed: false } : (item as Block),
  );
}
