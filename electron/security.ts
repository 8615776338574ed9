// The Electron window's security rules as pure functions, so they are tested without Electron:
// the Content-Security-Policy, which URLs the window may navigate to or load (only the app's own
// app:// origin, plus the Vite dev server during `npm start`), and how an app:// URL maps to a
// file of the built renderer (never outside it). Used by electron/main.ts.
// Not here: wiring them into Electron (main.ts).
import { extname, join, normalize, sep } from 'node:path';

/** The renderer is served from this privileged standard scheme, not file://. */
export const APP_SCHEME = 'app';
export const APP_ORIGIN = `${APP_SCHEME}://strata`;

/**
 * Own origin only; no remote scripts, frames, plugins or form posts. Inline styles are allowed
 * (React Flow positions nodes with style attributes). During development the Vite dev server's
 * origin and its HMR socket are allowed, plus the inline React refresh preamble.
 */
export function electronCsp(devServerOrigin?: string): string {
  const dev = devServerOrigin ? ` ${devServerOrigin} ${devServerOrigin.replace(/^http/, 'ws')}` : '';
  return [
    `default-src 'self'${dev}`,
    `script-src 'self'${devServerOrigin ? ` 'unsafe-inline' ${devServerOrigin}` : ''}`,
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "font-src 'self' data:",
    `connect-src 'self'${dev}`,
    "worker-src 'self' blob:",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
    "frame-src 'none'",
  ].join('; ');
}

function originOf(url: string): string | null {
  try {
    const parsed = new URL(url);
    // Non-special schemes such as app: report origin "null"; rebuild it from protocol and host.
    return parsed.origin !== 'null' ? parsed.origin : `${parsed.protocol}//${parsed.host}`;
  } catch {
    return null;
  }
}

/** The window may only ever show the app itself (no navigation to remote content). */
export function isAllowedNavigation(url: string, devServerOrigin?: string): boolean {
  const origin = originOf(url);
  return origin === APP_ORIGIN || (devServerOrigin !== undefined && origin === devServerOrigin);
}

/** Network requests the renderer may make: the app, the dev server, devtools, inline data. */
export function isAllowedRequest(url: string, devServerOrigin?: string): boolean {
  if (url.startsWith('data:') || url.startsWith('blob:') || url.startsWith('devtools://')) return true;
  if (isAllowedNavigation(url, devServerOrigin)) return true;
  if (devServerOrigin) {
    const origin = originOf(url);
    return origin === devServerOrigin.replace(/^http/, 'ws');
  }
  return false;
}

/** Links the user clicks that open in the system browser instead of the window. */
export function isExternalLink(url: string): boolean {
  return /^https:\/\//.test(url);
}

/**
 * The file of the built renderer an app:// URL names, or null when it is another origin or would
 * leave `rendererDir`. Paths without an extension (client routes) map to index.html.
 */
export function resolveAppFile(rendererDir: string, url: string): string | null {
  if (originOf(url) !== APP_ORIGIN) return null;
  let path: string;
  try {
    path = decodeURIComponent(new URL(url).pathname);
  } catch {
    return null;
  }
  if (path.includes('\0')) return null;
  const root = normalize(rendererDir + sep);
  if (path === '/' || path === '' || !extname(path)) return join(root, 'index.html');
  const file = normalize(join(root, path));
  return file.startsWith(root) ? file : null;
}
