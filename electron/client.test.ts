// @vitest-environment jsdom
// Tests of the renderer's host selection (electron/client.ts getHost): the Electron bridge when
// the preload exposed one (checked for its contract version), otherwise browser mode, which needs
// the session token from the page URL; and that bridge envelopes become typed errors.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { CONTRACT_VERSION, type StrataBridge, StrataHostError } from './contract.js';
import { dispatch, createNodeHost } from './host/index.js';
import { nodeChildLauncher } from './host/jobs.js';

const ROOT = resolve(import.meta.dirname, '..');

afterEach(() => {
  delete window.strata;
  vi.resetModules();
});

describe('getHost', () => {
  it('uses the preload bridge in Electron and types its errors', async () => {
    const work = mkdtempSync(join(tmpdir(), 'strata-client-'));
    const { host } = createNodeHost({ mode: 'electron', rootDir: ROOT, dataDir: work, runsDir: join(work, 'runs'), workspaceDir: work, launcher: nodeChildLauncher });
    const calls: string[] = [];
    const bridge: StrataBridge = {
      contractVersion: CONTRACT_VERSION,
      call: (method, args) => {
        calls.push(method);
        return dispatch(host, method, args);
      },
      onRunEvent: () => () => undefined,
    };
    window.strata = bridge;
    const { getHost } = await import('./client.js');
    const h = getHost();
    expect(getHost()).toBe(h);
    expect((await h.host.info()).mode).toBe('electron');
    const error = await h.projects.loadTemplate('nope').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StrataHostError);
    expect((error as StrataHostError).code).toBe('not_found');
    expect(calls).toEqual(['host.info', 'projects.loadTemplate']);
  });

  it('refuses a bridge that speaks another contract version', async () => {
    window.strata = { contractVersion: CONTRACT_VERSION + 1, call: async () => ({ ok: true, value: null }), onRunEvent: () => () => undefined };
    const { getHost } = await import('./client.js');
    expect(() => getHost()).toThrow(/contract/);
  });

  it('needs the token from the URL in browser mode', async () => {
    window.sessionStorage.clear();
    const { getHost } = await import('./client.js');
    expect(() => getHost()).toThrow(/\?token=/);
  });
});
