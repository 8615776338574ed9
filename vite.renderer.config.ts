// Vite config of the renderer (renderer/index.html + renderer/main.tsx, owned by app-ui). Used by
// Electron Forge's Vite plugin (merged over its defaults) and by browser mode (`npm run serve`,
// electron/serve.ts), both building into .vite/renderer/main_window. Relative asset URLs (`base`)
// so the same build loads from the app:// protocol in Electron and from the local server.
// Not here: the main/preload bundles (vite.main.config.ts, vite.preload.config.ts).
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

const root = dirname(fileURLToPath(import.meta.url));

export const RENDERER_OUT_DIR = resolve(root, '.vite/renderer/main_window');

export default defineConfig({
  root: resolve(root, 'renderer'),
  base: './',
  plugins: [react()],
  build: {
    outDir: RENDERER_OUT_DIR,
    emptyOutDir: true,
    sourcemap: true,
    chunkSizeWarningLimit: 4096,
  },
  server: { fs: { allow: [root] } },
  clearScreen: false,
});
