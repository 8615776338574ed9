// Tests of the engine commands' shared checks: the memory floor that refuses a design whose
// parameters alone exceed the machine (hand-counted parameters of a one-MLP design), and the
// option parsers' one-line errors.
import { describe, expect, it } from 'vitest';
import { documentFromModel } from '../spec/document.js';
import { checkEngineMemory, intListOption, intOption } from './command-support.js';

// Embedding 259 x 8, untied head 8 x 259, final norm 8, MLP block (norm 8, fc1 8 x 16, fc2 16 x 8 with relu2).
const doc = documentFromModel({ name: 'Small', vocab_size: 259, d_model: 8, stack: [{ kind: 'mlp', ffn: 16 }] });

describe('checkEngineMemory', () => {
  it('passes when weights (and training state) fit and refuses in one line when they do not', () => {
    expect(() => checkEngineMemory('small.json', doc, 'train', 1e9)).not.toThrow();
    expect(() => checkEngineMemory('small.json', doc, 'inference', 100)).toThrow(
      /^small\.json: the CPU engine needs at least 0\.0 GiB for fp32 weights of 0\.0M parameters, more than this machine's 0\.0 GiB of memory; train or run a smaller design/,
    );
  });

  it('counts 16 bytes per parameter for training, 8 for a backward pass and 4 for inference', () => {
    const params = 2 * 259 * 8 + 8 + 8 + 8 * 16 + 16 * 8;
    for (const [use, bytes] of [['inference', 4], ['backward', 8], ['train', 16]] as const) {
      expect(() => checkEngineMemory('d', doc, use, params * bytes)).not.toThrow();
      expect(() => checkEngineMemory('d', doc, use, params * bytes - 1)).toThrow(/needs at least/);
    }
  });

  it('refuses a full-size published design for training on any machine', () => {
    const huge = documentFromModel({ name: 'Huge', vocab_size: 131072, d_model: 8192, stack: Array.from({ length: 96 }, () => ({ kind: 'mlp' as const, ffn: 32768 })) });
    expect(() => checkEngineMemory('huge.json', huge, 'train')).toThrow(/for fp32 weights, gradients and AdamW moments of \d+\.\dM parameters/);
  });
});

describe('option parsers', () => {
  it('name the command and option in their errors', () => {
    expect(intOption('train', 'steps', '12')).toBe(12);
    expect(() => intOption('train', 'steps', '1.5')).toThrow('train: --steps must be an integer >= 1, got "1.5"');
    expect(intListOption('profile', 'context', '256,1k')).toEqual([256, 1024]);
    expect(() => intListOption('profile', 'context', '1k,x')).toThrow(/profile: --context must be a comma-separated list of positive integers/);
  });
});
