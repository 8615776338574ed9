// Vite config of the Electron main process bundle (electron/main.ts), merged by Electron Forge's
// Vite plugin over its defaults (Node built-ins and electron external). Emits an ES module at
// .vite/build/main.js, the package.json "main" (the package is "type": "module").
// Not here: the preload (vite.preload.config.ts) or renderer (vite.renderer.config.ts).
import { defineConfig } from 'vite';

export default defineConfig({
  build: {
    lib: { entry: 'electron/main.ts', formats: ['es'], fileName: () => 'main.js' },
    rollupOptions: { external: ['electron', /^node:/] },
    sourcemap: true,
  },
});
