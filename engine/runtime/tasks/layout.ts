// The token layout every synthetic task shares, within the byte tokenizer's 259 ids so a task runs
// on any model whose vocab fits the byte tokenizer: keys are ids 0..127, values 128..255 (disjoint,
// as in Zoology's MQAR), <bos> 256 starts a sample, <eos> 257 separates parts (e.g. marks a
// question), <pad> 258 fills the rest. A task sample is written into fixed-length arrays with a
// mask that is 1 exactly on the answer tokens.
//
// Not here: the task generators (mqar.ts, needle.ts, copy.ts) or writing files (index.ts).
import { BYTE_BOS_ID, BYTE_EOS_ID, BYTE_PAD_ID, BYTE_VOCAB_SIZE } from '../tokenizers/byte.js';

export const TASK_VOCAB = BYTE_VOCAB_SIZE;
export const KEY_BASE = 0;
export const KEY_COUNT = 128;
export const VALUE_BASE = 128;
export const VALUE_COUNT = 128;
export const TASK_BOS = BYTE_BOS_ID;
export const TASK_SEP = BYTE_EOS_ID;
export const TASK_PAD = BYTE_PAD_ID;

/** One fixed-length sample being filled left to right. */
export class SampleWriter {
  private position = 0;
  constructor(
    readonly tokens: Uint32Array,
    readonly mask: Uint8Array,
  ) {
    tokens.fill(TASK_PAD);
    mask.fill(0);
  }

  get length(): number {
    return this.position;
  }

  /** Appends a token; `isAnswer` marks it as one the loss and accuracy count. */
  push(token: number, isAnswer = false): void {
    if (this.position >= this.tokens.length) throw new RangeError(`task sample overflows seq_len ${this.tokens.length}`);
    this.tokens[this.position] = token;
    this.mask[this.position] = isAnswer ? 1 : 0;
    this.position++;
  }
}
