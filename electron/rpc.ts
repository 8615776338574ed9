// The browser-mode wire protocol: JSON-RPC 2.0 over one WebSocket. A request's `method` is a
// contract MethodName ("projects.open") and `params` is the argument array; the host answers with
// `result` or with `error.data` = HostErrorData; run events arrive as notifications on
// RUN_EVENT_TOPIC. Shared by the renderer's client (electron/client.ts) and the Node server
// (electron/server.ts). Pure data helpers: no Node, Electron or DOM imports, no sockets.
import { type HostErrorData, type MethodName, type RunEventMessage, RUN_EVENT_TOPIC, isMethodName } from './contract.js';

export interface RpcRequest {
  jsonrpc: '2.0';
  id: number;
  method: MethodName;
  params: unknown[];
}

export interface RpcSuccess {
  jsonrpc: '2.0';
  id: number;
  result: unknown;
}

export interface RpcFailure {
  jsonrpc: '2.0';
  id: number | null;
  error: { code: number; message: string; data: HostErrorData };
}

export interface RpcRunEventNotification {
  jsonrpc: '2.0';
  method: typeof RUN_EVENT_TOPIC;
  params: RunEventMessage;
}

export type RpcServerMessage = RpcSuccess | RpcFailure | RpcRunEventNotification;

/** JSON-RPC numeric codes: the standard ones for protocol faults, one server code for host errors. */
export const RPC_PARSE_ERROR = -32700;
export const RPC_INVALID_REQUEST = -32600;
export const RPC_METHOD_NOT_FOUND = -32601;
export const RPC_HOST_ERROR = -32000;

/** Parses a client frame; returns the request or the failure to send back. */
export function parseRpcRequest(text: string): { ok: true; request: RpcRequest } | { ok: false; failure: RpcFailure } {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    const message = `malformed JSON-RPC frame: ${(error as Error).message}`;
    return { ok: false, failure: rpcFailure(null, RPC_PARSE_ERROR, { code: 'bad_request', message }) };
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    return { ok: false, failure: rpcFailure(null, RPC_INVALID_REQUEST, { code: 'bad_request', message: 'JSON-RPC frame must be an object' }) };
  }
  const frame = raw as Record<string, unknown>;
  const id = typeof frame.id === 'number' && Number.isInteger(frame.id) ? frame.id : null;
  if (frame.jsonrpc !== '2.0' || id === null) {
    return { ok: false, failure: rpcFailure(id, RPC_INVALID_REQUEST, { code: 'bad_request', message: 'JSON-RPC frame needs jsonrpc "2.0" and an integer id' }) };
  }
  if (!isMethodName(frame.method)) {
    const message = `unknown method ${JSON.stringify(frame.method)}`;
    return { ok: false, failure: rpcFailure(id, RPC_METHOD_NOT_FOUND, { code: 'bad_request', message }) };
  }
  const params = frame.params === undefined ? [] : frame.params;
  if (!Array.isArray(params)) {
    return { ok: false, failure: rpcFailure(id, RPC_INVALID_REQUEST, { code: 'bad_request', message: `${frame.method}: params must be an array` }) };
  }
  return { ok: true, request: { jsonrpc: '2.0', id, method: frame.method, params } };
}

export function rpcFailure(id: number | null, code: number, data: HostErrorData): RpcFailure {
  return { jsonrpc: '2.0', id, error: { code, message: data.message, data } };
}

export function rpcSuccess(id: number, result: unknown): RpcSuccess {
  return { jsonrpc: '2.0', id, result: result === undefined ? null : result };
}

export function runEventNotification(params: RunEventMessage): RpcRunEventNotification {
  return { jsonrpc: '2.0', method: RUN_EVENT_TOPIC, params };
}
