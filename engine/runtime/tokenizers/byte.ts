// Byte-level tokenizer: one token per UTF-8 byte (ids 0..255) plus three special ids, 256 <bos>,
// 257 <eos>, 258 <pad>. This numbering is fixed and shared with the native engine and with the
// Hugging Face tokenizer files Strata exports; never renumber it.
//
// Not here: the GPT-2 BPE tokenizer (gpt2.ts), HF tokenizer.json writing (hf-files.ts).
import type { TextTokenizer } from './types.js';

export const BYTE_BOS_ID = 256;
export const BYTE_EOS_ID = 257;
export const BYTE_PAD_ID = 258;
export const BYTE_VOCAB_SIZE = 259;
export const BYTE_SPECIAL_TOKENS = { '<bos>': BYTE_BOS_ID, '<eos>': BYTE_EOS_ID, '<pad>': BYTE_PAD_ID } as const;

const utf8Encoder = new TextEncoder();
// Invalid byte sequences (a model may emit any bytes) decode to U+FFFD instead of throwing.
const utf8Decoder = new TextDecoder('utf-8', { fatal: false });

export class ByteTokenizer implements TextTokenizer {
  readonly kind = 'byte' as const;
  readonly vocabSize = BYTE_VOCAB_SIZE;
  readonly bosId = BYTE_BOS_ID;
  readonly eosId = BYTE_EOS_ID;
  readonly padId = BYTE_PAD_ID;

  encode(text: string): number[] {
    return Array.from(utf8Encoder.encode(text));
  }

  /** Bytes of `text` as a typed array (no copy into a JS array; for large corpora). */
  encodeBytes(text: string): Uint8Array {
    return utf8Encoder.encode(text);
  }

  decode(ids: readonly number[]): string {
    const bytes = new Uint8Array(ids.length);
    let n = 0;
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= BYTE_VOCAB_SIZE) throw new RangeError(`byte tokenizer: id ${id} is outside 0..${BYTE_VOCAB_SIZE - 1}`);
      if (id < 256) bytes[n++] = id;
    }
    return utf8Decoder.decode(bytes.subarray(0, n));
  }
}
