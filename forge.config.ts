// Electron Forge configuration: `npm start` (electron/start.ts runs electron-forge start on Node >= 22.13: Vite dev server for the
// renderer, bundles for main and preload, launches Electron) and `npm run package`. The Vite
// plugin builds electron/main.ts -> .vite/build/main.js (ES module, package.json "main"),
// electron/preload.ts -> .vite/build/preload.cjs (sandboxed preloads must be CommonJS) and the
// renderer (renderer/index.html + renderer/main.tsx) -> .vite/renderer/main_window.
// Installers (AppImage, deb) are made by electron-builder (electron-builder.yml, `npm run dist`).
import { VitePlugin } from '@electron-forge/plugin-vite';

export default {
  packagerConfig: {
    name: 'strata-studio',
    executableName: 'strata-studio',
    // The native engine addon cannot load from inside the asar archive.
    asar: { unpack: '**/build/native/**/{*.node,strata-engine}' },
  },
  rebuildConfig: {},
  makers: [],
  plugins: [
    new VitePlugin({
      build: [
        { entry: 'electron/main.ts', config: 'vite.main.config.ts', target: 'main' },
        { entry: 'electron/preload.ts', config: 'vite.preload.config.ts', target: 'preload' },
      ],
      renderer: [{ name: 'main_window', config: 'vite.renderer.config.ts' }],
    }),
  ],
};
