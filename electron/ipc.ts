// Electron IPC wiring of the host contract: one ipcMain.handle per contract method (channel
// `strata:<service>.<method>`, electron/contract.ts) answering with a CallEnvelope from
// host/index.ts dispatch, refusing calls from any frame that is not the app, and run events pushed
// to every window on `strata:runs.event`. Written against the few Electron members it uses, so it
// is tested without the Electron binary. Not here: creating windows (main.ts) or the preload.
import { ALL_METHODS, type CallEnvelope, IPC_PREFIX, RUN_EVENT_TOPIC, type RunEventMessage, type StrataHost } from './contract.js';
import { dispatch } from './host/index.js';

/** The part of an IpcMainInvokeEvent used: which frame sent the call. */
export interface InvokeEventLike {
  senderFrame: { url: string } | null;
}

/** The part of Electron's ipcMain used. */
export interface IpcMainLike {
  handle(channel: string, listener: (event: InvokeEventLike, ...args: unknown[]) => Promise<CallEnvelope>): void;
  removeHandler(channel: string): void;
}

/** Registers every contract method; returns a function that removes them again. */
export function registerIpcHandlers(ipcMain: IpcMainLike, host: StrataHost, isTrustedFrame: (url: string) => boolean): () => void {
  const channels = ALL_METHODS.map((method) => {
    const channel = `${IPC_PREFIX}${method}`;
    ipcMain.handle(channel, async (event, ...args) => {
      const url = event.senderFrame?.url ?? '';
      if (!isTrustedFrame(url))
        return { ok: false, error: { code: 'bad_request', message: `${method}: refused a call from an untrusted frame (${url || 'unknown'})` } };
      return dispatch(host, method, args);
    });
    return channel;
  });
  return () => channels.forEach((channel) => ipcMain.removeHandler(channel));
}

/** The part of a WebContents used to push events. */
export interface EventTarget {
  isDestroyed(): boolean;
  send(channel: string, message: RunEventMessage): void;
}

/** Sends every run event to the windows `targets()` returns; returns the unsubscribe function. */
export function forwardRunEvents(host: StrataHost, targets: () => EventTarget[]): () => void {
  const channel = `${IPC_PREFIX}${RUN_EVENT_TOPIC}`;
  return host.runs.onEvent((message) => {
    for (const target of targets()) if (!target.isDestroyed()) target.send(channel, message);
  });
}
