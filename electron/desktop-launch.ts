// What `npm start` (electron/start.ts) decides and builds. Electron Forge 8 refuses Node older
// than 22.13, so on such a Node the launcher does Forge's work itself: it builds the main and
// preload bundles and the renderer with Vite from the very configurations Forge would use
// (forge.config.ts's Vite plugin entries merged by Forge's own config generator over
// vite.main.config.ts, vite.preload.config.ts and vite.renderer.config.ts, production mode: the
// window loads the renderer from app://), then starts the Electron binary on the app folder.
// This file holds the decisions (Forge or not, where the Electron binary is, the one-line message
// when it is absent) and the build, as functions the tests call.
// Not here: process spawning and exit codes (start.ts), the Electron main process (main.ts).
import { existsSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { InlineConfig } from 'vite';

/** Electron Forge 8's engines field: node >= 22.13.0. */
export const FORGE_MIN_NODE: readonly [number, number] = [22, 13];

/** Whether `electron-forge start` can run on this Node version ("20.20.0" style, no "v"). */
export function forgeSupported(nodeVersion: string): boolean {
  const [major = 0, minor = 0] = nodeVersion.replace(/^v/, '').split('.').map(Number);
  return major > FORGE_MIN_NODE[0] || (major === FORGE_MIN_NODE[0] && minor >= FORGE_MIN_NODE[1]);
}

export type ElectronBinary = { found: true; path: string } | { found: false; message: string };

/**
 * Finds the Electron executable the way the `electron` package does (dist/ + path.txt, or
 * ELECTRON_OVERRIDE_DIST_PATH) without its fallback of downloading it: a missing binary yields the
 * one-line message `npm start` prints.
 */
export function findElectronBinary(electronPackageDir: string, env: NodeJS.ProcessEnv = process.env): ElectronBinary {
  const pathFile = join(electronPackageDir, 'path.txt');
  const executable = existsSync(pathFile) ? readFileSync(pathFile, 'utf8').trim() : '';
  const override = env.ELECTRON_OVERRIDE_DIST_PATH;
  const candidate = override ? join(override, executable || 'electron') : executable ? join(electronPackageDir, 'dist', executable) : null;
  if (candidate && existsSync(candidate)) return { found: true, path: candidate };
  const where = candidate ?? join(electronPackageDir, 'dist');
  return {
    found: false,
    message:
      `strata start: the Electron binary is not installed (${where} is missing; its download was skipped or blocked): ` +
      'run `node node_modules/electron/install.js` where the network allows it, or use browser mode: `npm run serve`',
  };
}

export type StartPlan = { action: 'forge' } | { action: 'electron'; binary: string } | { action: 'missing'; message: string };

/** What `npm start` does on this Node with this Electron package. */
export function planStart(nodeVersion: string, electronPackageDir: string, env: NodeJS.ProcessEnv = process.env): StartPlan {
  if (forgeSupported(nodeVersion)) return { action: 'forge' };
  const binary = findElectronBinary(electronPackageDir, env);
  return binary.found ? { action: 'electron', binary: binary.path } : { action: 'missing', message: binary.message };
}

interface ForgeViteConfigGenerator {
  getBuildConfigs(): Promise<InlineConfig[]>;
  getRendererConfig(): Promise<InlineConfig[]>;
}

/**
 * The Vite configurations `electron-forge package` would build: main and preload first, then the
 * renderer. Forge's generator is not in its package's exports map, so it is loaded by file.
 */
export async function forgeBuildConfigs(root: string): Promise<{ bundles: InlineConfig[]; renderers: InlineConfig[] }> {
  const forge = (await import(pathToFileURL(join(root, 'forge.config.ts')).href)).default as { plugins: Array<{ config: unknown }> };
  const pluginConfig = forge.plugins[0]?.config;
  if (!pluginConfig) throw new Error('forge.config.ts has no Vite plugin configuration');
  const generatorFile = join(root, 'node_modules', '@electron-forge', 'plugin-vite', 'dist', 'ViteConfig.js');
  const Generator = (await import(pathToFileURL(generatorFile).href)).default as new (config: unknown, dir: string, prod: boolean) => ForgeViteConfigGenerator;
  const generator = new Generator(pluginConfig, root, true);
  return { bundles: await generator.getBuildConfigs(), renderers: await generator.getRendererConfig() };
}

export interface DesktopBuildOptions {
  /** Where main.js and preload.cjs go (default: Forge's .vite/build). */
  bundleOutDir?: string;
  /** Skip the renderer (it is built by `npm run serve` and the e2e runner the same way). */
  renderer?: boolean;
  log?: (line: string) => void;
}

/** Builds the desktop app's bundles (and the renderer) with Vite; returns the folders written. */
export async function buildDesktopApp(root: string, options: DesktopBuildOptions = {}): Promise<string[]> {
  const { build } = await import('vite');
  const log = options.log ?? (() => undefined);
  const { bundles, renderers } = await forgeBuildConfigs(root);
  const written: string[] = [];
  for (const config of bundles) {
    const outDir = options.bundleOutDir ?? resolve(root, config.build?.outDir ?? '.vite/build');
    log(`building ${relative(root, String(config.build?.lib && typeof config.build.lib === 'object' ? config.build.lib.entry : config.build?.rollupOptions?.input ?? 'bundle'))} -> ${relative(root, outDir) || outDir}`);
    await build({ ...config, configFile: false, logLevel: 'warn', build: { ...config.build, outDir } });
    if (!written.includes(outDir)) written.push(outDir);
  }
  if (options.renderer !== false) {
    for (const config of renderers) {
      const outDir = resolve(root, config.build?.outDir ?? '.vite/renderer');
      log(`building the renderer -> ${relative(root, outDir)}`);
      await build({ ...config, configFile: false, logLevel: 'warn' });
      written.push(outDir);
    }
  }
  return written;
}
