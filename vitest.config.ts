// Vitest configuration for unit, component and engine-level TypeScript tests.
// Unit tests live next to the code they test (`*.test.ts`); e2e tests (tests/e2e) run separately
// through tests/run-all.mjs because they need a built UI and a real browser.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['engine/**/*.test.ts', 'templates/**/*.test.ts', 'electron/**/*.test.ts', 'renderer/**/*.test.{ts,tsx}', 'tests/unit/**/*.test.ts'],
    exclude: ['node_modules/**', 'tests/e2e/**'],
    pool: 'threads',
    testTimeout: 120_000,
  },
});
