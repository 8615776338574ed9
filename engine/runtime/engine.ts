// The typed TypeScript API over the native engine's Node binding (engine/native/src/node/binding.cpp):
// loadEngine() finds and loads the addon; each job (train, eval, generate, profile, init, grads, logits) runs
// on its own native thread, streams JSON events to `onEvent` and returns a handle with cancel() and
// a promise of its result. Requests are plain JSON the native C API reads (snake_case fields).
// Before the addon (and with it the OpenMP runtime, which reads its settings once, at load) is
// loaded, OMP_WAIT_POLICY defaults to PASSIVE (openmpDefaults), unless the user set it.
//
// Not here: preparing data (data/prepare.ts), run folders (runs.ts), the CLI (engine/cli/commands).
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { StrataDocument } from '../spec/document.js';
import { type EngineEvent, parseEventLine } from './events.js';

export type JobKind = 'train' | 'eval' | 'generate' | 'profile' | 'init' | 'grads' | 'logits';

/** What the compiled addon exports (see binding.cpp). */
export interface NativeAddon {
  /** Engine version and build facts, as JSON. */
  info(): string;
  /** Starts a job on a native thread; `onEvent` gets one JSON line per event on the JS thread. */
  startJob(kind: JobKind, requestJson: string, onEvent: (line: string) => void): { cancel(): void; done: Promise<string> };
}

export interface EngineInfo {
  version: string;
  backends: string[];
  [field: string]: unknown;
}

export interface TrainRequest {
  document: StrataDocument;
  run_dir: string;
  train_data: string;
  heldout_data: string;
  /** Overrides pipeline.training.steps. */
  steps?: number;
  /** Continue from the run folder's newest valid checkpoint (or `checkpoint`). */
  resume?: boolean;
  /** With resume: this checkpoint folder instead of the newest valid one. */
  checkpoint?: string;
  /** A new run from these weights (checkpoint folder or .safetensors) instead of the seed's initialization. */
  init_from?: string;
}
export interface EvalRequest {
  document: StrataDocument;
  run_dir: string;
  data: string;
  /** Weights to evaluate (a checkpoint folder or .safetensors); fresh initialization when absent. */
  checkpoint?: string;
  batches?: number;
}
export interface GenerateRequest {
  document: StrataDocument;
  checkpoint?: string;
  prompt_ids: number[];
  max_new_tokens: number;
  temperature: number;
  top_p: number;
  seed: number;
  /** Stop at this id (the tokenizer's <eos>). */
  stop_id?: number;
  /** MTP self-speculative decoding: the MTP heads draft, the main model verifies (needs model.mtp). */
  speculative?: boolean;
  /** Thinking budget: after this many tokens inside a think_open_id span, think_close_id is forced. */
  think_open_id?: number;
  think_close_id?: number;
  think_budget?: number;
}
export interface ProfileRequest {
  document: StrataDocument;
  /** When given, the engine writes its events to RUN/events.jsonl itself. */
  run_dir?: string;
  /** Weights to profile with (a checkpoint folder or .safetensors); fresh initialization when absent. */
  checkpoint?: string;
  modes: string[];
  contexts: number[];
  batch: number;
}
export interface InitRequest {
  document: StrataDocument;
  /** safetensors file that receives the freshly initialized weights (HF nemotron_h names). */
  out: string;
  /** Initialization seed (default: the document's pipeline.training.seed). */
  seed?: number;
}
export interface GradsRequest {
  document: StrataDocument;
  weights: string;
  data: string;
  /** safetensors file that receives the gradient of every parameter (same names as the weights). */
  out: string;
}

export interface LogitsRequest {
  document: StrataDocument;
  weights: string;
  /** .stok/.txt file; its first batch (pipeline.training batch_size x seq_len) is run. */
  data: string;
  /** safetensors file that receives one F32 tensor "logits" (batch, seq_len, vocab): the main head's raw logits. */
  out: string;
}
export interface LogitsResult {
  loss: number;
  tokens: number;
  batch: number;
  seq_len: number;
  vocab: number;
  out: string;
  [field: string]: unknown;
}

export interface TrainResult {
  steps_done: number;
  final_loss?: number;
  cancelled?: boolean;
  [field: string]: unknown;
}
export interface EvalResult {
  loss: number;
  ppl: number;
  bpb: number | null;
  accuracy: number | null;
  nll_by_position?: number[];
  [field: string]: unknown;
}
export interface GenerateResult {
  /** The generated ids only (the prompt is not repeated); ends with stop_id when it was reached. */
  ids: number[];
  tokens_per_s?: number;
  prefill_ms?: number;
  decode_ms?: number;
  /** Speculative decoding only: drafts proposed by the MTP heads, drafts the main model accepted. */
  drafted?: number;
  accepted?: number;
  acceptance_rate?: number;
  /** The thinking budget ran out and the engine appended the closing marker. */
  forced_think_close?: boolean;
  [field: string]: unknown;
}
export interface LossResult {
  loss: number;
  [field: string]: unknown;
}

export interface EngineJob<Result> {
  /** Asks the job to stop at its next safe point; the result promise then settles. */
  cancel(): void;
  result: Promise<Result>;
}

export type EventHandler = (event: EngineEvent) => void;

/** The addon file: STRATA_ENGINE_ADDON, else build/native/Release/strata_node.node in the checkout. */
export function addonPath(): string {
  if (process.env.STRATA_ENGINE_ADDON) return resolve(process.env.STRATA_ENGINE_ADDON);
  const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
  return join(repoRoot, 'build', 'native', 'Release', 'strata_node.node');
}

export class EngineNotBuiltError extends Error {
  constructor(path: string, cause?: unknown) {
    super(
      existsSync(path)
        ? `${path}: the native engine could not be loaded (${cause instanceof Error ? cause.message : String(cause)}); rebuild it with \`npm run build:engine\``
        : `${path}: the native engine is not built; run \`npm run build:engine\` (needs CMake and a C++20 compiler)`,
    );
    this.name = 'EngineNotBuiltError';
  }
}

export class Engine {
  constructor(private readonly addon: NativeAddon) {}

  info(): EngineInfo {
    return JSON.parse(this.addon.info()) as EngineInfo;
  }

  train(request: TrainRequest, onEvent: EventHandler): EngineJob<TrainResult> {
    return this.start('train', request, onEvent);
  }
  eval(request: EvalRequest, onEvent: EventHandler): EngineJob<EvalResult> {
    return this.start('eval', request, onEvent);
  }
  generate(request: GenerateRequest, onEvent: EventHandler): EngineJob<GenerateResult> {
    return this.start('generate', request, onEvent);
  }
  profile(request: ProfileRequest, onEvent: EventHandler): EngineJob<Record<string, unknown>> {
    return this.start('profile', request, onEvent);
  }
  init(request: InitRequest, onEvent: EventHandler): EngineJob<Record<string, unknown>> {
    return this.start('init', request, onEvent);
  }
  grads(request: GradsRequest, onEvent: EventHandler): EngineJob<LossResult> {
    return this.start('grads', request, onEvent);
  }

  logits(request: LogitsRequest, onEvent: EventHandler): EngineJob<LogitsResult> {
    return this.start('logits', request, onEvent);
  }

  private start<Result>(kind: JobKind, request: object, onEvent: EventHandler): EngineJob<Result> {
    const native = this.addon.startJob(kind, JSON.stringify(request), (line) => {
      const event = parseEventLine(line, `engine ${kind} event`);
      if (event) onEvent(event);
    });
    return {
      cancel: () => native.cancel(),
      result: native.done.then((json) => (json ? JSON.parse(json) : {}) as Result),
    };
  }
}

let loaded: Engine | null = null;

/**
 * OpenMP settings the engine wants unless the user chose otherwise: OMP_WAIT_POLICY=PASSIVE (idle
 * worker threads sleep instead of spinning, which on a machine busy with other work collapses
 * throughput; docs/cpu-benchmarks.md). The thread count is left to OMP_NUM_THREADS, the document's
 * pipeline.training.threads, or the OpenMP default (the CPUs this process may use). Must run before
 * the addon loads: the OpenMP runtime reads the environment once, when it is loaded. Only the main
 * thread's process.env reaches native code: an addon first loaded in a worker thread gets the
 * environment the process started with (set OMP_WAIT_POLICY there, or load the engine on the main thread).
 */
export function openmpDefaults(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  if (!env.OMP_WAIT_POLICY) env.OMP_WAIT_POLICY = 'PASSIVE';
  return env;
}

/** Loads the addon once per process; throws EngineNotBuiltError with the fix when it is missing. */
export function loadEngine(): Engine {
  if (loaded) return loaded;
  const path = addonPath();
  if (!existsSync(path)) throw new EngineNotBuiltError(path);
  let addon: NativeAddon;
  openmpDefaults();
  try {
    addon = createRequire(import.meta.url)(path) as NativeAddon;
  } catch (error) {
    throw new EngineNotBuiltError(path, error);
  }
  loaded = new Engine(addon);
  return loaded;
}
