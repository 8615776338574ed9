// Tests of the thinking-span markers: their ids per tokenizer, the vocabulary-room check, prompt
// encoding of literal tags, and display decoding (markers as text, unknown padded-vocab ids left out).
import { describe, expect, it } from 'vitest';
import { ByteTokenizer } from './byte.js';
import { Gpt2Tokenizer } from './gpt2.js';
import { decodeGenerated, encodeWithThinkTags, thinkIds } from './think.js';

describe('think markers', () => {
  it('sit just past the tokenizer ids and need room in the model vocabulary', () => {
    expect(thinkIds(new ByteTokenizer(), 264)).toEqual({ open: 259, close: 260 });
    expect(thinkIds(new Gpt2Tokenizer(), 50304)).toEqual({ open: 50257, close: 50258 });
    expect(() => thinkIds(new ByteTokenizer(), 260)).toThrow(/ids 259 and 260, but the model's vocab_size is 260 \(needs at least 261\)/);
  });

  it('encode literal tags in a prompt as single marker ids', () => {
    const byte = new ByteTokenizer();
    const think = thinkIds(byte, 264);
    expect(encodeWithThinkTags(byte, 'Q<think>ab</think>A', think)).toEqual([81, 259, 97, 98, 260, 65]);
    expect(encodeWithThinkTags(byte, '<think>', think)).toEqual([259]);
  });

  it('decode markers as text and leave out ids the tokenizer does not know', () => {
    const byte = new ByteTokenizer();
    const think = thinkIds(byte, 264);
    expect(decodeGenerated(byte, [259, 104, 105, 260, 111, 107, 257], think)).toEqual({ text: '<think>hi</think>ok', unknownIds: 0 });
    // Without markers, 259..263 are the padded vocabulary tail: never a crash, counted instead.
    expect(decodeGenerated(byte, [104, 261, 105, 263], null)).toEqual({ text: 'hi', unknownIds: 2 });
  });
});
