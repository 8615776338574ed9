// HostInfoService (electron/contract.ts) in Node: what the UI needs to know about the machine the
// host runs on — mode, app version, CPU cores, whether a CUDA GPU is visible (nvidia-smi), whether
// the `strata` CLI and the native engine addon are present, and where runs live.
// Not here: anything that changes state.
import { execFile } from 'node:child_process';
import { existsSync, promises as fs, readFileSync } from 'node:fs';
import { arch, availableParallelism, platform } from 'node:os';
import { join } from 'node:path';
import { CONTRACT_VERSION, type GpuInfo, type HostInfo, type HostInfoService } from '../contract.js';

export interface HostInfoOptions {
  mode: HostInfo['mode'];
  rootDir: string;
  cliScript: string;
  runsDir: string;
  workspaceDir: string;
  nativeDialogs: boolean;
}

/** Asks nvidia-smi for GPU names; no GPU when it is missing or fails. */
function probeGpu(): Promise<GpuInfo> {
  return new Promise((resolve) => {
    execFile('nvidia-smi', ['--query-gpu=name', '--format=csv,noheader'], { timeout: 5000 }, (error, stdout) => {
      if (error) {
        resolve({ available: false, detail: 'no NVIDIA GPU visible (nvidia-smi not found or failed); training runs on the CPU' });
        return;
      }
      const names = stdout.split('\n').map((s) => s.trim()).filter(Boolean);
      if (names.length === 0) resolve({ available: false, detail: 'nvidia-smi lists no GPU' });
      else resolve({ available: true, name: names[0]!, detail: `${names.length} GPU(s): ${names.join(', ')}` });
    });
  });
}

async function findNativeAddon(dir: string, depth = 0): Promise<string | null> {
  const entries = await fs.readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const e of entries) {
    const path = join(dir, e.name);
    if (e.isFile() && e.name.endsWith('.node')) return path;
    if (e.isDirectory() && depth < 4) {
      const found = await findNativeAddon(path, depth + 1);
      if (found) return found;
    }
  }
  return null;
}

export function createHostInfoService(options: HostInfoOptions): HostInfoService {
  let gpu: Promise<GpuInfo> | null = null;
  const version = (() => {
    try {
      return String((JSON.parse(readFileSync(join(options.rootDir, 'package.json'), 'utf8')) as { version?: unknown }).version ?? '0.0.0');
    } catch {
      return '0.0.0';
    }
  })();
  return {
    async info() {
      gpu ??= probeGpu();
      // build/native/ is where engine/native/build.mjs puts the addon (STRATA_ENGINE_ADDON overrides).
      const addon = process.env.STRATA_ENGINE_ADDON
        ? existsSync(process.env.STRATA_ENGINE_ADDON)
          ? process.env.STRATA_ENGINE_ADDON
          : null
        : await findNativeAddon(join(options.rootDir, 'build', 'native'));
      const cli = existsSync(options.cliScript);
      return {
        mode: options.mode,
        version,
        contractVersion: CONTRACT_VERSION,
        platform: platform(),
        arch: arch(),
        cpuCores: availableParallelism(),
        gpu: await gpu,
        engine: {
          cli,
          native: addon !== null,
          detail: `${cli ? 'strata CLI present' : `strata CLI missing (${options.cliScript})`}; ${addon ? `native engine ${addon}` : 'native engine not built (npm run build:engine)'}`,
        },
        runsDir: options.runsDir,
        workspaceDir: options.workspaceDir,
        nativeDialogs: options.nativeDialogs,
      } satisfies HostInfo;
    },
  };
}
