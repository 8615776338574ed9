// The Electron JobLauncher (electron/host/jobs.ts): engine jobs run in an Electron utility process
// (utilityProcess.fork, a Node environment outside the main process), so an engine crash never
// takes the window or the main process down. Not here: what jobs run (host/runs.ts, exports.ts).
import { utilityProcess } from 'electron';
import type { JobLauncher } from './host/jobs.js';

export const utilityLauncher: JobLauncher = {
  launch(spec) {
    const child = utilityProcess.fork(spec.script, spec.args, {
      cwd: spec.cwd,
      env: { ...process.env, ...spec.env },
      stdio: 'pipe',
      serviceName: 'Strata engine job',
    });
    let running = true;
    const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => {
      child.once('exit', (code) => {
        running = false;
        resolve({ code, signal: null });
      });
    });
    return {
      get pid() {
        return child.pid;
      },
      stdout: child.stdout,
      stderr: child.stderr,
      exited,
      // SIGINT lets the CLI cancel cleanly and write its final events; utilityProcess.kill() is SIGTERM.
      interrupt: () => {
        if (running && child.pid !== undefined) process.kill(child.pid, 'SIGINT');
      },
      kill: () => {
        if (running) child.kill();
      },
    };
  },
};
