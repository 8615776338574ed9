// The Electron main process: one locked-down BrowserWindow (context isolation, sandboxed renderer,
// no Node integration, strict CSP, no remote content, navigation and new windows refused, every
// permission denied), the renderer served from the privileged app:// scheme (or the Vite dev
// server under `npm start`), the host services (electron/host) wired to IPC (ipc.ts), and engine
// jobs in utility processes (utility-launcher.ts). Not here: the services themselves, the UI.
import { readFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { BrowserWindow, app, dialog, ipcMain, protocol, session, shell } from 'electron';
import { TEMPLATES } from '../templates/index.js';
import { createNodeHost } from './host/index.js';
import { forwardRunEvents, registerIpcHandlers } from './ipc.js';
import { APP_ORIGIN, APP_SCHEME, electronCsp, isAllowedNavigation, isAllowedRequest, isExternalLink, resolveAppFile } from './security.js';
import { utilityLauncher } from './utility-launcher.js';

// Defined by Electron Forge's Vite plugin: the dev server URL under `electron-forge start`.
declare const MAIN_WINDOW_VITE_DEV_SERVER_URL: string | undefined;

const DEV_SERVER_URL = typeof MAIN_WINDOW_VITE_DEV_SERVER_URL === 'string' && MAIN_WINDOW_VITE_DEV_SERVER_URL ? MAIN_WINDOW_VITE_DEV_SERVER_URL : undefined;
const DEV_ORIGIN = DEV_SERVER_URL ? new URL(DEV_SERVER_URL).origin : undefined;
const BUILD_DIR = import.meta.dirname; // .vite/build
const RENDERER_DIR = join(BUILD_DIR, '..', 'renderer', 'main_window');
const MIME: Record<string, string> = {
  '.html': 'text/html',
  '.js': 'text/javascript',
  '.css': 'text/css',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.woff2': 'font/woff2',
  '.wasm': 'application/wasm',
  '.map': 'application/json',
};

protocol.registerSchemesAsPrivileged([{ scheme: APP_SCHEME, privileges: { standard: true, secure: true, supportFetchAPI: true } }]);

if (!app.requestSingleInstanceLock()) app.quit();

const isTrustedFrame = (url: string) => isAllowedNavigation(url, DEV_ORIGIN);

function serveRenderer(): void {
  protocol.handle(APP_SCHEME, async (request) => {
    const file = resolveAppFile(RENDERER_DIR, request.url);
    if (!file) return new Response('Forbidden', { status: 403 });
    try {
      const body = await readFile(file);
      return new Response(body, {
        headers: { 'Content-Type': MIME[extname(file)] ?? 'application/octet-stream', 'Content-Security-Policy': electronCsp(), 'X-Content-Type-Options': 'nosniff' },
      });
    } catch {
      return new Response('Not found', { status: 404 });
    }
  });
}

function lockDownSession(): void {
  const ses = session.defaultSession;
  ses.setPermissionRequestHandler((_contents, _permission, callback) => callback(false));
  ses.setPermissionCheckHandler(() => false);
  ses.webRequest.onBeforeRequest((details, callback) => callback({ cancel: !isAllowedRequest(details.url, DEV_ORIGIN) }));
  ses.webRequest.onHeadersReceived((details, callback) => {
    callback({ responseHeaders: { ...details.responseHeaders, 'Content-Security-Policy': [electronCsp(DEV_ORIGIN)] } });
  });
}

app.on('web-contents-created', (_event, contents) => {
  contents.on('will-navigate', (event, url) => {
    if (!isAllowedNavigation(url, DEV_ORIGIN)) event.preventDefault();
  });
  contents.on('will-redirect', (event, url) => {
    if (!isAllowedNavigation(url, DEV_ORIGIN)) event.preventDefault();
  });
  contents.on('will-attach-webview', (event) => event.preventDefault());
  contents.setWindowOpenHandler(({ url }) => {
    if (isExternalLink(url)) void shell.openExternal(url);
    return { action: 'deny' };
  });
});

function createWindow(): BrowserWindow {
  const window = new BrowserWindow({
    width: 1440,
    height: 900,
    minWidth: 960,
    minHeight: 600,
    title: 'Strata Studio',
    show: false,
    backgroundColor: '#15171c',
    webPreferences: {
      preload: join(BUILD_DIR, 'preload.cjs'),
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      nodeIntegrationInWorker: false,
      webSecurity: true,
      allowRunningInsecureContent: false,
      webviewTag: false,
      navigateOnDragDrop: false,
      spellcheck: false,
    },
  });
  window.once('ready-to-show', () => window.show());
  void window.loadURL(DEV_SERVER_URL ?? `${APP_ORIGIN}/index.html`);
  return window;
}

async function start(): Promise<void> {
  await app.whenReady();
  lockDownSession();
  serveRenderer();

  const userData = app.getPath('userData');
  const node = createNodeHost({
    mode: 'electron',
    rootDir: app.getAppPath(),
    dataDir: userData,
    runsDir: process.env.STRATA_RUNS_DIR ?? join(userData, 'runs'),
    workspaceDir: app.getPath('documents'),
    launcher: utilityLauncher,
    templateIndex: TEMPLATES,
    choosePath: async ({ mode, defaultPath, title }) => {
      if (mode === 'folder') {
        const result = await dialog.showOpenDialog({ title: title ?? 'Choose a folder', properties: ['openDirectory'], ...(defaultPath ? { defaultPath } : {}) });
        return result.canceled ? null : (result.filePaths[0] ?? null);
      }
      const filters = [{ name: 'Strata designs', extensions: ['json'] }];
      const options = { title: title ?? (mode === 'open' ? 'Open design' : 'Save design'), filters, ...(defaultPath ? { defaultPath } : {}) };
      if (mode === 'open') {
        const result = await dialog.showOpenDialog({ ...options, properties: ['openFile'] });
        return result.canceled ? null : (result.filePaths[0] ?? null);
      }
      const result = await dialog.showSaveDialog(options);
      return result.canceled ? null : (result.filePath ?? null);
    },
  });
  registerIpcHandlers(ipcMain, node.host, isTrustedFrame);
  forwardRunEvents(node.host, () => BrowserWindow.getAllWindows().map((w) => w.webContents));

  let disposed = false;
  app.on('before-quit', (event) => {
    if (disposed) return;
    event.preventDefault();
    disposed = true;
    void node.dispose().finally(() => app.quit()); // stop live engine jobs cleanly first
  });
  app.on('second-instance', () => {
    const [window] = BrowserWindow.getAllWindows();
    if (window) {
      if (window.isMinimized()) window.restore();
      window.focus();
    }
  });
  app.on('activate', () => {
    if (BrowserWindow.getAllWindows().length === 0) createWindow();
  });
  app.on('window-all-closed', () => {
    if (process.platform !== 'darwin') app.quit();
  });
  createWindow();
}

void start();
