// The tokenizer interface shared by the byte-level and GPT-2 BPE tokenizers: text <-> token ids,
// plus the special ids the data pipeline and the engine need (begin/end of sequence, padding).
//
// Not here: the implementations (byte.ts, gpt2.ts) or writing Hugging Face tokenizer files (hf-files.ts).

export type TokenizerKind = 'byte' | 'gpt2';

export interface TextTokenizer {
  readonly kind: TokenizerKind;
  /** Number of ids the tokenizer can produce (the model's vocab_size must be at least this). */
  readonly vocabSize: number;
  /** Id placed before a document, or null when the tokenizer has none of its own. */
  readonly bosId: number | null;
  /** Id placed after every document (document separator in token streams). */
  readonly eosId: number;
  /** Id used to fill fixed-length samples past their content. */
  readonly padId: number;
  /** Token ids of `text` (no special ids added). */
  encode(text: string): number[];
  /** Text of `ids`; special ids are dropped. */
  decode(ids: readonly number[]): string;
}
