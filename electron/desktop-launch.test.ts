// Tests of `npm start`'s launcher (desktop-launch.ts, start.ts): when Forge is used, where the
// Electron binary is looked for and the one-line message when it is absent (also through the real
// `tsx electron/start.ts` process on this Node), and the Vite build of the main and preload
// bundles from Forge's configuration (what Electron loads). The renderer build is the one
// `npm run serve` and the e2e runner make, so it is not repeated here.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildDesktopApp, findElectronBinary, forgeSupported, planStart } from './desktop-launch.js';

const ROOT = resolve(import.meta.dirname, '..');
const scratch = mkdtempSync(join(tmpdir(), 'strata-start-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function fakeElectronPackage(name: string, withBinary: boolean): string {
  const dir = join(scratch, name);
  mkdirSync(join(dir, 'dist'), { recursive: true });
  writeFileSync(join(dir, 'path.txt'), 'electron');
  if (withBinary) writeFileSync(join(dir, 'dist', 'electron'), '#!/bin/sh\n');
  return dir;
}

describe('npm start: Forge or the built-in launcher', () => {
  it('uses Electron Forge only from Node 22.13 on', () => {
    expect(forgeSupported('20.20.0')).toBe(false);
    expect(forgeSupported('22.12.9')).toBe(false);
    expect(forgeSupported('v22.13.0')).toBe(true);
    expect(forgeSupported('24.1.0')).toBe(true);
    expect(planStart('22.13.0', join(scratch, 'nowhere'))).toEqual({ action: 'forge' });
  });

  it('finds the installed Electron binary (dist/path.txt, or ELECTRON_OVERRIDE_DIST_PATH)', () => {
    const pkg = fakeElectronPackage('installed', true);
    expect(planStart('20.20.0', pkg, {})).toEqual({ action: 'electron', binary: join(pkg, 'dist', 'electron') });
    const override = fakeElectronPackage('override', true);
    expect(findElectronBinary(fakeElectronPackage('no-binary', false), { ELECTRON_OVERRIDE_DIST_PATH: join(override, 'dist') })).toEqual({
      found: true,
      path: join(override, 'dist', 'electron'),
    });
  });

  it('explains in one line when the binary is absent (path.txt without dist, or no path.txt at all)', () => {
    for (const pkg of [fakeElectronPackage('absent', false), join(scratch, 'empty-package')]) {
      const plan = planStart('20.20.0', pkg, {});
      expect(plan.action).toBe('missing');
      const message = plan.action === 'missing' ? plan.message : '';
      expect(message).not.toContain('\n');
      expect(message).toMatch(/^strata start: the Electron binary is not installed \(.*dist.* is missing/);
      expect(message).toContain('npm run serve');
    }
  });

  it.runIf(!forgeSupported(process.versions.node))('tsx electron/start.ts prints that line and exits 1 when Electron is absent', () => {
    const result = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'electron', 'start.ts')], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { ...process.env, ELECTRON_OVERRIDE_DIST_PATH: join(scratch, 'no-electron-here') },
      timeout: 60_000,
    });
    expect(result.status).toBe(1);
    const lines = result.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`the Electron binary is not installed (${join(scratch, 'no-electron-here', 'electron')} is missing`);
    expect(result.stdout).toBe(''); // nothing was built before the message
  });
});

describe('npm start: the Vite build without Forge', () => {
  it('builds main.js (ES module loading the renderer from app://) and preload.cjs from forge.config.ts', async () => {
    const outDir = join(scratch, 'bundles');
    const lines: string[] = [];
    const written = await buildDesktopApp(ROOT, { bundleOutDir: outDir, renderer: false, log: (l) => lines.push(l) });
    expect(written).toEqual([outDir]);
    expect(readdirSync(outDir)).toEqual(expect.arrayContaining(['main.js', 'preload.cjs']));
    expect(lines.join('\n')).toMatch(/electron\/main\.ts/);
    const main = readFileSync(join(outDir, 'main.js'), 'utf8');
    expect(main).toMatch(/^import\s.*from\s*["']electron["']/m);
    expect(main).toContain('app://strata');
    const preload = readFileSync(join(outDir, 'preload.cjs'), 'utf8');
    expect(preload).toMatch(/require\(["']electron["']\)/);
    expect(preload).toContain('exposeInMainWorld');
  }, 180_000);
});
