// ExportService (electron/contract.ts) in Node: runs the `strata` CLI's exporters in a job process
// — `strata export-hf SOURCE --out DIR [--force]` (SOURCE a run folder, for its newest checkpoint,
// or a document file, for fresh weights) and `strata export-megatron DOC --out DIR [--nodes N
// --gpus-per-node G --tp --pp --ep --cp N --seq-len N --micro-batch N --global-batch N --gpu ID
// --force]` (without --tp/--pp/... the CLI's planner picks the layout) — and reports the files
// written.
// Not here: the export formats themselves (engine/spec/hf, engine/cli/commands).
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { type ExportResult, type ExportService, type HfExportOptions, type MegatronExportOptions, StrataHostError } from '../contract.js';
import { writeFileAtomic } from './files.js';
import { type JobLauncher, collectTail } from './jobs.js';
import { validateDocument } from './projects.js';
import { assertRunId } from './run-folders.js';

export interface ExportServiceOptions {
  cliScript: string;
  cwd: string;
  runsDir: string;
  workspaceDir: string;
  launcher: JobLauncher;
}

type MegatronCountOption = Exclude<keyof MegatronExportOptions, 'gpu' | 'replace'>;
const MEGATRON_FLAGS: Record<MegatronCountOption, string> = {
  nodes: '--nodes',
  gpusPerNode: '--gpus-per-node',
  tensorParallel: '--tp',
  pipelineParallel: '--pp',
  expertParallel: '--ep',
  contextParallel: '--cp',
  seqLength: '--seq-len',
  microBatchSize: '--micro-batch',
  globalBatchSize: '--global-batch',
};
const OUTPUT_LIMIT = 20_000;
/** Hardware ids the CLI's planner knows for `--gpu` (engine/spec/hardware.ts, GPU profiles). */
const GPU_ID = /^[a-z0-9][a-z0-9_-]*$/;

/** `--force` when the caller asked to replace a non-empty folder. */
function replaceFlag(options: { replace?: unknown } | undefined): string[] {
  if (options?.replace !== undefined && typeof options.replace !== 'boolean')
    throw new StrataHostError({ code: 'bad_request', message: `export: replace must be true or false, got ${JSON.stringify(options.replace)}` });
  return options?.replace ? ['--force'] : [];
}

async function listFiles(dir: string): Promise<string[]> {
  const entries = await fs.readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)))
    .sort();
}

export function createExportService(options: ExportServiceOptions): ExportService {
  const outPath = (outDir: unknown) => {
    if (typeof outDir !== 'string' || !outDir) throw new StrataHostError({ code: 'bad_request', message: 'export: outDir must be a non-empty path' });
    return isAbsolute(outDir) ? outDir : resolve(options.workspaceDir, outDir);
  };

  /** Writes a document to a private temp file for the CLI; returns its path and a cleanup. */
  async function stageDocument(doc: unknown): Promise<{ file: string; cleanup: () => Promise<void> }> {
    const { doc: valid } = validateDocument(doc, 'export document');
    const dir = await fs.mkdtemp(join(tmpdir(), 'strata-export-'));
    const file = join(dir, `${valid.model.name.replace(/[^A-Za-z0-9._-]+/g, '-') || 'model'}.strata.json`);
    await writeFileAtomic(file, JSON.stringify(valid, null, 2));
    return { file, cleanup: () => fs.rm(dir, { recursive: true, force: true }) };
  }

  async function runCli(args: string[], outDir: string, what: string): Promise<ExportResult> {
    // The exporters create the output folder but not its parents (e.g. exports/ in a fresh workspace).
    await fs.mkdir(dirname(outDir), { recursive: true }).catch((error: NodeJS.ErrnoException) => {
      throw new StrataHostError({ code: 'io', message: `${what}: cannot create ${dirname(outDir)} (${error.code ?? error.message})`, file: outDir });
    });
    const job = options.launcher.launch({ script: options.cliScript, args, cwd: options.cwd });
    const stdout = collectTail(job.stdout, OUTPUT_LIMIT);
    const stderr = collectTail(job.stderr, OUTPUT_LIMIT);
    const { code, signal } = await job.exited;
    const log = `${stdout()}${stderr()}`;
    if (code !== 0) {
      const last = stderr().trim().split('\n').filter(Boolean).slice(-2).join(' | ') || `exit code ${code ?? signal}`;
      throw new StrataHostError({ code: 'engine', message: `${what} failed: ${last}`, file: outDir });
    }
    return { outDir, files: await listFiles(outDir), log };
  }

  return {
    async exportHf(source, outDir, hfOptions?: HfExportOptions) {
      const out = outPath(outDir);
      const force = replaceFlag(hfOptions);
      if (source && typeof source === 'object' && 'runId' in source) {
        const dir = join(options.runsDir, assertRunId(source.runId));
        if (!(await fs.stat(dir).then((s) => s.isDirectory(), () => false)))
          throw new StrataHostError({ code: 'not_found', message: `no run '${source.runId}' in ${options.runsDir}`, file: dir });
        return runCli(['export-hf', dir, '--out', out, ...force], out, 'Hugging Face export');
      }
      if (!source || typeof source !== 'object' || !('doc' in source))
        throw new StrataHostError({ code: 'bad_request', message: 'exportHf: source must be {runId} or {doc}' });
      const staged = await stageDocument(source.doc);
      try {
        return await runCli(['export-hf', staged.file, '--out', out, ...force], out, 'Hugging Face export');
      } finally {
        await staged.cleanup();
      }
    },

    async exportMegatron(doc, outDir, exportOptions) {
      const out = outPath(outDir);
      const flags: string[] = [];
      for (const [key, flag] of Object.entries(MEGATRON_FLAGS) as Array<[MegatronCountOption, string]>) {
        const value = exportOptions?.[key];
        if (value === undefined) continue;
        if (!Number.isInteger(value) || value <= 0)
          throw new StrataHostError({ code: 'bad_request', message: `exportMegatron: ${key} must be a positive integer, got ${JSON.stringify(value)}` });
        flags.push(flag, String(value));
      }
      const gpu = exportOptions?.gpu;
      if (gpu !== undefined) {
        if (typeof gpu !== 'string' || !GPU_ID.test(gpu)) throw new StrataHostError({ code: 'bad_request', message: `exportMegatron: gpu must be a hardware id such as h100, got ${JSON.stringify(gpu)}` });
        flags.push('--gpu', gpu);
      }
      flags.push(...replaceFlag(exportOptions));
      const staged = await stageDocument(doc);
      try {
        return await runCli(['export-megatron', staged.file, '--out', out, ...flags], out, 'Megatron-LM export');
      } finally {
        await staged.cleanup();
      }
    },
  };
}
