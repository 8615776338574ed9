// Tests of `strata precision-experiment` argument handling (the training itself is the engine's and is
// exercised by running the command; its summary and report are tested in engine/spec/precision-experiment.test.ts).
import { describe, expect, it } from 'vitest';
import { CliError } from '../errors.js';
import { bufferIO } from '../io.js';
import { run } from './precision-experiment.js';

describe('strata precision-experiment', () => {
  it('prints help', async () => {
    const io = bufferIO(process.cwd());
    expect(await run(['--help'], io)).toBe(0);
    expect(io.out()).toContain('usage: strata precision-experiment [DESIGN]');
  });
  it('rejects bad options before training anything', async () => {
    const io = bufferIO(process.cwd());
    await expect(run(['--steps', '1'], io)).rejects.toThrow('precision-experiment: --steps "1" is not a whole number >= 2');
    await expect(run(['--batch', 'x'], io)).rejects.toThrow('--batch "x" is not a whole number >= 1');
    await expect(run(['a', 'b'], io)).rejects.toBeInstanceOf(CliError);
    await expect(run(['no-such-template', '--steps', '4'], io)).rejects.toBeInstanceOf(CliError);
    expect(io.err()).toBe('');
  });
});
