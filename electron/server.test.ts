// Tests of browser mode's server with the real host services and the renderer's real client code
// (electron/client.ts over the `ws` package): token refusal for pages, assets and sockets, Host and
// Origin checks, static file safety, JSON-RPC calls and errors, and run events pushed to the socket.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createHost, createWebSocketTransport, rpcUrlForPage } from './client.js';
import { type RunEventMessage, type StrataHost, StrataHostError } from './contract.js';
import { documentFromModel } from '../engine/spec/document.js';
import { createExportService } from './host/exports.js';
import { createHostInfoService } from './host/info.js';
import { nodeChildLauncher } from './host/jobs.js';
import { createProjectService } from './host/projects.js';
import { createRunService } from './host/runs.js';
import { type BrowserServer, startBrowserServer } from './server.js';

const ROOT = resolve(import.meta.dirname, '..');
const FIXTURE_CLI = resolve(import.meta.dirname, 'host/test-fixtures/event-writer.mjs');

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function get(port: number, path: string, headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolveReply, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers: { host: `127.0.0.1:${port}`, ...headers } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolveReply({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Resolves with the HTTP status a WebSocket handshake got (101 when it opened). */
function handshake(url: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolveStatus) => {
    const ws = new WebSocket(url, { headers });
    ws.on('open', () => {
      ws.close();
      resolveStatus(101);
    });
    ws.on('unexpected-response', (_req, res) => resolveStatus(res.statusCode ?? 0));
    ws.on('error', () => resolveStatus(-1));
  });
}

describe('browser-mode server', () => {
  let server: BrowserServer;
  let work: string;
  let host: StrataHost;
  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'strata-server-'));
    const staticDir = join(work, 'static');
    mkdirSync(join(staticDir, 'assets'), { recursive: true });
    writeFileSync(join(staticDir, 'index.html'), '<!doctype html><title>Strata</title><script type="module" src="./assets/app.js"></script>');
    writeFileSync(join(staticDir, 'assets', 'app.js'), 'console.log("app")');
    writeFileSync(join(work, 'secret.txt'), 'outside the app');
    const runsDir = join(work, 'runs');
    host = {
      host: createHostInfoService({ mode: 'browser', rootDir: ROOT, cliScript: FIXTURE_CLI, runsDir, workspaceDir: work, nativeDialogs: false }),
      projects: createProjectService({ workspaceDir: work, dataDir: join(work, 'data'), templatesDir: join(ROOT, 'templates') }),
      runs: createRunService({ runsDir, cliScript: FIXTURE_CLI, cwd: work, launcher: nodeChildLauncher, pollMs: 20 }),
      exports: createExportService({ cliScript: FIXTURE_CLI, cwd: work, runsDir, workspaceDir: work, launcher: nodeChildLauncher }),
    };
    server = await startBrowserServer({ host, staticDir });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('listens on loopback and prints a URL with a long random token', () => {
    expect(server.url).toBe(`http://127.0.0.1:${server.port}/?token=${server.token}`);
    expect(server.token).toMatch(/^[0-9a-f]{64}$/);
  });

  it('refuses pages and assets without the token', async () => {
    expect((await get(server.port, '/')).status).toBe(403);
    expect((await get(server.port, '/?token=wrong')).status).toBe(403);
    expect((await get(server.port, `/?token=${server.token.slice(0, -1)}x`)).status).toBe(403);
    expect((await get(server.port, '/assets/app.js')).status).toBe(403);
    expect((await get(server.port, '/assets/app.js', { cookie: 'strata_token=nope' })).status).toBe(403);
  });

  it('serves the app with the token and its assets with the cookie it sets', async () => {
    const page = await get(server.port, `/?token=${server.token}`);
    expect(page.status).toBe(200);
    expect(page.body).toContain('<title>Strata</title>');
    expect(page.headers['content-security-policy']).toContain("script-src 'self'");
    expect(page.headers['referrer-policy']).toBe('no-referrer');
    const cookie = String(page.headers['set-cookie']).split(';')[0]!;
    expect(cookie).toBe(`strata_token=${server.token}`);
    expect(String(page.headers['set-cookie'])).toContain('HttpOnly');
    const asset = await get(server.port, '/assets/app.js', { cookie });
    expect(asset.status).toBe(200);
    expect(asset.headers['content-type']).toContain('text/javascript');
    expect((await get(server.port, '/runs/some-route', { cookie })).body).toContain('<title>Strata</title>');
    expect((await get(server.port, '/assets/missing.js', { cookie })).status).toBe(404);
  });

  it('refuses a foreign Host header (DNS rebinding) and paths outside the app', async () => {
    const token = `?token=${server.token}`;
    expect((await get(server.port, `/${token}`, { host: `evil.example:${server.port}` })).status).toBe(403);
    const escape = await get(server.port, `/%2e%2e/secret.txt${token}`);
    expect(escape.body).not.toContain('outside the app');
    expect([403, 404]).toContain(escape.status);
  });

  it('refuses sockets without the token, on other paths or from another origin', async () => {
    const base = `ws://127.0.0.1:${server.port}`;
    expect(await handshake(`${base}/rpc`)).toBe(403);
    expect(await handshake(`${base}/rpc?token=wrong`)).toBe(403);
    expect(await handshake(`${base}/other?token=${server.token}`)).toBe(403);
    expect(await handshake(`${base}/rpc?token=${server.token}`, { origin: 'http://evil.example' })).toBe(403);
    expect(await handshake(`${base}/rpc?token=${server.token}`, { origin: `http://127.0.0.1:${server.port}` })).toBe(101);
  });

  it('runs contract calls through the renderer client and returns host errors typed', async () => {
    const transport = createWebSocketTransport(rpcUrlForPage(server.url, server.token), (url) => new WebSocket(url));
    const client = createHost(transport);
    try {
      const info = await client.host.info();
      expect(info).toMatchObject({ mode: 'browser', nativeDialogs: false, contractVersion: 1 });
      const doc = await client.projects.loadTemplate('tiny-hybrid');
      const saved = await client.projects.save('mine.strata.json', doc);
      expect((await client.projects.open(saved.path)).doc).toEqual(doc);
      const error = await client.projects.open(join(work, 'missing.json')).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StrataHostError);
      expect(error).toMatchObject({ code: 'not_found', message: `${join(work, 'missing.json')}: no such file` });
      await expect(client.projects.choosePath({ mode: 'open' })).rejects.toMatchObject({ code: 'unavailable' });
    } finally {
      transport.close();
    }
  });

  it('answers malformed frames and unknown methods with JSON-RPC errors', async () => {
    const ws = new WebSocket(rpcUrlForPage(server.url, server.token));
    const replies: unknown[] = [];
    await new Promise<void>((r) => ws.on('open', () => r()));
    ws.on('message', (d) => replies.push(JSON.parse(String(d))));
    ws.send('{not json');
    ws.send(JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'projects.deleteEverything', params: [] }));
    ws.send(JSON.stringify({ jsonrpc: '2.0', id: 8, method: 'runs.events', params: ['../../etc', 0] }));
    while (replies.length < 3) await new Promise((r) => setTimeout(r, 10));
    ws.close();
    expect(replies[0]).toMatchObject({ id: null, error: { code: -32700, data: { code: 'bad_request' } } });
    expect(replies[1]).toMatchObject({ id: 7, error: { code: -32601, message: 'unknown method "projects.deleteEverything"' } });
    expect(replies[2]).toMatchObject({ id: 8, error: { code: -32000, data: { code: 'bad_request' } } });
  });

  it('pushes run events to connected clients', async () => {
    const transport = createWebSocketTransport(rpcUrlForPage(server.url, server.token), (url) => new WebSocket(url));
    const client = createHost(transport);
    const seen: RunEventMessage[] = [];
    client.runs.onEvent((m) => seen.push(m));
    try {
      const doc = documentFromModel({ name: 'pushed', vocab_size: 264, d_model: 32, stack: [{ kind: 'mlp', ffn: 64 }] }, { training: { steps: 5 } });
      const { runId } = await client.runs.start({ doc, kind: 'train', device: 'cpu' });
      while (!seen.some((m) => m.runId === runId && m.event.type === 'done')) await new Promise((r) => setTimeout(r, 10));
      expect(seen.filter((m) => m.runId === runId).map((m) => m.event.type)).toEqual(['start', 'step', 'step', 'step', 'step', 'step', 'done']);
      const [summary] = await client.runs.list();
      expect(summary).toMatchObject({ runId, status: 'done', step: 5, totalSteps: 5, lastLoss: 1 });
    } finally {
      transport.close();
    }
  });
});
