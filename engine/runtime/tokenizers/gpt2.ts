// GPT-2 byte-level BPE tokenizer (50,257 ids; <|endoftext|> = 50256 is document separator, begin
// marker and padding alike, as in GPT-2). The merge ranks ship inside the `js-tiktoken` npm package
// (its `gpt2` rank file), so nothing is downloaded at run time.
//
// Not here: the byte tokenizer (byte.ts), HF tokenizer.json writing (hf-files.ts).
import { Tiktoken } from 'js-tiktoken/lite';
import gpt2Ranks from 'js-tiktoken/ranks/gpt2';
import type { TextTokenizer } from './types.js';

export const GPT2_VOCAB_SIZE = 50257;
export const GPT2_EOT_ID = 50256;
export const GPT2_EOT_TOKEN = '<|endoftext|>';

let sharedEncoder: Tiktoken | null = null;

/** The rank table is large (about 1 MB of text); parse it once per process. */
function encoder(): Tiktoken {
  sharedEncoder ??= new Tiktoken(gpt2Ranks);
  return sharedEncoder;
}

export class Gpt2Tokenizer implements TextTokenizer {
  readonly kind = 'gpt2' as const;
  readonly vocabSize = GPT2_VOCAB_SIZE;
  readonly bosId = GPT2_EOT_ID;
  readonly eosId = GPT2_EOT_ID;
  readonly padId = GPT2_EOT_ID;

  /** Encodes text; a literal "<|endoftext|>" in the text is treated as plain text, never as the special id. */
  encode(text: string): number[] {
    return encoder().encode(text, [], []);
  }

  decode(ids: readonly number[]): string {
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= GPT2_VOCAB_SIZE) throw new RangeError(`gpt2 tokenizer: id ${id} is outside 0..${GPT2_VOCAB_SIZE - 1}`);
    }
    return encoder().decode(ids.filter((id) => id !== GPT2_EOT_ID));
  }
}

/** The raw rank table (base64 token bytes in rank order), for writing HF vocab/merges files. */
export function gpt2RankTable(): { patStr: string; ranksText: string } {
  return { patStr: gpt2Ranks.pat_str, ranksText: gpt2Ranks.bpe_ranks };
}
