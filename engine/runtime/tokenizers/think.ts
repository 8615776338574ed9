// Thinking-span markers for generation (the thinking budget of `strata generate`): `<think>` and
// `</think>` as two single special ids placed just past a tokenizer's own ids (byte: 259 and 260;
// GPT-2: 50257 and 50258), inside the design's padded vocabulary. The engine's thinking budget
// counts tokens between these two ids and forces the closing one when the budget is spent, so the
// markers must be single ids rather than the several bytes or BPE pieces the literal text would be.
// Also decodes generated ids for display: the markers print as their text, and ids the tokenizer
// does not know (the padded vocabulary tail an untrained model may still emit) are dropped and counted.
//
// Not here: the tokenizers themselves (byte.ts, gpt2.ts) or the Hugging Face tokenizer files
// (hf-files.ts, which do not list these markers).
import type { TextTokenizer } from './types.js';

export const THINK_OPEN_TEXT = '<think>';
export const THINK_CLOSE_TEXT = '</think>';

export interface ThinkIds {
  open: number;
  close: number;
}

/** The marker ids of `tokenizer` for a model of `vocabSize` ids; throws when the vocabulary has no room. */
export function thinkIds(tokenizer: TextTokenizer, vocabSize: number): ThinkIds {
  const ids = { open: tokenizer.vocabSize, close: tokenizer.vocabSize + 1 };
  if (ids.close >= vocabSize)
    throw new RangeError(
      `the ${tokenizer.kind} tokenizer places ${THINK_OPEN_TEXT} and ${THINK_CLOSE_TEXT} at ids ${ids.open} and ${ids.close}, but the model's vocab_size is ${vocabSize} (needs at least ${ids.close + 1})`,
    );
  return ids;
}

/** Token ids of `text` where each literal `<think>` / `</think>` becomes its marker id. */
export function encodeWithThinkTags(tokenizer: TextTokenizer, text: string, think: ThinkIds): number[] {
  const ids: number[] = [];
  for (const part of text.split(/(<think>|<\/think>)/)) {
    if (part === THINK_OPEN_TEXT) ids.push(think.open);
    else if (part === THINK_CLOSE_TEXT) ids.push(think.close);
    else if (part) ids.push(...tokenizer.encode(part));
  }
  return ids;
}

export interface DecodedText {
  text: string;
  /** Generated ids outside the tokenizer's range that were left out of `text`. */
  unknownIds: number;
}

/**
 * Text of generated ids: special ids are dropped, markers (when given) print as `<think>` /
 * `</think>`, and ids beyond the tokenizer's range are left out and counted.
 */
export function decodeGenerated(tokenizer: TextTokenizer, ids: readonly number[], think: ThinkIds | null): DecodedText {
  let text = '';
  let unknownIds = 0;
  let run: number[] = [];
  const flush = () => {
    if (run.length) text += tokenizer.decode(run);
    run = [];
  };
  for (const id of ids) {
    if (think && (id === think.open || id === think.close)) {
      flush();
      text += id === think.open ? THINK_OPEN_TEXT : THINK_CLOSE_TEXT;
    } else if (Number.isInteger(id) && id >= 0 && id < tokenizer.vocabSize) {
      run.push(id);
    } else {
      unknownIds++;
    }
  }
  flush();
  return { text, unknownIds };
}
