// The application shell of the renderer: toolbar, the pipeline canvas or layer-stack editor in
// the centre, inspector and analytics on the side, the layer strip, the bottom panel (runs,
// compare, profile, precision; it can be enlarged), the status bar and the dialogs. On mount it wires the window:
// keyboard shortcuts, autosave, restore of unsaved work, live run events, the theme.
// Not any one panel's content.
import { useEffect } from 'react';
import { LayerEditor } from './canvas/LayerEditor.js';
import { PipelineCanvas } from './canvas/PipelineCanvas.js';
import { AnalyticsPanel } from './panels/AnalyticsPanel.js';
import { Dialogs } from './panels/Dialogs.js';
import { ErrorBoundary } from './panels/ErrorBoundary.js';
import { Inspector } from './panels/Inspector.js';
import { LayerStrip } from './panels/LayerStrip.js';
import { TemplateGallery } from './panels/TemplateGallery.js';
import { Toolbar } from './panels/Toolbar.js';
import { PrecisionView } from './runs/PrecisionView.js';
import { ProfileView } from './runs/ProfileView.js';
import { RunCompare } from './runs/RunCompare.js';
import { RunsPanel } from './runs/RunsPanel.js';
import { subscribeRunEvents } from './runs/runs-store.js';
import { describeHostError } from './host/host.js';
import { restoreAutosave, startAutosave } from './state/project-actions.js';
import { installShortcuts } from './state/shortcuts.js';
import { type BottomPanel, usePrefsStore, useViewStore } from './state/stores.js';

const BOTTOM_TABS: Array<{ id: BottomPanel; title: string }> = [
  { id: 'runs', title: 'Runs' },
  { id: 'compare', title: 'Compare' },
  { id: 'profile', title: 'Profile' },
  { id: 'precision', title: 'Precision' },
];

function BottomPanelView() {
  const bottom = useViewStore((s) => s.bottom);
  const expanded = useViewStore((s) => s.bottomExpanded);
  return (
    <section className="bottom-panel">
      <div className="bottom-bar">
        <div role="tablist" aria-label="Run views" className="tabs">
          {BOTTOM_TABS.map((t) => (
            <button key={t.id} type="button" role="tab" aria-selected={bottom === t.id} onClick={() => useViewStore.getState().setBottom(t.id)}>
              {t.title}
            </button>
          ))}
        </div>
        <button type="button" className="expand-toggle" aria-pressed={expanded} onClick={() => useViewStore.getState().setBottomExpanded(!expanded)}>
          {expanded ? 'Shrink run views' : 'Enlarge run views'}
        </button>
      </div>
      <div role="tabpanel" aria-label={BOTTOM_TABS.find((t) => t.id === bottom)!.title} className="tab-body">
        {bottom === 'runs' ? <RunsPanel /> : bottom === 'compare' ? <RunCompare /> : bottom === 'profile' ? <ProfileView /> : <PrecisionView />}
      </div>
    </section>
  );
}

function StatusBar() {
  const status = useViewStore((s) => s.status);
  return (
    <footer className={`status-bar${status?.tone === 'error' ? ' error' : ''}`} role="status" aria-label="Status" aria-live="polite">
      {status?.text ?? 'Ready'}
    </footer>
  );
}

/** Wires window-level services once; each returns its own cleanup. */
function useWindowServices(): void {
  useEffect(() => {
    const cleanups: Array<() => void> = [installShortcuts()];
    const setStatus = useViewStore.getState().setStatus;
    let disposed = false;
    void restoreAutosave().finally(() => {
      if (!disposed) cleanups.push(startAutosave());
    });
    try {
      cleanups.push(subscribeRunEvents());
    } catch (error) {
      setStatus(`No host connection: ${describeHostError(error).message}`, 'error');
    }
    return () => {
      disposed = true;
      cleanups.forEach((c) => c());
    };
  }, []);
}

export function App() {
  const theme = usePrefsStore((s) => s.theme);
  const screen = useViewStore((s) => s.screen);
  const bottomExpanded = useViewStore((s) => s.bottomExpanded);
  useWindowServices();
  useEffect(() => {
    document.documentElement.dataset.theme = theme;
  }, [theme]);
  return (
    <div className={`app${bottomExpanded ? ' bottom-expanded' : ''}`} data-theme={theme}>
      <Toolbar />
      <main className="workspace">
        <div className="center">
          <ErrorBoundary area={screen === 'pipeline' ? 'pipeline canvas' : 'layer editor'}>{screen === 'pipeline' ? <PipelineCanvas /> : <LayerEditor />}</ErrorBoundary>
        </div>
        <aside className="side" aria-label="Side panel">
          <div className="side-section inspector">
            <ErrorBoundary area="inspector">
              <Inspector />
            </ErrorBoundary>
          </div>
          <div className="side-section">
            <ErrorBoundary area="analytics panel">
              <AnalyticsPanel />
            </ErrorBoundary>
          </div>
        </aside>
      </main>
      <ErrorBoundary area="layer strip">
        <LayerStrip />
      </ErrorBoundary>
      <ErrorBoundary area="runs panel">
        <BottomPanelView />
      </ErrorBoundary>
      <StatusBar />
      <TemplateGallery />
      <Dialogs />
    </div>
  );
}
