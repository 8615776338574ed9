// Builds the Electron main and preload bundles exactly as `electron-forge start/package` would
// (forge.config.ts's Vite plugin settings merged by Forge's own config generator over
// vite.main.config.ts / vite.preload.config.ts) and checks what Electron will load: an ES module
// main.js and a single CommonJS preload.cjs that requires nothing but 'electron' (a sandboxed
// preload cannot load anything else) and exposes only `window.strata`. Launching Electron itself
// is not possible here (no Electron binary; Forge 8 needs Node 22), so this is the closest check.
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build, type InlineConfig } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..');

interface Generator {
  getBuildConfigs(): Promise<InlineConfig[]>;
}

describe('Electron bundles (Forge Vite plugin configuration)', () => {
  const outDir = mkdtempSync(join(tmpdir(), 'strata-bundles-'));
  beforeAll(async () => {
    const forge = (await import('../forge.config.js')).default as { plugins: Array<{ config: unknown }> };
    const pluginConfig = forge.plugins[0]!.config;
    // Forge's config generator is not in the package's exports map; load it by file.
    const generatorFile = join(ROOT, 'node_modules/@electron-forge/plugin-vite/dist/ViteConfig.js');
    const ViteConfigGenerator = (await import(pathToFileURL(generatorFile).href)).default as new (c: unknown, dir: string, prod: boolean) => Generator;
    const configs = await new ViteConfigGenerator(pluginConfig, ROOT, true).getBuildConfigs();
    for (const config of configs) {
      await build({ ...config, configFile: false, logLevel: 'silent', build: { ...config.build, outDir, minify: false } });
    }
  }, 120_000);
  afterAll(() => rmSync(outDir, { recursive: true, force: true }));

  it('emits the files main.ts loads: main.js (package.json main) and preload.cjs', () => {
    const files = readdirSync(outDir);
    expect(files).toContain('main.js');
    expect(files).toContain('preload.cjs');
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { main: string };
    expect(pkg.main).toBe('.vite/build/main.js');
  });

  it('preload is one CommonJS file that only requires electron and exposes only window.strata', () => {
    const preload = readFileSync(join(outDir, 'preload.cjs'), 'utf8');
    const requires = [...preload.matchAll(/require\((["'])([^"']+)\1\)/g)].map((m) => m[2]);
    expect(new Set(requires)).toEqual(new Set(['electron']));
    expect(preload).not.toMatch(/^\s*import\s/m);
    const exposed = [...preload.matchAll(/exposeInMainWorld\((["'])([^"']+)\1/g)].map((m) => m[2]);
    expect(exposed).toEqual(['strata']);
    expect(preload).toContain('strata:'); // IPC channel prefix of the contract
  });

  it('main is an ES module that imports only electron and Node built-ins', () => {
    const main = readFileSync(join(outDir, 'main.js'), 'utf8');
    const imports = [...main.matchAll(/^import\s[^'"]*?from\s*["']([^"']+)["']/gm), ...main.matchAll(/^import\s*["']([^"']+)["']/gm)].map((m) => m[1]!);
    expect(imports.length).toBeGreaterThan(0);
    for (const specifier of imports) expect(specifier === 'electron' || specifier.startsWith('node:') || !specifier.includes('/'), specifier).toBe(true);
    expect(main).toContain('contextIsolation: true');
    expect(main).toContain('sandbox: true');
    expect(main).toContain('nodeIntegration: false');
    expect(main).not.toMatch(/require\(/);
    expect(main).toContain('app://strata'); // production loads the renderer from the app scheme
  });
});
