// The host contract: the typed services the renderer uses to reach the machine it runs on
// (projects on disk, engine runs, exports, host facts). One interface per service, VS Code style.
// The same interfaces are implemented by the Node host services (electron/host/*), exposed by the
// Electron preload + ipcMain handlers and by the browser-mode WebSocket server, and consumed by the
// renderer through `getHost()` in electron/client.ts.
//
// Rules: every method returns a Promise; every argument and result is plain serializable data (no
// functions, classes, Dates or Maps in data); failures reject with a `StrataHostError` carrying a
// `HostErrorCode`. The only callback is `RunService.onEvent`, a push subscription.
//
// This file is types and the method list only: no Node, Electron or DOM imports, no behaviour
// beyond the error class and the method-name helpers the transports share.
import type { StrataDocument } from '../engine/spec/document.js';
import type { DocIssue } from '../engine/spec/validate.js';

export const CONTRACT_VERSION = 1;

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

export type HostErrorCode =
  | 'bad_request' // arguments do not match the contract
  | 'not_found' // a file, template or run does not exist
  | 'corrupt_file' // a project/run file is not valid JSON (message names file, line, column)
  | 'invalid_document' // the JSON is a document that fails validation (issues carries every issue)
  | 'io' // the file system refused (permissions, disk full...)
  | 'engine' // the engine process could not start or failed
  | 'conflict' // e.g. resuming a run that is still running
  | 'unavailable' // the host cannot do this (e.g. no native dialogs in browser mode)
  | 'internal';

/** The serializable form of a host failure, as it crosses IPC / WebSocket. */
export interface HostErrorData {
  code: HostErrorCode;
  /** One human sentence naming the file and, for documents, the layer/block/field. */
  message: string;
  file?: string;
  issues?: DocIssue[];
}

/** What every contract method rejects with (on both sides of the transport). */
export class StrataHostError extends Error {
  readonly code: HostErrorCode;
  readonly file?: string;
  readonly issues?: DocIssue[];
  constructor(data: HostErrorData) {
    super(data.message);
    this.name = 'StrataHostError';
    this.code = data.code;
    if (data.file !== undefined) this.file = data.file;
    if (data.issues !== undefined) this.issues = data.issues;
  }
  toData(): HostErrorData {
    const out: HostErrorData = { code: this.code, message: this.message };
    if (this.file !== undefined) out.file = this.file;
    if (this.issues !== undefined) out.issues = this.issues;
    return out;
  }
}

// ---------------------------------------------------------------------------------------------
// HostInfo
// ---------------------------------------------------------------------------------------------

export interface GpuInfo {
  /** True when a CUDA device is visible and the engine was built with CUDA. */
  available: boolean;
  /** e.g. "NVIDIA H200" when known. */
  name?: string;
  /** Why it is (un)available, for the UI. */
  detail: string;
}

export interface HostInfo {
  mode: 'electron' | 'browser';
  /** App version (package.json). */
  version: string;
  contractVersion: number;
  platform: string;
  arch: string;
  cpuCores: number;
  gpu: GpuInfo;
  /** Whether the `strata` CLI that runs jobs is present, and the native engine addon is built. */
  engine: { cli: boolean; native: boolean; detail: string };
  /** Folder that holds run folders. */
  runsDir: string;
  /** Folder a relative project path is resolved against. */
  workspaceDir: string;
  /** Native open/save dialogs exist (Electron) or the UI must ask for a path (browser). */
  nativeDialogs: boolean;
}

export interface HostInfoService {
  info(): Promise<HostInfo>;
}

// ---------------------------------------------------------------------------------------------
// Projects
// ---------------------------------------------------------------------------------------------

export interface OpenedProject {
  /** Absolute path of the file. */
  path: string;
  doc: StrataDocument;
  /** Non-fatal validation issues. */
  warnings: DocIssue[];
  /** Set when the file was an older document version and was migrated in memory. */
  migratedFrom?: number;
}

export interface SavedProject {
  path: string;
  bytes: number;
  /** ISO time of the write. */
  savedAt: string;
}

export interface RecentProject {
  path: string;
  /** model.name at the last open/save. */
  name: string;
  /** ISO time. */
  openedAt: string;
  exists: boolean;
}

export interface TemplateSummary {
  /** File stem in templates/, e.g. "tiny-hybrid"; what loadTemplate takes. */
  name: string;
  title: string;
  description: string;
  /** Number of layers of the main stack (flattened). */
  layers: number;
}

export interface AutosaveInfo {
  doc: StrataDocument;
  /** ISO time of the autosave. */
  savedAt: string;
  /** The project path the autosaved document belonged to, if any. */
  projectPath?: string;
}

export interface ChoosePathRequest {
  /** open/save: a design file; folder: an existing folder (e.g. a run folder to import). */
  mode: 'open' | 'save' | 'folder';
  defaultPath?: string;
  title?: string;
}

export interface ProjectService {
  /** Reads, migrates and validates a project file. corrupt_file / invalid_document on bad files. */
  open(path: string): Promise<OpenedProject>;
  /** Validates then writes atomically (temp file + rename). Relative paths resolve in workspaceDir. */
  save(path: string, doc: StrataDocument): Promise<SavedProject>;
  /** Keeps the latest unsaved state in the host's data folder (atomic). */
  autosave(doc: StrataDocument, projectPath?: string): Promise<SavedProject>;
  /** The last autosave, or null. */
  restoreAutosave(): Promise<AutosaveInfo | null>;
  /** Most recent first. */
  recent(): Promise<RecentProject[]>;
  listTemplates(): Promise<TemplateSummary[]>;
  loadTemplate(name: string): Promise<StrataDocument>;
  /** Native file dialog; rejects with `unavailable` in browser mode (HostInfo.nativeDialogs false). */
  choosePath(request: ChoosePathRequest): Promise<string | null>;
}

// ---------------------------------------------------------------------------------------------
// Runs and their events (DESIGN.md "Runs and events")
// ---------------------------------------------------------------------------------------------

export type RunKind = 'train' | 'eval' | 'profile';
export type RunDevice = 'cpu' | 'cuda';
export const RUN_EVENT_TYPES = ['start', 'step', 'eval', 'profile', 'precision', 'checkpoint', 'log', 'done', 'error'] as const;
export type RunEventType = (typeof RUN_EVENT_TYPES)[number];

/** Every event: a type and seconds since the run started; engines may add fields. */
export interface RunEventBase {
  type: RunEventType;
  t: number;
  [field: string]: unknown;
}
export interface StartEvent extends RunEventBase {
  type: 'start';
  kind?: RunKind;
  steps?: number;
}
export interface StepEvent extends RunEventBase {
  type: 'step';
  step: number;
  loss: number;
  lr: number;
  tokens_per_s: number;
  grad_norm?: number;
}
export interface EvalEvent extends RunEventBase {
  type: 'eval';
  step?: number;
  loss?: number;
  ppl?: number;
  bpb?: number;
}
export interface ProfileEvent extends RunEventBase {
  type: 'profile';
  layer: number;
  kind: string;
  op: string;
  fwd_ms?: number;
  bwd_ms?: number;
  flops?: number;
  bytes?: number;
}
export interface PrecisionEvent extends RunEventBase {
  type: 'precision';
}
export interface CheckpointEvent extends RunEventBase {
  type: 'checkpoint';
  step?: number;
  path?: string;
}
export interface LogEvent extends RunEventBase {
  type: 'log';
  message?: string;
}
export interface DoneEvent extends RunEventBase {
  type: 'done';
  /** 'stopped' when the run was stopped by the user before finishing. */
  reason?: string;
}
export interface ErrorEvent extends RunEventBase {
  type: 'error';
  message: string;
}
export type RunEvent =
  | StartEvent
  | StepEvent
  | EvalEvent
  | ProfileEvent
  | PrecisionEvent
  | CheckpointEvent
  | LogEvent
  | DoneEvent
  | ErrorEvent;

/**
 * running: its process is alive in this host; done / error / stopped: ended (terminal event);
 * interrupted: no terminal event and no live process (crashed host, killed machine).
 */
export type RunStatus = 'running' | 'done' | 'error' | 'stopped' | 'interrupted';

export interface StartRunRequest {
  doc: StrataDocument;
  kind: RunKind;
  device: RunDevice;
  /** Overrides pipeline.training.steps for this run. */
  steps?: number;
  /** Display name; defaults to model.name. */
  name?: string;
}

export interface RunHandle {
  runId: string;
  /** Absolute run folder. */
  dir: string;
}

/** Everything the runs list shows, derived from the run folder alone. */
export interface RunSummary {
  runId: string;
  dir: string;
  name: string;
  kind: RunKind;
  device: RunDevice;
  status: RunStatus;
  /** model.name of the document as run. */
  model: string;
  /** ISO time the run was created. */
  createdAt: string;
  /** Last step reached (0 before the first step event). */
  step: number;
  /** Planned steps, when known. */
  totalSteps: number | null;
  lastLoss: number | null;
  lastEvalLoss: number | null;
  tokensPerS: number | null;
  /** Seconds since the run started at its last event. */
  elapsedS: number;
  /** Message of the error event, when status is error. */
  error?: string;
}

export interface RunEventsPage {
  /**
   * Events of lines [fromLine, nextLine), in file order (0-based line numbers of events.jsonl;
   * malformed lines are skipped). A page holds at most 5,000 lines: read on from nextLine until a
   * page comes back empty.
   */
  events: RunEvent[];
  nextLine: number;
  status: RunStatus;
}

/** Pushed for each new line of a live run's events.jsonl; `line` matches RunEventsPage numbering. */
export interface RunEventMessage {
  runId: string;
  line: number;
  event: RunEvent;
}

export interface RunService {
  start(request: StartRunRequest): Promise<RunHandle>;
  /** Asks the engine to stop (clean cancel, then kill after a grace period). Resolves once it exited. */
  stop(runId: string): Promise<void>;
  /** Continues a stopped/interrupted train run from its last checkpoint, in the same folder. */
  resume(runId: string): Promise<RunHandle>;
  /** All runs in runsDir, newest first. */
  list(): Promise<RunSummary[]>;
  /** Events from a 0-based line; poll with nextLine, or combine with onEvent (dedupe by line). */
  events(runId: string, fromLine: number): Promise<RunEventsPage>;
  /** The document the run was started with. */
  document(runId: string): Promise<StrataDocument>;
  /**
   * Adds a run folder from anywhere (e.g. one the native `strata-engine` CLI wrote on a GPU box:
   * events.jsonl, document.json, checkpoints/, perhaps no run.json) to the runs list, by linking it
   * into runsDir (nothing is copied; a relative path resolves in workspaceDir). Adding the same
   * folder again returns its existing handle. not_found / bad_request when it is not a run folder.
   */
  importFolder(path: string): Promise<RunHandle>;
  /** Push subscription to events of every live run; returns the unsubscribe function. */
  onEvent(listener: (message: RunEventMessage) => void): () => void;
}

// ---------------------------------------------------------------------------------------------
// Exports
// ---------------------------------------------------------------------------------------------

export type ExportSource = { runId: string } | { doc: StrataDocument };

/** Cluster and layout of the Megatron-LM bundle (`strata export-megatron` flags); absent = CLI default. */
export interface MegatronExportOptions {
  nodes?: number;
  gpusPerNode?: number;
  tensorParallel?: number;
  pipelineParallel?: number;
  expertParallel?: number;
  contextParallel?: number;
  seqLength?: number;
  microBatchSize?: number;
  globalBatchSize?: number;
  /** GPU (hardware id: h100, h200, b200) the planner lays the default layout out for (`--gpu`). */
  gpu?: string;
  /** Replace a non-empty output folder (`--force`); otherwise such a folder is refused. */
  replace?: boolean;
}

/** Options of the Hugging Face export. */
export interface HfExportOptions {
  /** Write into a folder that already has files (`--force`). */
  replace?: boolean;
}

export interface ExportResult {
  outDir: string;
  /** Files written, relative to outDir, sorted. */
  files: string[];
  /** What the exporter printed (for the UI's details pane). */
  log: string;
}

export interface ExportService {
  /** HF `nemotron_h` folder (config, safetensors, tokenizer); from a run's weights or a fresh init. */
  exportHf(source: ExportSource, outDir: string, options?: HfExportOptions): Promise<ExportResult>;
  /** Megatron-LM launch bundle (`--hybrid-layer-pattern ...`). */
  exportMegatron(doc: StrataDocument, outDir: string, options: MegatronExportOptions): Promise<ExportResult>;
}

// ---------------------------------------------------------------------------------------------
// The host as a whole and the transports' method table
// ---------------------------------------------------------------------------------------------

export interface StrataHost {
  host: HostInfoService;
  projects: ProjectService;
  runs: RunService;
  exports: ExportService;
}

/**
 * Every request/response method, by service. Subscriptions (`runs.onEvent`) are not in this list:
 * transports carry them as the `runs.event` push topic.
 */
export const SERVICE_METHODS = {
  host: ['info'],
  projects: ['open', 'save', 'autosave', 'restoreAutosave', 'recent', 'listTemplates', 'loadTemplate', 'choosePath'],
  runs: ['start', 'stop', 'resume', 'list', 'events', 'document', 'importFolder'],
  exports: ['exportHf', 'exportMegatron'],
} as const satisfies { [S in keyof StrataHost]: ReadonlyArray<keyof StrataHost[S]> };

export type ServiceName = keyof typeof SERVICE_METHODS;
/** "service.method", e.g. "projects.open": the name on the wire (IPC channel suffix, JSON-RPC method). */
export type MethodName = {
  [S in ServiceName]: `${S}.${(typeof SERVICE_METHODS)[S][number]}`;
}[ServiceName];

/** Push topic carrying RunEventMessage. */
export const RUN_EVENT_TOPIC = 'runs.event';
/** Electron IPC channel prefix: `strata:projects.open`, and `strata:runs.event` for pushes. */
export const IPC_PREFIX = 'strata:';

export const ALL_METHODS: readonly MethodName[] = (Object.keys(SERVICE_METHODS) as ServiceName[]).flatMap((service) =>
  SERVICE_METHODS[service].map((method) => `${service}.${method}` as MethodName),
);

export function isMethodName(name: unknown): name is MethodName {
  return typeof name === 'string' && (ALL_METHODS as readonly string[]).includes(name);
}

/**
 * What the Electron preload exposes as `window.strata`: a call gate restricted to contract methods
 * plus the run-event subscription. Renderer code does not use it directly; it calls getHost().
 * Results come back as envelopes so error codes survive contextBridge.
 */
export interface StrataBridge {
  contractVersion: number;
  call(method: MethodName, args: unknown[]): Promise<CallEnvelope>;
  onRunEvent(listener: (message: RunEventMessage) => void): () => void;
}

export type CallEnvelope = { ok: true; value: unknown } | { ok: false; error: HostErrorData };
