// Hugging Face tokenizer files for exported models: `tokenizer.json` (the `tokenizers` library's
// format, loaded by transformers' AutoTokenizer as a PreTrainedTokenizerFast), `tokenizer_config.json`
// and `special_tokens_map.json`, for both Strata tokenizers:
// - byte: a byte-level BPE with 256 byte tokens (id = byte value, GPT-2's byte-to-unicode alphabet),
//   no merges, and <bos> 256, <eos> 257, <pad> 258 as added special tokens;
// - gpt2: GPT-2's vocab and merges, rebuilt from the rank table that ships in js-tiktoken.
//
// Not here: tokenizing text (byte.ts, gpt2.ts) or the model files of an export (cli/commands/export-hf.ts).
import { join } from 'node:path';
import { writeFileAtomic } from '../atomic-write.js';
import { BYTE_SPECIAL_TOKENS } from './byte.js';
import { GPT2_EOT_ID, GPT2_EOT_TOKEN, gpt2RankTable } from './gpt2.js';
import type { TokenizerKind } from './types.js';

/**
 * GPT-2's reversible map from the 256 byte values to printable unicode characters: printable
 * Latin-1 bytes map to themselves, the rest to code points from 256 upward, in byte order.
 */
export function byteToUnicodeTable(): string[] {
  const table: string[] = new Array(256);
  const isPrintable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  let next = 256;
  for (let b = 0; b < 256; b++) table[b] = String.fromCodePoint(isPrintable(b) ? b : next++);
  return table;
}

interface AddedToken {
  id: number;
  content: string;
  single_word: false;
  lstrip: false;
  rstrip: false;
  normalized: false;
  special: true;
}

function addedToken(id: number, content: string): AddedToken {
  return { id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true };
}

function tokenizerJson(vocab: Record<string, number>, merges: string[], added: AddedToken[], useRegex: boolean): object {
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: useRegex },
    post_processor: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: useRegex },
    decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: useRegex },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges,
    },
  };
}

/** tokenizer.json of the byte tokenizer (259 ids, no merges). */
export function byteTokenizerJson(): object {
  const alphabet = byteToUnicodeTable();
  const vocab: Record<string, number> = {};
  alphabet.forEach((ch, byte) => {
    vocab[ch] = byte;
  });
  const added = Object.entries(BYTE_SPECIAL_TOKENS).map(([content, id]) => addedToken(id, content));
  // No regex split: with no merges every byte is its own token whatever the pre-split.
  return tokenizerJson(vocab, [], added, false);
}

/** The GPT-2 rank table as token byte strings in rank order (index = id). */
function gpt2TokensByRank(): Uint8Array[] {
  const tokens: Uint8Array[] = [];
  for (const line of gpt2RankTable().ranksText.split('\n')) {
    if (!line) continue;
    const [, offsetText, ...encoded] = line.split(' ');
    const offset = Number.parseInt(offsetText ?? '', 10);
    encoded.forEach((b64, i) => {
      tokens[offset + i] = new Uint8Array(Buffer.from(b64, 'base64'));
    });
  }
  return tokens;
}

/**
 * Recovers the merge list from ranks: the merge that creates token r is the split that BPE, using
 * only ranks below r, reaches on r's bytes (the standard tiktoken -> HF conversion).
 */
function gpt2VocabAndMerges(): { vocab: Record<string, number>; merges: string[] } {
  const tokens = gpt2TokensByRank();
  const alphabet = byteToUnicodeTable();
  const toUnicode = (bytes: Uint8Array) => Array.from(bytes, (b) => alphabet[b]).join('');
  const rankOf = new Map<string, number>();
  tokens.forEach((bytes, rank) => rankOf.set(toUnicode(bytes), rank));
  const vocab: Record<string, number> = {};
  const merges: string[] = [];
  tokens.forEach((bytes, rank) => {
    const text = toUnicode(bytes);
    vocab[text] = rank;
    if (bytes.length < 2) return;
    let parts = Array.from(text);
    for (;;) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i + 1 < parts.length; i++) {
        const r = rankOf.get(parts[i]! + parts[i + 1]!);
        if (r !== undefined && r < rank && r < bestRank) {
          bestRank = r;
          best = i;
        }
      }
      if (best < 0) break;
      parts = [...parts.slice(0, best), parts[best]! + parts[best + 1]!, ...parts.slice(best + 2)];
    }
    if (parts.length !== 2) throw new Error(`gpt2 ranks: token ${rank} cannot be built from one merge of lower ranks`);
    merges.push(`${parts[0]} ${parts[1]}`);
  });
  return { vocab, merges };
}

/** tokenizer.json of GPT-2 (50,257 ids, 50,000 merges). */
export function gpt2TokenizerJson(): object {
  const { vocab, merges } = gpt2VocabAndMerges();
  return tokenizerJson(vocab, merges, [addedToken(GPT2_EOT_ID, GPT2_EOT_TOKEN)], true);
}

/** Special tokens by role, as tokenizer_config.json and special_tokens_map.json name them. */
function specialTokens(kind: TokenizerKind): { bos_token: string; eos_token: string; pad_token: string } {
  if (kind === 'byte') return { bos_token: '<bos>', eos_token: '<eos>', pad_token: '<pad>' };
  return { bos_token: GPT2_EOT_TOKEN, eos_token: GPT2_EOT_TOKEN, pad_token: GPT2_EOT_TOKEN };
}

/** Writes tokenizer.json, tokenizer_config.json and special_tokens_map.json into `folder`; returns the file names. */
export function writeHfTokenizerFiles(folder: string, kind: TokenizerKind, modelMaxLength: number): string[] {
  const json = kind === 'byte' ? byteTokenizerJson() : gpt2TokenizerJson();
  const specials = specialTokens(kind);
  const config = {
    tokenizer_class: 'PreTrainedTokenizerFast',
    ...specials,
    model_max_length: modelMaxLength,
    clean_up_tokenization_spaces: false,
    add_bos_token: false,
    add_eos_token: false,
  };
  writeFileAtomic(join(folder, 'tokenizer.json'), JSON.stringify(json));
  writeFileAtomic(join(folder, 'tokenizer_config.json'), `${JSON.stringify(config, null, 2)}\n`);
  writeFileAtomic(join(folder, 'special_tokens_map.json'), `${JSON.stringify(specials, null, 2)}\n`);
  return ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json'];
}
