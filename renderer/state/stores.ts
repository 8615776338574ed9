// The application's store instances, one Zustand slice per domain: document (with history),
// selection, view (what is on screen) and preferences (persisted in localStorage). Runs live in
// runs-store.ts. Components import these hooks; tests reset them with `resetStores`.
// Not here: the edits themselves (document-actions.ts) and anything that talks to the host.
import { create } from 'zustand';
import { starterDocument } from '../model/starter.js';
import { createDocumentStore } from './document-store.js';

export const useDocumentStore = createDocumentStore(starterDocument());

/** Pipeline nodes the inspector can show. */
export const PIPELINE_NODES = ['dataset', 'tokenizer', 'model', 'train', 'evaluate', 'profile', 'export'] as const;
export type PipelineNodeId = (typeof PIPELINE_NODES)[number];

export interface SelectionState {
  /** Selected layer-editor nodes (block and repeat-group ids), in click order. */
  ids: string[];
  /** Selected pipeline node, shown in the inspector when no layer is selected. */
  pipelineNode: PipelineNodeId | null;
  select: (ids: string[]) => void;
  toggle: (id: string) => void;
  selectPipeline: (node: PipelineNodeId | null) => void;
}

export const useSelectionStore = create<SelectionState>()((set) => ({
  ids: [],
  pipelineNode: 'model',
  select: (ids) => set({ ids, pipelineNode: ids.length ? null : 'model' }),
  toggle: (id) => set((s) => ({ ids: s.ids.includes(id) ? s.ids.filter((x) => x !== id) : [...s.ids, id], pipelineNode: null })),
  selectPipeline: (pipelineNode) => set({ pipelineNode, ids: [] }),
}));

export type Screen = 'pipeline' | 'layers';
export type BottomPanel = 'runs' | 'compare' | 'profile' | 'precision';

export interface ViewState {
  screen: Screen;
  bottom: BottomPanel;
  galleryOpen: boolean;
  /** The bottom panel (runs, compare, profile, precision) takes more of the window. */
  bottomExpanded: boolean;
  /** One transient line for the status bar (saved, errors, autosave). */
  status: { text: string; tone: 'info' | 'error' } | null;
  setScreen: (screen: Screen) => void;
  setBottom: (bottom: BottomPanel) => void;
  setGalleryOpen: (open: boolean) => void;
  setBottomExpanded: (expanded: boolean) => void;
  setStatus: (text: string, tone?: 'info' | 'error') => void;
  clearStatus: () => void;
}

export const useViewStore = create<ViewState>()((set) => ({
  screen: 'pipeline',
  bottom: 'runs',
  galleryOpen: false,
  bottomExpanded: false,
  status: null,
  setScreen: (screen) => set({ screen }),
  setBottom: (bottom) => set({ bottom }),
  setGalleryOpen: (galleryOpen) => set({ galleryOpen }),
  setBottomExpanded: (bottomExpanded) => set({ bottomExpanded }),
  setStatus: (text, tone = 'info') => set({ status: { text, tone } }),
  clearStatus: () => set({ status: null }),
}));

export type Theme = 'dark' | 'light';

export interface PrefsState {
  theme: Theme;
  /** Context length (tokens) the analytics panel reports memory and throughput at. */
  context: number;
  /** Hardware profile id for the roofline and the fits-on verdict. */
  hardware: string;
  /** Parameter budget of "shrink to trainable size". */
  shrinkTarget: number;
  setTheme: (theme: Theme) => void;
  setContext: (context: number) => void;
  setHardware: (hardware: string) => void;
  setShrinkTarget: (target: number) => void;
}

const PREFS_KEY = 'strata.prefs.v1';

type StoredPrefs = Pick<PrefsState, 'theme' | 'context' | 'hardware' | 'shrinkTarget'>;
const DEFAULT_PREFS: StoredPrefs = { theme: 'dark', context: 8192, hardware: 'h200', shrinkTarget: 4_000_000 };

function readPrefs(): StoredPrefs {
  try {
    const raw = typeof localStorage === 'undefined' ? null : localStorage.getItem(PREFS_KEY);
    if (!raw) return DEFAULT_PREFS;
    const parsed = JSON.parse(raw) as Partial<StoredPrefs>;
    return {
      theme: parsed.theme === 'light' ? 'light' : 'dark',
      context: typeof parsed.context === 'number' && parsed.context > 0 ? parsed.context : DEFAULT_PREFS.context,
      hardware: typeof parsed.hardware === 'string' ? parsed.hardware : DEFAULT_PREFS.hardware,
      shrinkTarget: typeof parsed.shrinkTarget === 'number' && parsed.shrinkTarget > 0 ? parsed.shrinkTarget : DEFAULT_PREFS.shrinkTarget,
    };
  } catch {
    return DEFAULT_PREFS;
  }
}

export const usePrefsStore = create<PrefsState>()((set) => ({
  ...readPrefs(),
  setTheme: (theme) => set({ theme }),
  setContext: (context) => set({ context }),
  setHardware: (hardware) => set({ hardware }),
  setShrinkTarget: (shrinkTarget) => set({ shrinkTarget }),
}));

usePrefsStore.subscribe((s) => {
  if (typeof localStorage === 'undefined') return;
  const stored: StoredPrefs = { theme: s.theme, context: s.context, hardware: s.hardware, shrinkTarget: s.shrinkTarget };
  localStorage.setItem(PREFS_KEY, JSON.stringify(stored));
});

/** Puts every slice back to a fresh state (tests, "New design"). */
export function resetStores(): void {
  useDocumentStore.getState().load(starterDocument(), null, false);
  useSelectionStore.setState({ ids: [], pipelineNode: 'model' });
  useViewStore.setState({ screen: 'pipeline', bottom: 'runs', galleryOpen: false, bottomExpanded: false, status: null });
}
