// Entry point of the tokenizers: picks an implementation by kind (the document's
// `pipeline.tokenizer.kind`).
//
// Not here: the implementations themselves (byte.ts, gpt2.ts).
import { ByteTokenizer } from './byte.js';
import { Gpt2Tokenizer } from './gpt2.js';
import type { TextTokenizer, TokenizerKind } from './types.js';

export type { TextTokenizer, TokenizerKind } from './types.js';

export function createTokenizer(kind: TokenizerKind): TextTokenizer {
  switch (kind) {
    case 'byte':
      return new ByteTokenizer();
    case 'gpt2':
      return new Gpt2Tokenizer();
  }
}
