// @vitest-environment jsdom
// File handling through a real in-process host (electron/host services behind the same
// createHost/dispatch path the Electron bridge uses) on a temporary workspace: save via the
// browser-mode path prompt, open errors that keep the current design, templates, autosave and
// restore.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cleanup, fireEvent, render, screen, waitFor } from '@testing-library/react';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createHost } from '../../electron/client.js';
import { type NodeHost, createNodeHost, dispatch } from '../../electron/host/index.js';
import { nodeChildLauncher } from '../../electron/host/jobs.js';
import { TEMPLATES } from '../../templates/index.js';
import { installHost } from '../host/host.js';
import { Dialogs } from '../panels/Dialogs.js';
import { TemplateGallery } from '../panels/TemplateGallery.js';
import { Toolbar } from '../panels/Toolbar.js';
import { addBlock } from './document-actions.js';
import { isDirty } from './document-store.js';
import { restoreAutosave, startAutosave, useProjectUi } from './project-actions.js';
import { resetStores, useDocumentStore, useViewStore } from './stores.js';

let dir: string;
let node: NodeHost;
/** The repository root (vitest runs from it; jsdom's import.meta.url is not a file URL). */
const ROOT = process.cwd();

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'strata-ui-'));
  node = createNodeHost({
    mode: 'browser',
    rootDir: ROOT,
    dataDir: join(dir, 'data'),
    runsDir: join(dir, 'runs'),
    workspaceDir: join(dir, 'ws'),
    launcher: nodeChildLauncher,
    templateIndex: TEMPLATES,
  });
  installHost(createHost({ call: (method, args) => dispatch(node.host, method, args), onRunEvent: (listener) => node.host.runs.onEvent(listener) }));
});
afterAll(async () => {
  installHost(null);
  await node.dispose();
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => {
  resetStores();
  useProjectUi.setState({ error: null, pathRequest: null, templates: null, nativeDialogs: null });
});
afterEach(() => cleanup());

function App() {
  return (
    <>
      <Toolbar />
      <TemplateGallery />
      <Dialogs />
    </>
  );
}

async function answerPathPrompt(path: string) {
  const input = await screen.findByRole('textbox', { name: 'Project file path' });
  fireEvent.change(input, { target: { value: path } });
  fireEvent.submit(input.closest('form')!);
}

describe('project files', () => {
  it('saves through the path prompt and reopens the file', async () => {
    render(<App />);
    fireEvent.click(screen.getByRole('button', { name: 'Save' }));
    await answerPathPrompt('designs/one.strata.json');
    await waitFor(() => expect(useDocumentStore.getState().filePath).toBe(join(dir, 'ws', 'designs/one.strata.json')));
    expect(isDirty(useDocumentStore.getState())).toBe(false);
    const onDisk = JSON.parse(readFileSync(join(dir, 'ws', 'designs/one.strata.json'), 'utf8'));
    expect(onDisk.model.name).toBe('untitled-hybrid');
    addBlock('mlp');
    fireEvent.click(screen.getByRole('button', { name: 'Open' }));
    await answerPathPrompt('designs/one.strata.json');
    await waitFor(() => expect(useDocumentStore.getState().doc.model.stack.some((i) => i.kind === 'mlp')).toBe(false));
    expect(useViewStore.getState().status?.text).toMatch(/^Opened /);
  });

  it('explains a corrupt or invalid file and keeps the current design', async () => {
    writeFileSync(join(dir, 'ws', 'corrupt.strata.json'), '{\n  "format": "strata",\n  "version": 2,\n  oops\n}');
    const before = useDocumentStore.getState().doc;
    render(<App />);
    fireEvent.click(screen.getByRole('button', { name: 'Open' }));
    await answerPathPrompt('corrupt.strata.json');
    const dialog = await screen.findByRole('alertdialog', { name: 'Could not open the design' });
    expect(dialog.textContent).toMatch(/corrupt\.strata\.json/);
    expect(dialog.textContent).toMatch(/line 4/);
    expect(useDocumentStore.getState().doc).toBe(before);
    fireEvent.click(screen.getByRole('button', { name: 'Dismiss' }));

    const bad = structuredClone(before);
    const attention = bad.model.stack.find((i) => i.kind === 'attention')!;
    if (attention.kind === 'attention') attention.heads = 5;
    writeFileSync(join(dir, 'ws', 'invalid.strata.json'), JSON.stringify(bad));
    fireEvent.click(screen.getByRole('button', { name: 'Open' }));
    await answerPathPrompt('invalid.strata.json');
    const second = await screen.findByRole('alertdialog', { name: 'Could not open the design' });
    expect(second.textContent).toMatch(/layer 4 \(attention\): heads 5 is not a multiple of kv_heads 2/);
    expect(useDocumentStore.getState().doc).toBe(before);
  });

  it('opens a template from the gallery', async () => {
    render(<App />);
    fireEvent.click(screen.getByRole('button', { name: 'Templates' }));
    fireEvent.click(await screen.findByRole('button', { name: 'Open template nemotron-3-nano-30b-a3b' }));
    await waitFor(() => expect(useDocumentStore.getState().doc.model.name).toBe('Nemotron 3 Nano 30B-A3B'));
    expect(screen.queryByRole('dialog', { name: 'Template gallery' })).toBeNull();
    expect(useDocumentStore.getState().filePath).toBeNull();
  });

  it('autosaves edits and restores them', async () => {
    const stop = startAutosave(0);
    addBlock('attention');
    const edited = useDocumentStore.getState().doc;
    await waitFor(async () => expect((await node.host.projects.restoreAutosave())?.doc.model.stack.length).toBe(edited.model.stack.length));
    stop();
    resetStores();
    expect(await restoreAutosave()).toBe(true);
    expect(useDocumentStore.getState().doc.model.stack.length).toBe(edited.model.stack.length);
    expect(isDirty(useDocumentStore.getState())).toBe(true);
  });
});
