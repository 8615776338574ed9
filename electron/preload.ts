// The Electron preload (sandboxed, context-isolated): exposes exactly the host contract to the
// page as `window.strata` (a StrataBridge, electron/contract.ts) — a call gate that accepts only
// contract method names and forwards them to the main process over IPC, plus the run-event
// subscription. No Node or Electron object reaches the page. Renderer code uses getHost()
// (electron/client.ts), never this directly. Not here: the handlers (ipc.ts).
import { contextBridge, ipcRenderer, type IpcRendererEvent } from 'electron';
import {
  type CallEnvelope,
  CONTRACT_VERSION,
  IPC_PREFIX,
  RUN_EVENT_TOPIC,
  type RunEventMessage,
  type StrataBridge,
  isMethodName,
} from './contract.js';

const bridge: StrataBridge = {
  contractVersion: CONTRACT_VERSION,
  call(method, args) {
    if (!isMethodName(method))
      return Promise.resolve({ ok: false, error: { code: 'bad_request', message: `unknown method ${JSON.stringify(method)}` } });
    if (!Array.isArray(args))
      return Promise.resolve({ ok: false, error: { code: 'bad_request', message: `${method}: arguments must be an array` } });
    return ipcRenderer.invoke(`${IPC_PREFIX}${method}`, ...args) as Promise<CallEnvelope>;
  },
  onRunEvent(listener) {
    const channel = `${IPC_PREFIX}${RUN_EVENT_TOPIC}`;
    const handler = (_event: IpcRendererEvent, message: RunEventMessage) => listener(message);
    ipcRenderer.on(channel, handler);
    return () => {
      ipcRenderer.removeListener(channel, handler);
    };
  },
};

contextBridge.exposeInMainWorld('strata', bridge);
