// The runs slice: the runs list (summaries from the host, newest first), event data of the runs
// the user looks at (live pushes merged with paged reads), the active run, the runs picked for
// comparison, and the actions that start, stop and resume runs through the host's RunService.
// Not here: event folding (run-data.ts) or any UI.
import { create } from 'zustand';
import type { RunDevice, RunKind, RunSummary } from '../../electron/contract.js';
import type { StrataDocument } from '../../engine/spec/document.js';
import { describeHostError, host } from '../host/host.js';
import { useDocumentStore, useViewStore } from '../state/stores.js';
import { type RunData, applyEvents, emptyRunData } from './run-data.js';

export interface RunsState {
  summaries: RunSummary[];
  data: Record<string, RunData>;
  /** Documents runs were started with (for compare), fetched on demand. */
  documents: Record<string, StrataDocument>;
  activeId: string | null;
  compareIds: string[];
  device: RunDevice;
  filter: string;
  setDevice: (device: RunDevice) => void;
  setFilter: (filter: string) => void;
  setActive: (runId: string | null) => void;
  toggleCompare: (runId: string) => void;
}

export const useRunsStore = create<RunsState>()((set) => ({
  summaries: [],
  data: {},
  documents: {},
  activeId: null,
  compareIds: [],
  device: 'cpu',
  filter: '',
  setDevice: (device) => set({ device }),
  setFilter: (filter) => set({ filter }),
  setActive: (activeId) => set({ activeId }),
  toggleCompare: (runId) =>
    set((s) => ({ compareIds: s.compareIds.includes(runId) ? s.compareIds.filter((x) => x !== runId) : [...s.compareIds, runId] })),
}));

const failed = (what: string, error: unknown) => useViewStore.getState().setStatus(`${what}: ${describeHostError(error).message}`, 'error');

/** Applies events of a run (from a page or a push) to its data, creating it when needed. */
export function ingestEvents(runId: string, fromLine: number, events: Parameters<typeof applyEvents>[2]): void {
  useRunsStore.setState((s) => {
    const current = s.data[runId] ?? emptyRunData(runId);
    const next = applyEvents(current, fromLine, events);
    return next === current && s.data[runId] ? s : { data: { ...s.data, [runId]: next } };
  });
}

/** Reads a run's events from the folder until the end (paged), so its charts are complete. */
export async function loadRun(runId: string): Promise<void> {
  try {
    for (;;) {
      const from = useRunsStore.getState().data[runId]?.nextLine ?? 0;
      const page = await host().runs.events(runId, from);
      ingestEvents(runId, from, page.events);
      const data = useRunsStore.getState().data[runId];
      if (data && data.status !== page.status && page.status !== 'running') {
        useRunsStore.setState((s) => ({ data: { ...s.data, [runId]: { ...data, status: page.status } } }));
      }
      if (page.events.length === 0 || page.nextLine <= from) break;
    }
  } catch (error) {
    failed(`Could not read run ${runId}`, error);
  }
}

export async function refreshRuns(): Promise<void> {
  try {
    useRunsStore.setState({ summaries: await host().runs.list() });
  } catch (error) {
    failed('Could not list runs', error);
  }
}

/** Opens a run in the runs panel (loads its events). */
export async function openRun(runId: string): Promise<void> {
  useRunsStore.getState().setActive(runId);
  await loadRun(runId);
}

/** Starts a run of the current document; returns its id. */
export async function startRun(kind: RunKind): Promise<string | null> {
  const { doc } = useDocumentStore.getState();
  const { device } = useRunsStore.getState();
  try {
    const handle = await host().runs.start({ doc, kind, device });
    const created: RunSummary = {
      runId: handle.runId,
      dir: handle.dir,
      name: doc.model.name,
      kind,
      device,
      status: 'running',
      model: doc.model.name,
      createdAt: new Date().toISOString(),
      step: 0,
      totalSteps: kind === 'train' ? doc.pipeline.training.steps : null,
      lastLoss: null,
      lastEvalLoss: null,
      tokensPerS: null,
      elapsedS: 0,
    };
    useRunsStore.setState((s) => ({
      summaries: [created, ...s.summaries.filter((r) => r.runId !== handle.runId)],
      documents: { ...s.documents, [handle.runId]: doc },
      activeId: handle.runId,
      data: s.data[handle.runId] ? s.data : { ...s.data, [handle.runId]: { ...emptyRunData(handle.runId), totalSteps: created.totalSteps } },
    }));
    useViewStore.getState().setBottom('runs');
    void loadRun(handle.runId);
    return handle.runId;
  } catch (error) {
    failed(`Could not start ${kind}`, error);
    return null;
  }
}

export async function stopRun(runId: string): Promise<void> {
  try {
    await host().runs.stop(runId);
    await loadRun(runId);
    await refreshRuns();
  } catch (error) {
    failed(`Could not stop run ${runId}`, error);
  }
}

export async function resumeRun(runId: string): Promise<void> {
  try {
    await host().runs.resume(runId);
    useRunsStore.setState((s) => {
      const data = s.data[runId];
      return {
        activeId: runId,
        summaries: s.summaries.map((r) => (r.runId === runId ? { ...r, status: 'running' } : r)),
        data: data ? { ...s.data, [runId]: { ...data, status: 'running' } } : s.data,
      };
    });
    void loadRun(runId);
  } catch (error) {
    failed(`Could not resume run ${runId}`, error);
  }
}

/** The document a run was started with (cached). */
export async function runDocument(runId: string): Promise<StrataDocument | null> {
  const cached = useRunsStore.getState().documents[runId];
  if (cached) return cached;
  try {
    const doc = await host().runs.document(runId);
    useRunsStore.setState((s) => ({ documents: { ...s.documents, [runId]: doc } }));
    return doc;
  } catch (error) {
    failed(`Could not read the document of run ${runId}`, error);
    return null;
  }
}

/** Keeps live runs' data and summaries current from the host's event pushes. Returns unsubscribe. */
export function subscribeRunEvents(): () => void {
  return host().runs.onEvent((message) => {
    ingestEvents(message.runId, message.line, [message.event]);
    const data = useRunsStore.getState().data[message.runId];
    if (data && data.nextLine <= message.line) void loadRun(message.runId); // a gap: read the folder
    const e = message.event;
    useRunsStore.setState((s) => ({
      summaries: s.summaries.map((r) => {
        if (r.runId !== message.runId) return r;
        if (e.type === 'step') return { ...r, step: e.step as number, lastLoss: e.loss as number, tokensPerS: e.tokens_per_s as number, elapsedS: e.t };
        if (e.type === 'done') return { ...r, status: e.reason === 'stopped' ? 'stopped' : 'done', elapsedS: e.t };
        if (e.type === 'error') return { ...r, status: 'error', error: String(e.message), elapsedS: e.t };
        return r;
      }),
    }));
  });
}

/** Adds a run folder made elsewhere (e.g. by strata-engine on a GPU box) to the list and opens it. */
export async function importRunFolder(path: string): Promise<string | null> {
  try {
    const handle = await host().runs.importFolder(path);
    await refreshRuns();
    await openRun(handle.runId);
    useViewStore.getState().setStatus(`Opened run folder ${handle.dir} as ${handle.runId}`);
    return handle.runId;
  } catch (error) {
    failed('Could not open the run folder', error);
    return null;
  }
}

/** Exports a train run's weights as a Hugging Face folder (asks for the folder). */
export async function exportRunToHf(runId: string, askFolder: (defaultPath: string) => Promise<string | null>): Promise<void> {
  const outDir = await askFolder(`exports/${runId}-hf`);
  if (!outDir) return;
  try {
    const result = await host().exports.exportHf({ runId }, outDir);
    useViewStore.getState().setStatus(`Exported run ${runId}: ${result.files.length} files in ${result.outDir}`);
  } catch (error) {
    failed(`Could not export run ${runId}`, error);
  }
}
