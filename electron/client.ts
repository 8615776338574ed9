// The renderer's way to the host: `getHost()` returns a StrataHost (electron/contract.ts) backed by
// the Electron preload bridge (`window.strata`) when present, or otherwise by a JSON-RPC WebSocket
// to the browser-mode server, authenticated with the `token` query parameter of the page URL.
// Also exports the transport-level builders so Node tests can drive a real server with the same
// client code. Not here: the server side (electron/server.ts) or any UI.
import {
  type CallEnvelope,
  type MethodName,
  type RunEventMessage,
  type StrataBridge,
  type StrataHost,
  CONTRACT_VERSION,
  RUN_EVENT_TOPIC,
  SERVICE_METHODS,
  type ServiceName,
  StrataHostError,
} from './contract.js';
import type { RpcServerMessage } from './rpc.js';

/** What a StrataHost is built on: one call gate plus the run-event push. */
export interface HostTransport {
  call(method: MethodName, args: unknown[]): Promise<CallEnvelope>;
  onRunEvent(listener: (message: RunEventMessage) => void): () => void;
}

/** Builds the typed host object from a transport; errors become StrataHostError. */
export function createHost(transport: HostTransport): StrataHost {
  const host = {} as Record<ServiceName, Record<string, unknown>>;
  for (const service of Object.keys(SERVICE_METHODS) as ServiceName[]) {
    const methods: Record<string, unknown> = {};
    for (const method of SERVICE_METHODS[service]) {
      const name = `${service}.${method}` as MethodName;
      methods[method] = async (...args: unknown[]) => {
        const envelope = await transport.call(name, args);
        if (!envelope.ok) throw new StrataHostError(envelope.error);
        return envelope.value;
      };
    }
    host[service] = methods;
  }
  host.runs!.onEvent = (listener: (message: RunEventMessage) => void) => transport.onRunEvent(listener);
  return host as unknown as StrataHost;
}

/** The minimal WebSocket surface used (the DOM WebSocket and the `ws` package both have it). */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(): void;
  addEventListener(type: 'open' | 'close' | 'error', listener: () => void): void;
  addEventListener(type: 'message', listener: (event: { data: unknown }) => void): void;
}
export type WebSocketFactory = (url: string) => WebSocketLike;

const WS_OPEN = 1;
const RECONNECT_DELAY_MS = 500;

/**
 * JSON-RPC over WebSocket with a queue while connecting and reconnection after a drop. Calls in
 * flight when the socket drops fail with `unavailable` (the host may or may not have run them).
 */
export function createWebSocketTransport(url: string, open: WebSocketFactory): HostTransport & { close(): void } {
  let socket: WebSocketLike | null = null;
  let nextId = 1;
  let closedByUser = false;
  const pending = new Map<number, { resolve: (e: CallEnvelope) => void }>();
  const queue: string[] = [];
  const listeners = new Set<(message: RunEventMessage) => void>();

  const failPending = (message: string) => {
    for (const [id, call] of pending) {
      pending.delete(id);
      call.resolve({ ok: false, error: { code: 'unavailable', message } });
    }
    queue.length = 0;
  };

  const connect = () => {
    const ws = open(url);
    socket = ws;
    ws.addEventListener('open', () => {
      for (const frame of queue.splice(0)) ws.send(frame);
    });
    ws.addEventListener('message', (event) => {
      let message: RpcServerMessage;
      try {
        message = JSON.parse(String(event.data)) as RpcServerMessage;
      } catch {
        return; // a host never sends malformed frames; ignore rather than crash the UI
      }
      if ('method' in message) {
        if (message.method === RUN_EVENT_TOPIC) for (const listener of [...listeners]) listener(message.params);
        return;
      }
      if (message.id === null) return;
      const call = pending.get(message.id);
      if (!call) return;
      pending.delete(message.id);
      if ('error' in message) call.resolve({ ok: false, error: message.error.data });
      else call.resolve({ ok: true, value: message.result });
    });
    ws.addEventListener('close', () => {
      if (socket === ws) socket = null;
      failPending('lost the connection to the Strata host (is `npm run serve` still running?)');
      if (!closedByUser) setTimeout(() => !closedByUser && !socket && connect(), RECONNECT_DELAY_MS);
    });
    ws.addEventListener('error', () => {
      /* 'close' follows and handles it */
    });
  };

  return {
    call(method, args) {
      if (closedByUser) return Promise.resolve({ ok: false, error: { code: 'unavailable', message: 'host connection closed' } });
      if (!socket) connect();
      const id = nextId++;
      const frame = JSON.stringify({ jsonrpc: '2.0', id, method, params: args });
      return new Promise<CallEnvelope>((resolve) => {
        pending.set(id, { resolve });
        if (socket && socket.readyState === WS_OPEN) socket.send(frame);
        else queue.push(frame);
      });
    },
    onRunEvent(listener) {
      listeners.add(listener);
      if (!socket && !closedByUser) connect(); // pushes need a live socket even before the first call
      return () => listeners.delete(listener);
    },
    close() {
      closedByUser = true;
      failPending('host connection closed');
      socket?.close();
    },
  };
}

/** ws://host/rpc?token=... for a page served at `pageUrl` (http://127.0.0.1:PORT/?token=...). */
export function rpcUrlForPage(pageUrl: string, token: string): string {
  const page = new URL(pageUrl);
  const protocol = page.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${protocol}//${page.host}/rpc?token=${encodeURIComponent(token)}`;
}

const TOKEN_STORAGE_KEY = 'strata.token';

declare global {
  interface Window {
    strata?: StrataBridge;
  }
}

let cachedHost: StrataHost | null = null;

/** The host for this window: Electron's bridge if present, else browser mode's WebSocket. */
export function getHost(): StrataHost {
  if (cachedHost) return cachedHost;
  const bridge = typeof window !== 'undefined' ? window.strata : undefined;
  if (bridge) {
    if (bridge.contractVersion !== CONTRACT_VERSION)
      throw new Error(`preload speaks contract ${bridge.contractVersion}, renderer expects ${CONTRACT_VERSION}`);
    cachedHost = createHost(bridge);
    return cachedHost;
  }
  if (typeof window === 'undefined' || typeof WebSocket === 'undefined')
    throw new Error('getHost(): no Electron bridge and no browser WebSocket in this environment');
  const fromUrl = new URL(window.location.href).searchParams.get('token');
  if (fromUrl) window.sessionStorage.setItem(TOKEN_STORAGE_KEY, fromUrl);
  const token = fromUrl ?? window.sessionStorage.getItem(TOKEN_STORAGE_KEY);
  if (!token) throw new Error('browser mode: open the URL printed by `npm run serve` (it carries ?token=...)');
  cachedHost = createHost(createWebSocketTransport(rpcUrlForPage(window.location.href, token), (url) => new WebSocket(url)));
  return cachedHost;
}
