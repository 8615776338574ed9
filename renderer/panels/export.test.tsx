// @vitest-environment jsdom
// The pipeline's export step through a real in-process host and the real `strata` CLI exporters:
// the export inspector writes the Hugging Face folder and the Megatron-LM bundle for nodes x GPUs
// with the planner's layout (or the TP the user typed), shows where it wrote them, which files and
// the planner's note, refuses a non-empty folder unless "replace" is ticked, and the node on the
// canvas shows the folders. Also the pure helpers (options, default folders, notes).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ReactFlowProvider } from '@xyflow/react';
import { cleanup, fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createHost } from '../../electron/client.js';
import { type NodeHost, createNodeHost, dispatch } from '../../electron/host/index.js';
import { nodeChildLauncher } from '../../electron/host/jobs.js';
import { TEMPLATES } from '../../templates/index.js';
import { installHost } from '../host/host.js';
import { ExportNode } from '../nodes/ExportNode.js';
import { DEFAULT_EXPORT_SETTINGS, exportFolder, exportNotes, megatronOptions, useExportStore } from '../state/export-actions.js';
import { resetStores, useDocumentStore } from '../state/stores.js';
import { ExportSettingsPanel } from './ExportSettings.js';

const ROOT = process.cwd();
let dir: string;
let node: NodeHost;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'strata-export-ui-'));
  node = createNodeHost({ mode: 'browser', rootDir: ROOT, dataDir: join(dir, 'data'), runsDir: join(dir, 'runs'), workspaceDir: join(dir, 'ws'), launcher: nodeChildLauncher, templateIndex: TEMPLATES });
  installHost(createHost({ call: (method, args) => dispatch(node.host, method, args), onRunEvent: (listener) => node.host.runs.onEvent(listener) }));
});
afterAll(async () => {
  installHost(null);
  await node.dispose();
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => {
  resetStores();
  useExportStore.setState({ settings: DEFAULT_EXPORT_SETTINGS, outcome: {} });
});
afterEach(() => cleanup());

describe('export helpers', () => {
  it('defaults folders under exports/, passes only the parallel sizes the user set, and reads the notes', () => {
    expect(exportFolder('hf', DEFAULT_EXPORT_SETTINGS, 'my model/v2')).toBe('exports/my-model-v2-hf');
    expect(exportFolder('megatron', { ...DEFAULT_EXPORT_SETTINGS, megatronDir: ' /x/bundle ' }, 'm')).toBe('/x/bundle');
    expect(megatronOptions(DEFAULT_EXPORT_SETTINGS)).toEqual({ nodes: 1, gpusPerNode: 8, gpu: 'h100', replace: false });
    const withTp = { ...DEFAULT_EXPORT_SETTINGS, parallel: { ...DEFAULT_EXPORT_SETTINGS.parallel, tensorParallel: 4 } };
    expect(megatronOptions(withTp).tensorParallel).toBe(4);
    expect(exportNotes('wrote x\nstrata: note: layout chosen by the planner (fastest of 3 that fit): TP1\n')).toEqual(['layout chosen by the planner (fastest of 3 that fit): TP1']);
  });
});

describe('ExportSettingsPanel with the real exporters', () => {
  it('writes the HF folder and the Megatron bundle for 2 nodes x 4 GPUs and shows where', async () => {
    const template = await node.host.projects.loadTemplate('tiny-hybrid');
    useDocumentStore.getState().load(template, null, true);
    render(<ExportSettingsPanel />);
    fireEvent.change(screen.getByLabelText('Hugging Face folder'), { target: { value: join(dir, 'out', 'hf') } });
    fireEvent.click(screen.getByRole('button', { name: 'Export to Hugging Face' }));
    const lastExport = (name: string) => screen.getByRole('status', { name: `Last ${name} export` });
    await waitFor(() => expect(lastExport('Hugging Face folder').textContent).toContain(`Wrote 6 files to ${join(dir, 'out', 'hf')}`), { timeout: 60_000 });
    const hf = lastExport('Hugging Face folder');
    expect(within(hf).getByText('model.safetensors')).toBeTruthy();
    expect(JSON.parse(readFileSync(join(dir, 'out', 'hf', 'config.json'), 'utf8')).model_type).toBe('nemotron_h');

    fireEvent.change(screen.getByLabelText('Nodes'), { target: { value: '2' } });
    fireEvent.change(screen.getByLabelText('GPUs per node'), { target: { value: '4' } });
    fireEvent.change(screen.getByLabelText('Planner GPU'), { target: { value: 'h200' } });
    fireEvent.click(screen.getByRole('button', { name: 'Export to Megatron-LM' }));
    const bundleDir = exportFolder('megatron', DEFAULT_EXPORT_SETTINGS, template.model.name);
    await waitFor(() => expect(lastExport('Megatron-LM bundle').textContent).toContain(`files to ${join(dir, 'ws', bundleDir)}`), { timeout: 60_000 });
    const megatron = lastExport('Megatron-LM bundle');
    expect(megatron.textContent).toContain('layout chosen by the planner');
    expect(within(megatron).getByText('train_slurm.sbatch')).toBeTruthy();
    const slurm = readFileSync(join(dir, 'ws', bundleDir, 'train_slurm.sbatch'), 'utf8');
    expect(slurm).toMatch(/--nodes[= ]2/);

    // The same folder again: refused while "replace" is off, written once it is ticked.
    fireEvent.change(screen.getByLabelText('Tensor parallel (TP)'), { target: { value: '1' } });
    fireEvent.click(screen.getByRole('button', { name: 'Export to Megatron-LM' }));
    await waitFor(() => expect(screen.getByRole('alert', { name: 'Last Megatron-LM bundle export' }).textContent).toContain('not empty'), { timeout: 60_000 });
    fireEvent.click(screen.getByLabelText('Replace a folder that already has files'));
    fireEvent.click(screen.getByRole('button', { name: 'Export to Megatron-LM' }));
    await waitFor(() => expect(lastExport('Megatron-LM bundle').textContent).toMatch(/^Wrote \d+ files/), { timeout: 60_000 });
    expect(readFileSync(join(dir, 'ws', bundleDir, 'args.txt'), 'utf8')).toContain('--tensor-model-parallel-size 1');

    render(
      <ReactFlowProvider>
        <ExportNode {...({ id: 'export', selected: false, data: {} } as unknown as Parameters<typeof ExportNode>[0])} />
      </ReactFlowProvider>,
    );
    const exportStep = screen.getByRole('group', { name: 'Export step' });
    expect(exportStep.textContent).toContain('HF: hf (6 files)');
    expect(exportStep.textContent).toMatch(/Megatron 2x4 GPUs: \S+-megatron \(\d+ files\)/);
  }, 120_000);
});
