// Vitest configuration of the training-quality tier (tests/training): real training runs through
// the strata CLI, one file at a time (each run already uses both cores), generous timeouts.
// Run with `npx vitest run --config tests/training/vitest.config.ts`. Not the unit-test config.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    root: new URL('../..', import.meta.url).pathname,
    include: ['tests/training/**/*.test.ts'],
    fileParallelism: false,
    testTimeout: 600_000,
    hookTimeout: 600_000,
  },
});
