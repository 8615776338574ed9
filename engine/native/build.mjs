#!/usr/bin/env node
// Builds the native engine for this machine with cmake-js: the node-addon-api binding
// (`strata_node.node`, loaded by engine/runtime/engine.ts) and the native CLI `strata-engine`,
// Release, at most 2 parallel jobs, CPU always and CUDA too when `nvcc` is found. Output goes to
// build/native/ at the repository root: the addon in build/native/Release/strata_node.node, the
// native CLI in build/native/strata-engine (Release/ with multi-config generators; both printed at
// the end). Run by package.json's
// "install" script (so `npm install` on a fresh machine builds everything) and by `npm run build:engine`.
//
// Options (environment): STRATA_SKIP_NATIVE_BUILD=1 skips the build (e.g. when only adding an npm
// package); STRATA_CUDA=0|1 forces the CUDA backend off/on; STRATA_BUILD_JOBS sets the parallelism.
// Flags: --clean removes the build folder first; --verbose shows the compiler commands.
//
// Not here: the CMake project itself (engine/native/CMakeLists.txt and the sources.cmake hooks) or
// the op test build (tests/run-all.mjs builds those separately).
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const nativeDir = dirname(fileURLToPath(import.meta.url));
const repoRoot = join(nativeDir, '..', '..');
export const BUILD_DIR = join(repoRoot, 'build', 'native');

function hasCommand(name) {
  return spawnSync(name, ['--version'], { stdio: 'ignore' }).status === 0;
}

function cudaWanted() {
  if (process.env.STRATA_CUDA === '0') return false;
  if (process.env.STRATA_CUDA === '1') return true;
  return hasCommand('nvcc');
}

async function main() {
  if (process.env.STRATA_SKIP_NATIVE_BUILD === '1') {
    console.log('strata: native build skipped (STRATA_SKIP_NATIVE_BUILD=1)');
    return;
  }
  const args = new Set(process.argv.slice(2));
  if (args.has('--clean')) rmSync(BUILD_DIR, { recursive: true, force: true });
  if (!hasCommand('cmake')) throw new Error('cmake was not found on PATH; install CMake 3.20+ (and a C++20 compiler) to build the engine');

  const require = createRequire(import.meta.url);
  const { BuildSystem } = require('cmake-js');
  const jobs = String(Math.max(1, Number(process.env.STRATA_BUILD_JOBS ?? 2)));
  const cuda = cudaWanted();
  const options = {
    directory: nativeDir,
    out: BUILD_DIR,
    config: 'Release',
    parallel: jobs,
    preferGnu: true,
    generator: hasCommand('ninja') ? 'Ninja' : undefined,
    cMakeOptions: {
      STRATA_BUILD_NODE: 'ON',
      STRATA_CUDA: cuda ? 'ON' : 'OFF',
      STRATA_BUILD_TESTS: 'OFF',
      STRATA_BUILD_BENCH: 'OFF',
      ...(args.has('--verbose') ? { CMAKE_VERBOSE_MAKEFILE: 'ON' } : {}),
    },
  };
  const build = new BuildSystem(options);
  // The addon uses only Node-API, so no Node headers are downloaded: cmake-js takes them from the
  // node-api-headers package. cmake-js decides this from a package.json next to CMakeLists.txt;
  // the engine has none, so it is said here (the options object is shared with cmake-js's CMake).
  build.options.isNodeApi = true;
  console.log(`strata: building the native engine (Release, ${jobs} jobs, CPU${cuda ? ' + CUDA' : ''}) in ${BUILD_DIR}`);
  await build.build();
  const addon = join(BUILD_DIR, 'Release', 'strata_node.node');
  if (!existsSync(addon)) throw new Error(`the build finished without ${addon}`);
  // Single-config generators (Ninja, Make) put the CLI in the build folder, multi-config ones in Release/.
  const cliName = process.platform === 'win32' ? 'strata-engine.exe' : 'strata-engine';
  const cli = [join(BUILD_DIR, cliName), join(BUILD_DIR, 'Release', cliName)].find((path) => existsSync(path));
  if (!cli) throw new Error(`the build finished without the native CLI ${cliName}`);
  console.log(`strata: native engine built: addon ${addon}, CLI ${cli}`);
}

main().catch((error) => {
  console.error(`strata: native build failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
