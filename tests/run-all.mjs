#!/usr/bin/env node
// `npm test`: runs every test tier of Strata Studio in order and ends with one plain summary line
// `N passed, N failed` (the line CI reads). Exit code is non-zero when any tier fails or a tier
// that must run could not.
//
// Tiers: typecheck (tsc), unit/component tests (Vitest), native op/engine tests (CTest), the
// CUDA backend's compile-and-link check (nvcc from PyPI wheels; no GPU needed), training-quality
// runs (Vitest, tests/training), Python interop tiers (pytest: the Hugging Face oracle and the
// Megatron-Core checks), and the end-to-end UI tests (playwright-core + Chromium, browser mode).
//
// Not here: installing system packages (.ci/run does that) or benchmarks (npm run bench).
// Select tiers with `npm test -- unit native` (names below); the default is all.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const work = mkdtempSync(join(tmpdir(), 'strata-test-'));
const jobs = String(Math.max(1, Math.min(2, Number(process.env.STRATA_TEST_JOBS ?? 2))));

function run(cmd, args, opts = {}) {
  process.stdout.write(`\n$ ${cmd} ${args.join(' ')}\n`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env: { ...process.env, ...opts.env }, timeout: opts.timeoutMs });
  if (r.error) process.stdout.write(`could not run ${cmd}: ${r.error.message}\n`);
  return r.status ?? 1;
}

/** Counts <testcase> outcomes of a JUnit XML file. */
function junitCounts(file) {
  if (!existsSync(file)) return null;
  const xml = readFileSync(file, 'utf8');
  const cases = xml.match(/<testcase\b[\s\S]*?(?:\/>|<\/testcase>)/g) ?? [];
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  for (const c of cases) {
    if (/<(failure|error)\b/.test(c)) failed++;
    else if (/<skipped\b/.test(c) || /status="(notrun|disabled|skipped)"/.test(c)) skipped++;
    else passed++;
  }
  return { passed, failed, skipped };
}

const tiers = {
  typecheck() {
    const status = run('npx', ['tsc', '--noEmit', '-p', 'tsconfig.json']);
    return { passed: status === 0 ? 1 : 0, failed: status === 0 ? 0 : 1, skipped: 0, status };
  },
  unit() {
    const out = join(work, 'vitest.json');
    const status = run('npx', ['vitest', 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${out}`, `--maxWorkers=${jobs}`]);
    if (!existsSync(out)) return { passed: 0, failed: 1, skipped: 0, status: status || 1 };
    const j = JSON.parse(readFileSync(out, 'utf8'));
    // A file that fails to load has no failed test but is a failed suite.
    const failed = j.numFailedTests > 0 ? j.numFailedTests : (j.numFailedTestSuites ?? 0);
    return { passed: j.numPassedTests, failed, skipped: j.numPendingTests + (j.numTodoTests ?? 0), status };
  },
  training() {
    // Real training runs through the strata CLI (corpus loss below the unigram baseline, MQAR
    // recall, resume == uninterrupted); one file at a time since each run uses both cores.
    const out = join(work, 'training.json');
    const status = run('npx', ['vitest', 'run', '--config', 'tests/training/vitest.config.ts', '--reporter=default', '--reporter=json', `--outputFile.json=${out}`]);
    if (!existsSync(out)) return { passed: 0, failed: 1, skipped: 0, status: status || 1 };
    const j = JSON.parse(readFileSync(out, 'utf8'));
    const failed = j.numFailedTests > 0 ? j.numFailedTests : (j.numFailedTestSuites ?? 0);
    return { passed: j.numPassedTests, failed, skipped: j.numPendingTests + (j.numTodoTests ?? 0), status };
  },
  native() {
    const build = join(root, 'build', 'native-tests');
    let status = run('cmake', ['-S', 'engine/native', '-B', build, '-G', 'Ninja', '-DCMAKE_BUILD_TYPE=Release', '-DSTRATA_BUILD_TESTS=ON']);
    if (status === 0) status = run('cmake', ['--build', build, '-j', jobs]);
    if (status !== 0) return { passed: 0, failed: 1, skipped: 0, status };
    const xml = join(work, 'ctest.xml');
    status = run('ctest', ['--test-dir', build, '--output-on-failure', '-j', jobs, '--output-junit', xml]);
    const c = junitCounts(xml) ?? { passed: 0, failed: 1, skipped: 0 };
    return { ...c, status };
  },
  cuda() {
    // No GPU in CI: compiles and links every CUDA source with nvcc from PyPI wheels, then runs the
    // op harness (CPU backend; the CUDA backend reports no device) and the host-side quantization rules.
    const status = run('bash', ['scripts/ci/check-cuda-build.sh', join(root, 'build', 'cuda-check')]);
    return { passed: status === 0 ? 1 : 0, failed: status === 0 ? 0 : 1, skipped: 0, status };
  },
  python() {
    const dir = join(root, 'tests', 'python');
    if (!existsSync(dir) || !readdirSync(dir).some((f) => f.startsWith('test_'))) return null;
    const xml = join(work, 'pytest.xml');
    const status = run('python3', ['-m', 'pytest', '-q', 'tests/python', `--junitxml=${xml}`]);
    const c = junitCounts(xml) ?? { passed: 0, failed: 1, skipped: 0 };
    return { ...c, status: status === 5 ? 1 : status };
  },
  e2e() {
    const runner = join(root, 'tests', 'e2e', 'run.mjs');
    if (!existsSync(runner)) return null;
    const summary = join(work, 'e2e.json');
    const status = run('node', [runner], { env: { STRATA_TEST_SUMMARY: summary } });
    if (!existsSync(summary)) return { passed: 0, failed: 1, skipped: 0, status: status || 1 };
    const s = JSON.parse(readFileSync(summary, 'utf8'));
    return { passed: s.passed, failed: s.failed, skipped: s.skipped ?? 0, status };
  },
};

const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const names = wanted.length ? wanted : Object.keys(tiers);
let passed = 0;
let failed = 0;
let skipped = 0;
const lines = [];
for (const name of names) {
  const tier = tiers[name];
  if (!tier) {
    console.error(`unknown tier '${name}'; tiers: ${Object.keys(tiers).join(', ')}`);
    process.exit(2);
  }
  const r = tier();
  if (r === null) {
    lines.push(`${name.padEnd(10)} not present`);
    continue;
  }
  // A tier whose process failed counts as at least one failure even if no case reported it.
  const f = r.failed + (r.status !== 0 && r.failed === 0 ? 1 : 0);
  passed += r.passed;
  failed += f;
  skipped += r.skipped;
  lines.push(`${name.padEnd(10)} ${r.passed} passed, ${f} failed${r.skipped ? `, ${r.skipped} skipped` : ''}`);
}
process.stdout.write(`\n${lines.join('\n')}\n`);
process.stdout.write(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}\n`);
process.exit(failed > 0 ? 1 : 0);
