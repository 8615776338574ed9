// Tests of the export service: it stages documents for the CLI, passes a run folder for run
// exports, maps Megatron options to flags, lists the files written, and turns a failing exporter
// into an `engine` error with the CLI's message. The CLI is a fixture process following the
// documented command lines (test-fixtures/export-writer.mjs).
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { documentFromModel } from '../../engine/spec/document.js';
import { createExportService } from './exports.js';
import { nodeChildLauncher } from './jobs.js';

const FIXTURE_CLI = resolve(import.meta.dirname, 'test-fixtures/export-writer.mjs');
const doc = (name: string) => documentFromModel({ name, vocab_size: 264, d_model: 32, stack: [{ kind: 'mlp', ffn: 64 }] });

function setup() {
  const work = mkdtempSync(join(tmpdir(), 'strata-export-'));
  const runsDir = join(work, 'runs');
  const service = createExportService({ cliScript: FIXTURE_CLI, cwd: work, runsDir, workspaceDir: work, launcher: nodeChildLauncher });
  return { work, runsDir, service };
}

describe('ExportService', () => {
  it('exports a document to HF through a staged file and lists what was written', async () => {
    const { work, service } = setup();
    const result = await service.exportHf({ doc: doc('tiny') }, 'hf-out');
    expect(result.outDir).toBe(join(work, 'hf-out'));
    expect(result.files).toEqual(['args.json', join('sub', 'readme.txt')]);
    expect(result.log).toContain('export-hf: wrote');
    const args = JSON.parse(readFileSync(join(work, 'hf-out', 'args.json'), 'utf8'));
    expect(args.command).toBe('export-hf');
    expect(args.source).toMatch(/tiny\.strata\.json$/);
    expect(args.rest).toEqual(['--out', join(work, 'hf-out')]);
  });

  it('exports a run folder (its trained weights) by passing the folder', async () => {
    const { work, runsDir, service } = setup();
    mkdirSync(join(runsDir, 'r1'), { recursive: true });
    writeFileSync(join(runsDir, 'r1', 'document.json'), JSON.stringify(doc('trained')));
    await service.exportHf({ runId: 'r1' }, join(work, 'from-run'));
    expect(JSON.parse(readFileSync(join(work, 'from-run', 'args.json'), 'utf8')).source).toBe(join(runsDir, 'r1'));
    await expect(service.exportHf({ runId: 'missing' }, 'x')).rejects.toMatchObject({ code: 'not_found' });
    await expect(service.exportHf({ runId: '../r1' }, 'x')).rejects.toMatchObject({ code: 'bad_request' });
  });

  it('maps Megatron options to CLI flags and validates them', async () => {
    const { work, service } = setup();
    await service.exportMegatron(doc('big'), 'mcore', { tensorParallel: 2, pipelineParallel: 4, seqLength: 8192 });
    const args = JSON.parse(readFileSync(join(work, 'mcore', 'args.json'), 'utf8'));
    expect(args.rest).toEqual(['--out', join(work, 'mcore'), '--tp', '2', '--pp', '4', '--seq-len', '8192']);
    await expect(service.exportMegatron(doc('big'), 'mcore', { tensorParallel: 0 })).rejects.toMatchObject({ code: 'bad_request' });
  });

  it('passes the planner GPU and the replace choice (--gpu, --force) and validates them', async () => {
    const { work, service } = setup();
    await service.exportMegatron(doc('big'), 'mcore', { nodes: 2, gpusPerNode: 4, gpu: 'h200', replace: true });
    const args = JSON.parse(readFileSync(join(work, 'mcore', 'args.json'), 'utf8'));
    expect(args.rest).toEqual(['--out', join(work, 'mcore'), '--nodes', '2', '--gpus-per-node', '4', '--gpu', 'h200', '--force']);
    await service.exportHf({ doc: doc('tiny') }, 'hf', { replace: true });
    expect(JSON.parse(readFileSync(join(work, 'hf', 'args.json'), 'utf8')).rest).toEqual(['--out', join(work, 'hf'), '--force']);
    await service.exportHf({ doc: doc('tiny') }, 'hf2', { replace: false });
    expect(JSON.parse(readFileSync(join(work, 'hf2', 'args.json'), 'utf8')).rest).toEqual(['--out', join(work, 'hf2')]);
    await expect(service.exportMegatron(doc('big'), 'm', { gpu: 'h100; rm -rf' })).rejects.toMatchObject({ code: 'bad_request' });
    await expect(service.exportHf({ doc: doc('tiny') }, 'h', { replace: 'yes' as unknown as boolean })).rejects.toMatchObject({ code: 'bad_request' });
  });

  it("reports the exporter's own message when it fails", async () => {
    const { service } = setup();
    await expect(service.exportHf({ doc: doc('fail me') }, 'bad')).rejects.toMatchObject({
      code: 'engine',
      message: 'Hugging Face export failed: strata: export-hf: layer 0 (mlp): cannot export this design',
    });
    const invalid = JSON.parse(JSON.stringify(doc('x')));
    invalid.model.vocab_size = 0;
    await expect(service.exportMegatron(invalid, 'bad', {})).rejects.toMatchObject({ code: 'invalid_document' });
  });
});

describe('ExportService with the real strata CLI', () => {
  it('writes a Megatron-LM bundle with the flags the CLI understands', async () => {
    const root = resolve(import.meta.dirname, '../..');
    const work = mkdtempSync(join(tmpdir(), 'strata-export-real-'));
    const service = createExportService({ cliScript: join(root, 'engine/cli/bin.mjs'), cwd: root, runsDir: join(work, 'runs'), workspaceDir: work, launcher: nodeChildLauncher });
    const template = JSON.parse(readFileSync(join(root, 'templates/tiny-hybrid.json'), 'utf8'));
    const result = await service.exportMegatron(template, 'bundle', { nodes: 1, gpusPerNode: 8, pipelineParallel: 2, seqLength: 4096, globalBatchSize: 64 });
    expect(result.outDir).toBe(join(work, 'bundle'));
    expect(result.files.length).toBeGreaterThan(1);
    const text = result.files.map((f) => readFileSync(join(work, 'bundle', f), 'utf8')).join('\n');
    expect(text).toContain('--hybrid-layer-pattern');
    expect(text).toContain('--pipeline-model-parallel-size 2');
    expect(text).toContain('--seq-length 4096');
    // Without layout options the planner chooses one for the cluster, and says so.
    const planned = await service.exportMegatron(template, 'planned', { nodes: 2, gpusPerNode: 4, gpu: 'h200' });
    expect(planned.log).toMatch(/layout chosen by the planner/);
    expect(planned.files).toContain('train_slurm.sbatch');
    // A non-empty folder is refused unless replacing is asked for.
    await expect(service.exportMegatron(template, 'planned', {})).rejects.toMatchObject({ code: 'engine', message: expect.stringContaining('not empty') });
    await service.exportMegatron(template, 'planned', { replace: true });
    // A layout the design cannot use comes back as the CLI's own explanation.
    await expect(service.exportMegatron(template, 'bundle-tp', { tensorParallel: 2 })).rejects.toMatchObject({
      code: 'engine',
      message: expect.stringContaining('layer 0 (mamba2): groups 1 is not a multiple of TP 2'),
    });
  });
});
