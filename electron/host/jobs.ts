// Engine jobs run in their own process so an engine crash never takes the UI down. A JobLauncher
// starts a Node script (the `strata` CLI, engine/cli/bin.mjs) with arguments; this file defines
// that interface and the child_process implementation used in browser mode and tests. The Electron
// implementation (utilityProcess.fork) lives in electron/utility-launcher.ts.
// Not here: what the jobs are (runs.ts, exports.ts).
import { spawn } from 'node:child_process';

export interface JobSpec {
  /** Absolute path of the Node script to run. */
  script: string;
  args: string[];
  cwd: string;
  env?: Record<string, string>;
}

export interface JobProcess {
  readonly pid: number | undefined;
  readonly stdout: NodeJS.ReadableStream | null;
  readonly stderr: NodeJS.ReadableStream | null;
  /** Resolves when the process has exited. */
  readonly exited: Promise<{ code: number | null; signal: string | null }>;
  /** Asks for a clean stop (SIGINT: the CLI cancels and writes its final events). */
  interrupt(): void;
  /** Ends it now. */
  kill(): void;
}

export interface JobLauncher {
  launch(spec: JobSpec): JobProcess;
}

/** Runs jobs with the current Node binary through child_process.spawn. */
export const nodeChildLauncher: JobLauncher = {
  launch(spec) {
    const child = spawn(process.execPath, [spec.script, ...spec.args], {
      cwd: spec.cwd,
      env: { ...process.env, ...spec.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => {
      child.once('error', (error) => {
        child.stderr?.emit('data', Buffer.from(`could not start ${spec.script}: ${error.message}\n`));
        resolve({ code: null, signal: null });
      });
      child.once('close', (code, signal) => resolve({ code, signal }));
    });
    return {
      pid: child.pid,
      stdout: child.stdout,
      stderr: child.stderr,
      exited,
      interrupt: () => child.exitCode === null && child.kill('SIGINT'),
      kill: () => child.exitCode === null && child.kill('SIGKILL'),
    };
  },
};

/** Collects a stream's text, keeping only the last `limit` characters. */
export function collectTail(stream: NodeJS.ReadableStream | null, limit: number): () => string {
  let text = '';
  stream?.setEncoding('utf8');
  stream?.on('data', (chunk: string | Buffer) => {
    text = (text + String(chunk)).slice(-limit);
  });
  return () => text;
}
