// Tests of the byte and GPT-2 tokenizers against known encodings, and of the HF tokenizer files'
// structure (loading them in transformers is checked by tests/python/test_tokenizer_export.py).
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BYTE_EOS_ID, BYTE_VOCAB_SIZE, ByteTokenizer } from './byte.js';
import { GPT2_EOT_ID, Gpt2Tokenizer } from './gpt2.js';
import { byteToUnicodeTable, byteTokenizerJson, gpt2TokenizerJson, writeHfTokenizerFiles } from './hf-files.js';
import { createTokenizer } from './index.js';

describe('byte tokenizer', () => {
  const tok = new ByteTokenizer();
  it('encodes UTF-8 bytes as ids', () => {
    expect(tok.encode('Hi é')).toEqual([72, 105, 32, 195, 169]);
    expect(tok.encode('😀')).toEqual([240, 159, 152, 128]);
  });
  it('round-trips and drops special ids when decoding', () => {
    const text = 'To be, or not to be: that is the question.\n— Ünïcödé';
    expect(tok.decode([256, ...tok.encode(text), BYTE_EOS_ID, 258])).toBe(text);
  });
  it('rejects ids outside its vocabulary', () => {
    expect(() => tok.decode([BYTE_VOCAB_SIZE])).toThrow(/outside 0..258/);
  });
});

describe('gpt2 tokenizer', () => {
  const tok = new Gpt2Tokenizer();
  it('matches published GPT-2 ids', () => {
    expect(tok.encode('Hello world')).toEqual([15496, 995]);
    expect(tok.encode(' the')).toEqual([262]);
    expect(tok.encode('Hello world, this is GPT-2!')).toEqual([15496, 995, 11, 428, 318, 402, 11571, 12, 17, 0]);
  });
  it('treats a literal end-of-text marker in the input as text', () => {
    expect(tok.encode('<|endoftext|>')).not.toContain(GPT2_EOT_ID);
  });
  it('round-trips text', () => {
    const text = "Now is the winter of our discontent\nMade glorious summer by this sun of York;";
    expect(tok.decode([GPT2_EOT_ID, ...tok.encode(text)])).toBe(text);
  });
});

describe('createTokenizer', () => {
  it('returns the tokenizer of each kind with its vocabulary size', () => {
    expect(createTokenizer('byte').vocabSize).toBe(259);
    expect(createTokenizer('gpt2').vocabSize).toBe(50257);
  });
});

describe('HF tokenizer files', () => {
  it('maps every byte to a distinct printable character', () => {
    const table = byteToUnicodeTable();
    expect(new Set(table).size).toBe(256);
    expect(table[32]).toBe('Ġ');
    expect(table[65]).toBe('A');
  });
  it('byte tokenizer.json has 256 byte ids, no merges and the three specials', () => {
    const json = byteTokenizerJson() as { model: { vocab: Record<string, number>; merges: string[] }; added_tokens: { id: number; content: string }[] };
    expect(Object.keys(json.model.vocab)).toHaveLength(256);
    expect(json.model.vocab['A']).toBe(65);
    expect(json.model.merges).toEqual([]);
    expect(json.added_tokens.map((t) => [t.id, t.content])).toEqual([
      [256, '<bos>'],
      [257, '<eos>'],
      [258, '<pad>'],
    ]);
  });
  it('gpt2 tokenizer.json rebuilds the 50,000 merges in rank order', () => {
    const json = gpt2TokenizerJson() as { model: { vocab: Record<string, number>; merges: string[] } };
    expect(Object.keys(json.model.vocab)).toHaveLength(50256);
    expect(json.model.merges).toHaveLength(50000);
    expect(json.model.merges[0]).toBe('Ġ t'); // GPT-2's first merge
    expect(json.model.vocab['Ġthe']).toBe(262);
  });
  it('writes the three files with matching special tokens', () => {
    const folder = mkdtempSync(join(tmpdir(), 'strata-hftok-'));
    expect(writeHfTokenizerFiles(folder, 'byte', 512)).toEqual(['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json']);
    const config = JSON.parse(readFileSync(join(folder, 'tokenizer_config.json'), 'utf8'));
    expect(config).toMatchObject({ tokenizer_class: 'PreTrainedTokenizerFast', eos_token: '<eos>', model_max_length: 512 });
  });
});
