// `npm run serve`: browser mode. Builds the renderer with Vite (vite.renderer.config.ts), then
// serves it and the host services on 127.0.0.1 behind a per-session token (electron/server.ts)
// and prints the URL to open. Engine jobs run as child processes of this server.
//   tsx electron/serve.ts [--port N] [--no-build] [--runs-dir DIR] [--data-dir DIR] [--workspace DIR]
// Environment: STRATA_RUNS_DIR, STRATA_DATA_DIR override the folders (flags win).
// Not here: the server itself (server.ts) or the services (host/).
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { TEMPLATES } from '../templates/index.js';
import { createNodeHost } from './host/index.js';
import { nodeChildLauncher } from './host/jobs.js';
import { startBrowserServer } from './server.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const RENDERER_DIR = join(ROOT, '.vite', 'renderer', 'main_window');

function usage(message: string): never {
  process.stderr.write(`strata serve: ${message}\nusage: npm run serve -- [--port N] [--no-build] [--runs-dir DIR] [--data-dir DIR] [--workspace DIR]\n`);
  process.exit(2);
}

async function main(): Promise<void> {
  let values: { port?: string; 'no-build'?: boolean; 'runs-dir'?: string; 'data-dir'?: string; workspace?: string };
  try {
    ({ values } = parseArgs({
      options: {
        port: { type: 'string' },
        'no-build': { type: 'boolean' },
        'runs-dir': { type: 'string' },
        'data-dir': { type: 'string' },
        workspace: { type: 'string' },
      },
    }));
  } catch (error) {
    usage((error as Error).message);
  }
  const port = values.port === undefined ? 0 : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) usage(`--port must be an integer 0..65535, got ${values.port}`);
  const cwd = process.cwd();
  const workspaceDir = resolve(cwd, values.workspace ?? '.');
  const runsDir = resolve(cwd, values['runs-dir'] ?? process.env.STRATA_RUNS_DIR ?? join(ROOT, 'runs'));
  const dataDir = resolve(cwd, values['data-dir'] ?? process.env.STRATA_DATA_DIR ?? join(homedir(), '.config', 'strata-studio'));

  if (!values['no-build']) {
    process.stdout.write('Building the renderer with Vite...\n');
    const { build } = await import('vite');
    await build({ configFile: join(ROOT, 'vite.renderer.config.ts'), logLevel: 'warn' });
  }

  const node = createNodeHost({ mode: 'browser', rootDir: ROOT, dataDir, runsDir, workspaceDir, launcher: nodeChildLauncher, templateIndex: TEMPLATES });
  const server = await startBrowserServer({ host: node.host, staticDir: RENDERER_DIR, port });
  process.stdout.write(`Strata Studio (browser mode) on ${server.url}\nruns: ${runsDir}\nPress Ctrl+C to stop.\n`);

  let closing = false;
  const shutdown = async () => {
    if (closing) return;
    closing = true;
    await node.dispose();
    await server.close();
    process.exit(0);
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
}

main().catch((error: unknown) => {
  process.stderr.write(`strata serve: ${(error as Error).message}\n`);
  process.exit(1);
});
