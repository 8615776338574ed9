// End-to-end spec of the pipeline's export step: select Export, choose 2 nodes x 4 GPUs (layout
// left to the planner), export the design to a Hugging Face folder and to the Megatron-LM
// scale-out bundle, and see where each was written (inspector and node) and the planner's layout;
// the files exist on disk with what they promise.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openTemplate } from '../app-actions.js';
import { assert, eventually, spec, textOf } from '../harness.js';

export const specs = [
  spec('export writes the HF folder and the Megatron bundle for nodes x GPUs and shows where', async ({ page, url, workspaceDir }) => {
    await openTemplate(page, url, 'tiny-hybrid');
    const step = page.getByRole('group', { name: 'Export step' });
    await step.locator('.pipeline-node-title').click();
    const settings = page.getByRole('region', { name: 'Export settings' });
    await settings.getByLabel('Hugging Face folder').fill('out/hf');
    await settings.getByRole('button', { name: 'Export to Hugging Face' }).click();
    const hfDir = join(workspaceDir, 'out', 'hf');
    const hf = await eventually(() => textOf(settings.getByRole('status', { name: 'Last Hugging Face folder export' })), (t) => t.startsWith('Wrote'), 'the HF export reports its folder', 60_000);
    assert(hf.includes(`files to ${hfDir}`) && hf.includes('model.safetensors') && hf.includes('config.json'), `HF folder and files shown: ${hf}`);
    assert(JSON.parse(await readFile(join(hfDir, 'config.json'), 'utf8')).model_type === 'nemotron_h', 'a nemotron_h config on disk');

    await settings.getByLabel('Megatron-LM bundle folder').fill('out/megatron');
    await settings.getByLabel('Nodes').fill('2');
    await settings.getByLabel('GPUs per node').fill('4');
    await settings.getByLabel('Planner GPU').selectOption('h200');
    await settings.getByRole('button', { name: 'Export to Megatron-LM' }).click();
    const megatronDir = join(workspaceDir, 'out', 'megatron');
    const megatron = await eventually(() => textOf(settings.getByRole('status', { name: 'Last Megatron-LM bundle export' })), (t) => t.startsWith('Wrote'), 'the Megatron export reports its folder', 60_000);
    assert(megatron.includes(`files to ${megatronDir}`) && megatron.includes('train_slurm.sbatch'), `bundle folder and files shown: ${megatron}`);
    assert(/layout chosen by the planner .*TP\d+ PP\d+ EP\d+ CP\d+ DP\d+/.test(megatron), `the planner's layout is shown: ${megatron}`);
    const slurm = await readFile(join(megatronDir, 'train_slurm.sbatch'), 'utf8');
    assert(/--nodes[= ]2\b/.test(slurm) && /4/.test(slurm), 'the Slurm script is for 2 nodes');
    const node = await textOf(step);
    assert(node.includes('HF: hf (') && node.includes('Megatron 2x4 GPUs: megatron ('), `the node shows both folders: ${node}`);
  }),
];
