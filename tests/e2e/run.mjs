#!/usr/bin/env node
// End-to-end runner (started by tests/run-all.mjs, or `node tests/e2e/run.mjs [filter] [--screenshots]`):
// builds the renderer with Vite, starts browser mode (electron/serve.ts) on a free loopback port
// with private runs/data/workspace folders, drives Debian's Chromium through playwright-core over
// every spec in tests/e2e/specs/*.spec.ts (each on a fresh page), prints one line per spec, writes
// {passed, failed, skipped} to $STRATA_TEST_SUMMARY when set, and exits non-zero on any failure.
// Failure screenshots go to tests/e2e/artifacts/; with --screenshots the specs also refresh
// docs/screenshots/ (the README's pictures).
// Environment: STRATA_E2E_NO_BUILD=1 reuses the last renderer build; CHROMIUM=path overrides the browser.
// Not here: the specs (specs/) or their helpers (harness.ts).
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { tsImport } from 'tsx/esm/api';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SPECS_DIR = join(ROOT, 'tests', 'e2e', 'specs');
const ARTIFACTS = join(ROOT, 'tests', 'e2e', 'artifacts');
const SCREENSHOTS = join(ROOT, 'docs', 'screenshots');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

const args = process.argv.slice(2);
const takeScreenshots = args.includes('--screenshots');
const filter = args.find((a) => !a.startsWith('--'));

function log(line) {
  process.stdout.write(`${line}\n`);
}

function writeSummary(passed, failed, skipped = 0) {
  if (process.env.STRATA_TEST_SUMMARY) writeFileSync(process.env.STRATA_TEST_SUMMARY, JSON.stringify({ passed, failed, skipped }));
}

/** Fails the whole tier with one message (a setup problem, not a spec failure). */
function abort(message) {
  log(`e2e: ${message}`);
  writeSummary(0, 1);
  process.exit(1);
}

async function buildRenderer() {
  if (!existsSync(join(ROOT, 'renderer', 'index.html'))) abort('renderer/index.html does not exist yet: nothing to test');
  const { build } = await import('vite');
  log('e2e: building the renderer with Vite...');
  await build({ configFile: join(ROOT, 'vite.renderer.config.ts'), logLevel: 'warn' });
}

/** Starts `electron/serve.ts --no-build` and resolves with its URL once it prints it. */
function startServer(folders) {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(ROOT, 'electron', 'serve.ts'), '--no-build', '--port', '0', '--runs-dir', folders.runs, '--data-dir', folders.data, '--workspace', folders.workspace],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  return new Promise((resolveServer, reject) => {
    const onData = (chunk) => {
      output += chunk;
      const match = /(http:\/\/127\.0\.0\.1:\d+\/\?token=[0-9a-f]+)/.exec(output);
      if (match) resolveServer({ child, url: match[1], output: () => output });
    };
    child.stdout.setEncoding('utf8').on('data', onData);
    child.stderr.setEncoding('utf8').on('data', (chunk) => (output += chunk));
    child.once('exit', (code) => reject(new Error(`browser-mode server exited with code ${code} before printing its URL:\n${output}`)));
  });
}

async function loadSpecs() {
  const files = readdirSync(SPECS_DIR).filter((f) => f.endsWith('.spec.ts')).sort();
  const specs = [];
  for (const file of files) {
    const mod = await tsImport(pathToFileURL(join(SPECS_DIR, file)).href, import.meta.url);
    for (const s of mod.specs ?? []) specs.push({ ...s, file });
  }
  return filter ? specs.filter((s) => `${s.file} ${s.name}`.includes(filter)) : specs;
}

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: not finished after ${ms / 1000} s`)), ms);
    }),
  ]);
}

async function main() {
  if (!existsSync(CHROMIUM)) abort(`no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM)`);
  if (process.env.STRATA_E2E_NO_BUILD !== '1') await buildRenderer();
  else if (!existsSync(join(ROOT, '.vite', 'renderer', 'main_window', 'index.html'))) abort('STRATA_E2E_NO_BUILD=1 but there is no renderer build');

  const work = mkdtempSync(join(tmpdir(), 'strata-e2e-'));
  const folders = { runs: join(work, 'runs'), data: join(work, 'data'), workspace: join(work, 'workspace') };
  mkdirSync(folders.workspace, { recursive: true });
  const specs = await loadSpecs();
  if (specs.length === 0) abort(`no specs matched${filter ? ` '${filter}'` : ''}`);

  const server = await startServer(folders);
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  let passed = 0;
  let failed = 0;
  try {
    for (const s of specs) {
      const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, colorScheme: 'dark' });
      const page = await context.newPage();
      const problems = [];
      page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
      page.on('console', (message) => {
        if (message.type() === 'error') problems.push(`console error: ${message.text()}`);
      });
      const ctx = {
        page,
        url: server.url,
        runsDir: folders.runs,
        workspaceDir: folders.workspace,
        takingScreenshots: takeScreenshots,
        async screenshot(name, target) {
          if (!takeScreenshots) return;
          mkdirSync(SCREENSHOTS, { recursive: true });
          await (target ?? page).screenshot({ path: join(SCREENSHOTS, `${name}.png`) });
        },
      };
      const label = `${s.file.replace(/\.spec\.ts$/, '')} › ${s.name}`;
      try {
        await withTimeout(s.run(ctx), s.timeoutMs, label);
        passed++;
        log(`  ✓ ${label}`);
      } catch (error) {
        failed++;
        log(`  ✗ ${label}\n      ${String(error?.stack ?? error).split('\n').slice(0, 6).join('\n      ')}`);
        for (const p of problems.slice(0, 5)) log(`      ${p}`);
        mkdirSync(ARTIFACTS, { recursive: true });
        const shot = join(ARTIFACTS, `${label.replace(/[^A-Za-z0-9]+/g, '-')}.png`);
        await page.screenshot({ path: shot }).then(() => log(`      screenshot: ${shot}`), () => undefined);
      } finally {
        await context.close();
      }
    }
  } finally {
    await browser.close();
    server.child.kill('SIGINT');
    if (server.child.exitCode === null) await new Promise((r) => server.child.once('exit', r));
    rmSync(work, { recursive: true, force: true });
  }
  log(`e2e: ${passed} passed, ${failed} failed`);
  writeSummary(passed, failed);
  process.exit(failed > 0 ? 1 : 0);
}

main().catch((error) => abort(error?.stack ?? String(error)));
