// `npm start`: the desktop app. On Node >= 22.13 this is `electron-forge start` (Vite dev server,
// bundles, Electron). On older Node, where Electron Forge 8 refuses to run, it builds the same
// bundles and renderer with Vite's API (desktop-launch.ts) and starts the Electron binary on the
// app folder itself; when that binary is absent it prints one line saying so and exits 1.
//   tsx electron/start.ts [--build-only] [-- ARGS passed to Electron/Forge]
// --build-only builds the bundles and the renderer and exits (no Electron needed).
// Not here: the decisions and the build (desktop-launch.ts), the app (main.ts).
import { spawn } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildDesktopApp, planStart } from './desktop-launch.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Runs a command with this terminal and exits with its status; signals are passed on. */
function runAndExit(command: string, args: string[]): void {
  const child = spawn(command, args, { cwd: ROOT, stdio: 'inherit', env: process.env });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => child.kill(signal));
  child.once('error', (error) => {
    process.stderr.write(`strata start: could not start ${command}: ${error.message}\n`);
    process.exit(1);
  });
  child.once('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const buildOnly = args.includes('--build-only');
  const passThrough = args.filter((a) => a !== '--build-only' && a !== '--');
  const plan = planStart(process.versions.node, join(ROOT, 'node_modules', 'electron'));

  if (plan.action === 'forge' && !buildOnly) {
    runAndExit(join(ROOT, 'node_modules', '.bin', 'electron-forge'), ['start', ...(passThrough.length ? ['--', ...passThrough] : [])]);
    return;
  }
  if (plan.action === 'missing' && !buildOnly) {
    process.stderr.write(`${plan.message}\n`);
    process.exit(1);
  }
  process.stdout.write(`strata start: Node ${process.versions.node}; building the app with Vite (Electron Forge needs Node >= 22.13)\n`);
  await buildDesktopApp(ROOT, { log: (line) => process.stdout.write(`strata start: ${line}\n`) });
  if (buildOnly) {
    process.stdout.write('strata start: built .vite/build and .vite/renderer (--build-only: Electron not started)\n');
    return;
  }
  if (plan.action === 'electron') runAndExit(plan.binary, [ROOT, ...passThrough]);
}

main().catch((error: unknown) => {
  process.stderr.write(`strata start: ${(error as Error).message}\n`);
  process.exit(1);
});
