#!/usr/bin/env node
// The `strata` executable (package.json `bin`): loads the TypeScript CLI (main.ts) through tsx's
// ESM API, so no build step is needed, and exits with the code main returns.
// Not here: argument parsing and commands (main.ts, commands/*).
import { tsImport } from 'tsx/esm/api';

const { main } = await tsImport('./main.ts', import.meta.url);
process.exitCode = await main(process.argv.slice(2));
