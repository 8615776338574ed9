// The Node host: builds every contract service (electron/contract.ts) over one set of folders, and
// `dispatch`, which runs one named method with untrusted arguments and turns any failure into a
// serializable HostErrorData envelope. Used identically by the Electron main process (ipc.ts) and
// the browser-mode server (server.ts). Not here: transports.
import { join } from 'node:path';
import { type CallEnvelope, type ChoosePathRequest, type HostInfo, type StrataHost, StrataHostError, isMethodName } from '../contract.js';
import { createExportService } from './exports.js';
import { createHostInfoService } from './info.js';
import type { JobLauncher } from './jobs.js';
import { createProjectService } from './projects.js';
import { createRunService } from './runs.js';

export interface NodeHostOptions {
  mode: HostInfo['mode'];
  /** App root: holds package.json, templates/, engine/. */
  rootDir: string;
  /** Host-private data (autosave, recent list). */
  dataDir: string;
  runsDir: string;
  workspaceDir: string;
  launcher: JobLauncher;
  templateIndex?: ReadonlyArray<{ name: string; title: string; description: string }>;
  choosePath?: (request: ChoosePathRequest) => Promise<string | null>;
  stopGraceMs?: number;
}

export interface NodeHost {
  host: StrataHost;
  /** Stops live runs. */
  dispose(): Promise<void>;
}

export function createNodeHost(options: NodeHostOptions): NodeHost {
  const cliScript = join(options.rootDir, 'engine', 'cli', 'bin.mjs');
  const runs = createRunService({
    runsDir: options.runsDir,
    cliScript,
    cwd: options.rootDir,
    launcher: options.launcher,
    workspaceDir: options.workspaceDir,
    ...(options.stopGraceMs !== undefined ? { stopGraceMs: options.stopGraceMs } : {}),
  });
  const host: StrataHost = {
    host: createHostInfoService({
      mode: options.mode,
      rootDir: options.rootDir,
      cliScript,
      runsDir: options.runsDir,
      workspaceDir: options.workspaceDir,
      nativeDialogs: Boolean(options.choosePath),
    }),
    projects: createProjectService({
      workspaceDir: options.workspaceDir,
      dataDir: options.dataDir,
      templatesDir: join(options.rootDir, 'templates'),
      ...(options.templateIndex ? { templateIndex: options.templateIndex } : {}),
      ...(options.choosePath ? { choosePath: options.choosePath } : {}),
    }),
    runs,
    exports: createExportService({ cliScript, cwd: options.rootDir, runsDir: options.runsDir, workspaceDir: options.workspaceDir, launcher: options.launcher }),
  };
  return { host, dispose: () => runs.dispose() };
}

/** Calls `method` on the host with untrusted `args`; never throws. */
export async function dispatch(host: StrataHost, method: unknown, args: unknown): Promise<CallEnvelope> {
  if (!isMethodName(method)) return { ok: false, error: { code: 'bad_request', message: `unknown method ${JSON.stringify(method)}` } };
  if (!Array.isArray(args)) return { ok: false, error: { code: 'bad_request', message: `${method}: arguments must be an array` } };
  const [service, name] = method.split('.') as [keyof StrataHost, string];
  const target = host[service] as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
  try {
    const value = await target[name]!(...args);
    return { ok: true, value: value === undefined ? null : value };
  } catch (error) {
    if (error instanceof StrataHostError) return { ok: false, error: error.toData() };
    const err = error as NodeJS.ErrnoException;
    process.stderr.write(`strata host: ${method} failed: ${err?.stack ?? String(error)}\n`);
    return { ok: false, error: { code: err?.code === 'EACCES' || err?.code === 'ENOSPC' ? 'io' : 'internal', message: `${method}: ${err?.message ?? String(error)}` } };
  }
}

