// Vite config of the Electron preload (electron/preload.ts), merged by Electron Forge's Vite
// plugin over its defaults (single CommonJS file .vite/build/preload.cjs, electron external).
// A sandboxed preload can only require('electron') and a few polyfilled modules, so everything
// else (the contract's method table) is bundled in. Not here: main or renderer configs.
import { defineConfig } from 'vite';

export default defineConfig({
  build: {
    sourcemap: 'inline',
  },
});
