// Tests of `strata export-megatron` and `strata plan`: the commands' run() in-process (bundle files
// on disk, the atomic replace with --force, errors as CliErrors with exit code 2, the planner's text
// and JSON output), and once through the real executable for the one-line error and exit code.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { CliError } from '../errors.js';
import { bufferIO } from '../io.js';
import { run as exportMegatron } from './export-megatron.js';
import { parseSeqLen, run as plan } from './plan.js';

const work = mkdtempSync(join(tmpdir(), 'strata-megatron-cli-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const BIN = fileURLToPath(new URL('../bin.mjs', import.meta.url));

/** Runs a command like main() does: a CliError becomes `strata: <message>` on stderr and its exit code. */
async function strata(command: 'export-megatron' | 'plan', ...argv: string[]) {
  const io = bufferIO(work);
  try {
    const code = await (command === 'plan' ? plan : exportMegatron)(argv, io);
    return { code, stdout: io.out(), stderr: io.err() };
  } catch (error) {
    if (!(error instanceof CliError)) throw error;
    return { code: error.exitCode, stdout: io.out(), stderr: `${io.err()}strata: ${error.message}\n` };
  }
}

describe('strata export-megatron', () => {
  it('writes the bundle for Nano on 2 nodes x 8 GPUs with executable scripts', async () => {
    const r = await strata('export-megatron', 'nemotron-3-nano-30b-a3b', '--out', 'nano', '--nodes', '2', '--tp', '2', '--pp', '2', '--ep', '8', '--global-batch', '256');
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/^strata: wrote nano \(README.md, args.txt/m);
    const dir = join(work, 'nano');
    const files = readdirSync(dir).sort();
    expect(files).toEqual(
      ['README.md', 'args.txt', 'bridge_recipe.py', 'import_checkpoint.sh', 'megatron_args.sh', 'plan.json', 'precision.tsv', 'prepare_data.sh', 'strata.json', 'te_precision.yaml', 'train_slurm.sbatch', 'train_torchrun.sh'].sort(),
    );
    expect(statSync(join(dir, 'train_slurm.sbatch')).mode & 0o111).not.toBe(0);
    const args = readFileSync(join(dir, 'args.txt'), 'utf8');
    expect(args).toContain('--hybrid-layer-pattern MEMEM*EMEMEM*EMEMEM*EMEMEM|*EMEMEM*EMEMEMEM*EMEMEMEME\n');
    expect(args).toContain('--global-batch-size 256\n');
    expect(readFileSync(join(dir, 'train_slurm.sbatch'), 'utf8')).toContain('#SBATCH --nodes=2');
    expect(JSON.parse(readFileSync(join(dir, 'plan.json'), 'utf8')).layout).toMatchObject({ tp: 2, pp: 2, ep: 8, dp: 4 });
  });

  it('without layout options, uses the planner\'s fastest layout that fits', async () => {
    const r = await strata('export-megatron', 'nemotron-3-super-120b-a12b', '--out', 'super-auto', '--nodes', '8', '--gpu', 'h200');
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/layout chosen by the planner \(fastest of \d+ that fit\): TP\d+ PP\d+ EP\d+/);
    const planned = JSON.parse(readFileSync(join(work, 'super-auto', 'plan.json'), 'utf8'));
    expect(planned.memory.fits).toBe(true);
    const l = planned.layout;
    expect(l.tp * l.pp * l.cp * l.dp).toBe(64);
    const args = readFileSync(join(work, 'super-auto', 'args.txt'), 'utf8');
    expect(args).toContain(`--expert-model-parallel-size ${l.ep}\n`);
    expect(args).toContain(`--pipeline-model-parallel-size ${l.pp}\n`);
  });

  it('refuses a non-empty folder without --force and replaces it whole with --force', async () => {
    const dir = join(work, 'occupied');
    await strata('export-megatron', 'tiny-hybrid', '--out', 'occupied');
    writeFileSync(join(dir, 'stale.txt'), 'old');
    const refused = await strata('export-megatron', 'tiny-hybrid', '--out', 'occupied');
    expect(refused.code).toBe(2);
    expect(refused.stderr).toBe(`strata: export-megatron: ${dir}: folder is not empty (use --force to replace it)\n`);
    const forced = await strata('export-megatron', 'tiny-mtp', '--out', 'occupied', '--force');
    expect(forced.code).toBe(0);
    expect(existsSync(join(dir, 'stale.txt'))).toBe(false);
    expect(readFileSync(join(dir, 'args.txt'), 'utf8')).toContain('--mtp-num-layers 2');
    expect(readdirSync(work).filter((f) => f.includes('.tmp-') || f.includes('.old-'))).toEqual([]);
  });

  it('reports a layout Megatron cannot run in one line, naming the input, layer and field', () => {
    const spawned = spawnSync(process.execPath, [BIN, 'export-megatron', 'nemotron-3-nano-30b-a3b', '--out', 'bad', '--tp', '4', '--ep', '3'], { cwd: work, encoding: 'utf8' });
    const r = { code: spawned.status, stderr: spawned.stderr };
    expect(r.code).toBe(2);
    expect(r.stderr.split('\n').filter(Boolean)).toHaveLength(1);
    expect(r.stderr).toMatch(/^strata: export-megatron: templates\/nemotron-3-nano-30b-a3b\.json: the layout does not work: /);
    expect(r.stderr).toContain('layer 5 (attention): kv_heads 2 is not a multiple of TP 4');
    expect(r.stderr).toContain('layer 1 (moe): experts 128 is not a multiple of EP 3');
    expect(existsSync(join(work, 'bad'))).toBe(false);
  });

  it('rejects missing --out, bad numbers and unknown GPUs', async () => {
    expect((await strata('export-megatron', 'tiny-hybrid')).stderr).toBe('strata: export-megatron: --out DIR is required\n');
    expect((await strata('export-megatron', 'tiny-hybrid', '--out', 'x', '--tp', 'two')).stderr).toBe('strata: export-megatron: --tp "two" is not a positive whole number\n');
    expect((await strata('export-megatron', 'tiny-hybrid', '--out', 'x', '--gpu', 'a100')).stderr).toMatch(/--gpu a100 is not one of h100, h200, b200, cpu/);
    expect((await strata('export-megatron', 'tiny-hybrid', '--out', 'x', '--recompute', 'some')).stderr).toMatch(/--recompute some is not one of none, selective, full/);
  });
});

describe('strata plan', () => {
  it('prints the requested layout with memory per stage and exits 2 when it does not fit', async () => {
    const fits = await strata('plan', 'nemotron-3-nano-30b-a3b', '--gpu', 'h200', '--tp', '2', '--pp', '2', '--ep', '2', '--seq-len', '4k', '--global-batch', '64', '--recompute', 'selective');
    expect(fits.code).toBe(0);
    expect(fits.stdout).toContain('layout    TP 2  PP 2  EP 2  CP 1  DP 2');
    expect(fits.stdout).toMatch(/^1 +26-51 .* 97\.0 +1$/m); // stage 1: 104,137,757,568 bytes = 97.0 GiB
    expect(fits.stdout).toMatch(/memory {4}peak 97\.0 GiB of 118\.2 GiB usable .*: fits/);
    const tooBig = await strata('plan', 'nemotron-3-nano-30b-a3b', '--gpu', 'h100', '--ep', '8', '--seq-len', '4096', '--global-batch', '64');
    expect(tooBig.code).toBe(2);
    expect(tooBig.stdout).toContain('does NOT fit');
  });

  it('searches layouts and prints the fastest that fits as JSON', async () => {
    const r = await strata('plan', 'tiny-hybrid', '--nodes', '1', '--gpus-per-node', '2', '--seq-len', '1024', '--global-batch', '16', '--json');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.considered).toBeGreaterThan(0);
    expect(out.best.memory.fits).toBe(true);
    expect(out.best.world).toBe(2);
  });

  it('says when no layout fits', async () => {
    const r = await strata('plan', 'nemotron-3-super-120b-a12b', '--gpus-per-node', '1', '--seq-len', '8k', '--global-batch', '8');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^strata: plan: templates\/nemotron-3-super-120b-a12b\.json: none of the \d+ valid layouts fits in h100 memory on 1 x 1 GPUs/);
  });

  it('parses sequence lengths with a k suffix', () => {
    expect(parseSeqLen('plan', '8k')).toBe(8192);
    expect(parseSeqLen('plan', '4096')).toBe(4096);
    expect(() => parseSeqLen('plan', '1.5k')).toThrow(/plan: --seq-len "1.5k"/);
  });
});
