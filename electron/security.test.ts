// Tests of the Electron window's security rules (electron/security.ts) and of the IPC wiring
// (electron/ipc.ts) against a recording stand-in for ipcMain (the Electron binary cannot run here):
// every contract method gets a channel, calls from untrusted frames are refused, results and
// errors come back as envelopes, and run events reach live windows only.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ALL_METHODS, type CallEnvelope, type RunEventMessage } from './contract.js';
import { createNodeHost } from './host/index.js';
import { nodeChildLauncher } from './host/jobs.js';
import { type InvokeEventLike, type IpcMainLike, forwardRunEvents, registerIpcHandlers } from './ipc.js';
import { APP_ORIGIN, electronCsp, isAllowedNavigation, isAllowedRequest, isExternalLink, resolveAppFile } from './security.js';

const ROOT = resolve(import.meta.dirname, '..');

describe('window security rules', () => {
  it('has a CSP without remote or inline scripts in production', () => {
    const csp = electronCsp();
    expect(csp).toContain("script-src 'self';");
    expect(csp).toContain("object-src 'none'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('http');
    expect(electronCsp('http://localhost:5173')).toContain('connect-src \'self\' http://localhost:5173 ws://localhost:5173');
  });

  it('allows navigation only to the app (and the dev server when given)', () => {
    expect(isAllowedNavigation(`${APP_ORIGIN}/index.html`)).toBe(true);
    expect(isAllowedNavigation('https://example.com/')).toBe(false);
    expect(isAllowedNavigation('file:///etc/passwd')).toBe(false);
    expect(isAllowedNavigation('app://other/index.html')).toBe(false);
    expect(isAllowedNavigation('http://localhost:5173/', 'http://localhost:5173')).toBe(true);
    expect(isAllowedNavigation('http://localhost:5173/')).toBe(false);
  });

  it('blocks remote requests', () => {
    expect(isAllowedRequest('https://cdn.example.com/x.js')).toBe(false);
    expect(isAllowedRequest(`${APP_ORIGIN}/assets/a.js`)).toBe(true);
    expect(isAllowedRequest('data:image/png;base64,AA==')).toBe(true);
    expect(isAllowedRequest('ws://localhost:5173/', 'http://localhost:5173')).toBe(true);
    expect(isAllowedRequest('ws://localhost:5173/')).toBe(false);
    expect(isExternalLink('https://arxiv.org/abs/2509.25149')).toBe(true);
    expect(isExternalLink('file:///tmp/x')).toBe(false);
  });

  it('maps app:// URLs into the renderer folder only', () => {
    const dir = '/opt/strata/renderer';
    expect(resolveAppFile(dir, `${APP_ORIGIN}/`)).toBe('/opt/strata/renderer/index.html');
    expect(resolveAppFile(dir, `${APP_ORIGIN}/assets/index-abc.js`)).toBe('/opt/strata/renderer/assets/index-abc.js');
    expect(resolveAppFile(dir, `${APP_ORIGIN}/runs/123`)).toBe('/opt/strata/renderer/index.html');
    // URL parsing already clamps dot segments at the root; encoded slashes are caught after decoding.
    expect(resolveAppFile(dir, `${APP_ORIGIN}/%2e%2e/%2e%2e/etc/passwd.txt`)).toBe('/opt/strata/renderer/etc/passwd.txt');
    expect(resolveAppFile(dir, `${APP_ORIGIN}/..%2f..%2fsecret.txt`)).toBe(null);
    expect(resolveAppFile(dir, 'https://example.com/index.html')).toBe(null);
  });
});

describe('IPC wiring', () => {
  function wire() {
    const work = mkdtempSync(join(tmpdir(), 'strata-ipc-'));
    const { host } = createNodeHost({ mode: 'electron', rootDir: ROOT, dataDir: join(work, 'data'), runsDir: join(work, 'runs'), workspaceDir: work, launcher: nodeChildLauncher });
    const handlers = new Map<string, (event: InvokeEventLike, ...args: unknown[]) => Promise<CallEnvelope>>();
    const ipcMain: IpcMainLike = {
      handle: (channel, listener) => {
        if (handlers.has(channel)) throw new Error(`second handler for ${channel}`);
        handlers.set(channel, listener);
      },
      removeHandler: (channel) => handlers.delete(channel),
    };
    const unregister = registerIpcHandlers(ipcMain, host, (url) => isAllowedNavigation(url));
    return { host, handlers, unregister, work };
  }
  const fromApp: InvokeEventLike = { senderFrame: { url: `${APP_ORIGIN}/index.html` } };

  it('registers one channel per contract method and removes them again', () => {
    const { handlers, unregister } = wire();
    expect([...handlers.keys()].sort()).toEqual(ALL_METHODS.map((m) => `strata:${m}`).sort());
    unregister();
    expect(handlers.size).toBe(0);
  });

  it('answers trusted calls with envelopes and refuses other frames', async () => {
    const { handlers, work } = wire();
    const info = await handlers.get('strata:host.info')!(fromApp);
    expect(info).toMatchObject({ ok: true, value: { mode: 'electron', nativeDialogs: false } });
    const missing = await handlers.get('strata:projects.open')!(fromApp, join(work, 'none.json'));
    expect(missing).toEqual({ ok: false, error: { code: 'not_found', message: `${join(work, 'none.json')}: no such file`, file: join(work, 'none.json') } });
    const refused = await handlers.get('strata:host.info')!({ senderFrame: { url: 'https://evil.example/' } });
    expect(refused).toMatchObject({ ok: false, error: { code: 'bad_request' } });
    const noFrame = await handlers.get('strata:host.info')!({ senderFrame: null });
    expect(noFrame.ok).toBe(false);
  });

  it('forwards run events to windows that still exist', () => {
    const { host } = wire();
    const received: string[] = [];
    const live = { isDestroyed: () => false, send: (channel: string, m: RunEventMessage) => received.push(`${channel} ${m.runId}`) };
    const closed = { isDestroyed: () => true, send: () => received.push('closed window got an event') };
    // Drive the real run service's listener list through its public subscription.
    let emit: ((m: RunEventMessage) => void) | null = null;
    const spyHost = { ...host, runs: { ...host.runs, onEvent: (l: (m: RunEventMessage) => void) => ((emit = l), () => (emit = null)) } };
    const stop = forwardRunEvents(spyHost, () => [live, closed]);
    emit!({ runId: 'r1', line: 0, event: { type: 'start', t: 0 } });
    stop();
    expect(emit).toBeNull();
    expect(received).toEqual(['strata:runs.event r1']);
  });
});
