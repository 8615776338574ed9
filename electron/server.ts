// Browser mode's server: serves the built renderer and the host services (JSON-RPC over a
// WebSocket at /rpc, electron/rpc.ts) on 127.0.0.1 only, behind a random per-session token.
// The page URL carries `?token=...`; the server then sets an HttpOnly SameSite=Strict cookie so the
// page's assets load, and the WebSocket must present the token in its URL. Requests without the
// token, with a foreign Host header (DNS rebinding) or a foreign Origin (cross-site WebSocket) are
// refused with 403. Not here: building the renderer or choosing folders (electron/serve.ts).
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize, sep } from 'node:path';
import { WebSocketServer, type WebSocket } from 'ws';
import type { StrataHost } from './contract.js';
import { dispatch } from './host/index.js';
import { RPC_HOST_ERROR, parseRpcRequest, rpcFailure, rpcSuccess, runEventNotification } from './rpc.js';

export interface BrowserServerOptions {
  host: StrataHost;
  /** Folder with the built renderer (index.html + assets). */
  staticDir: string;
  /** 0 (default) picks a free port. */
  port?: number;
  /** Defaults to 32 random bytes, hex. */
  token?: string;
}

export interface BrowserServer {
  url: string;
  port: number;
  token: string;
  close(): Promise<void>;
}

const COOKIE = 'strata_token';
const MAX_FRAME = 64 * 1024 * 1024;
const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.wasm': 'application/wasm',
  '.map': 'application/json',
};

/** The renderer's Content-Security-Policy: own origin only, the /rpc socket, no plugins or frames. */
export function browserCsp(origin: string): string {
  const ws = origin.replace(/^http/, 'ws');
  return [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'", // React Flow positions nodes with inline styles
    "img-src 'self' data: blob:",
    "font-src 'self' data:",
    `connect-src 'self' ${ws}`,
    "worker-src 'self' blob:",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

function sameToken(given: string | null | undefined, token: string): boolean {
  if (!given) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

function cookieToken(req: IncomingMessage): string | null {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [name, ...value] = part.trim().split('=');
    if (name === COOKIE) return value.join('=');
  }
  return null;
}

export async function startBrowserServer(options: BrowserServerOptions): Promise<BrowserServer> {
  const token = options.token ?? randomBytes(32).toString('hex');
  const root = normalize(options.staticDir + sep);
  let port = 0;
  const allowedHosts = () => [`127.0.0.1:${port}`, `localhost:${port}`];
  const allowedOrigins = () => allowedHosts().map((h) => `http://${h}`);

  const refuse = (res: ServerResponse, status: number, text: string) => {
    res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store' });
    res.end(`${text}\n`);
  };

  const server = createServer(async (req, res) => {
    try {
      if (!allowedHosts().includes(req.headers.host ?? '')) return refuse(res, 403, 'Forbidden: unexpected Host header');
      const url = new URL(req.url ?? '/', `http://${req.headers.host}`);
      const queryToken = url.searchParams.get('token');
      const authorized = sameToken(queryToken, token) || sameToken(cookieToken(req), token);
      if (!authorized) return refuse(res, 403, 'Forbidden: open the URL printed by `npm run serve` (it carries ?token=...)');
      if (req.method !== 'GET' && req.method !== 'HEAD') return refuse(res, 405, 'Method not allowed');

      let relative = decodeURIComponent(url.pathname);
      if (relative.endsWith('/')) relative += 'index.html';
      let file = normalize(join(root, relative));
      if (!file.startsWith(root)) return refuse(res, 403, 'Forbidden: path outside the app');
      let stat = await fs.stat(file).catch(() => null);
      if (!stat?.isFile() && !extname(file)) {
        file = join(root, 'index.html'); // client-side routes fall back to the app
        stat = await fs.stat(file).catch(() => null);
      }
      if (!stat?.isFile()) return refuse(res, 404, `Not found: ${url.pathname}`);
      const headers: Record<string, string> = {
        'Content-Type': CONTENT_TYPES[extname(file)] ?? 'application/octet-stream',
        'Content-Length': String(stat.size),
        'Content-Security-Policy': browserCsp(`http://${req.headers.host}`),
        'X-Content-Type-Options': 'nosniff',
        'Referrer-Policy': 'no-referrer',
        'Cross-Origin-Opener-Policy': 'same-origin',
        'Cache-Control': extname(file) === '.html' ? 'no-store' : 'no-cache',
      };
      if (sameToken(queryToken, token)) headers['Set-Cookie'] = `${COOKIE}=${token}; HttpOnly; SameSite=Strict; Path=/`;
      res.writeHead(200, headers);
      if (req.method === 'HEAD') return res.end();
      res.end(await fs.readFile(file));
    } catch (error) {
      refuse(res, 500, `Internal error: ${(error as Error).message}`);
    }
  });

  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME });
  server.on('upgrade', (req, socket, head) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const origin = req.headers.origin;
    const ok =
      url.pathname === '/rpc' &&
      allowedHosts().includes(req.headers.host ?? '') &&
      (origin === undefined || allowedOrigins().includes(origin)) &&
      sameToken(url.searchParams.get('token'), token);
    if (!ok) {
      socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => serveSocket(ws, options.host));
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  port = (server.address() as AddressInfo).port;

  return {
    url: `http://127.0.0.1:${port}/?token=${token}`,
    port,
    token,
    async close() {
      for (const client of wss.clients) client.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** One authenticated socket: requests in, responses and run-event pushes out. */
function serveSocket(ws: WebSocket, host: StrataHost): void {
  const send = (message: unknown) => {
    if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(message));
  };
  const unsubscribe = host.runs.onEvent((message) => send(runEventNotification(message)));
  ws.on('close', unsubscribe);
  ws.on('message', async (data) => {
    const parsed = parseRpcRequest(String(data));
    if (!parsed.ok) return send(parsed.failure);
    const { id, method, params } = parsed.request;
    const envelope = await dispatch(host, method, params);
    send(envelope.ok ? rpcSuccess(id, envelope.value) : rpcFailure(id, RPC_HOST_ERROR, envelope.error));
  });
}
