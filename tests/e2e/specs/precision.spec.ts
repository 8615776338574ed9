// End-to-end spec of the precision view on a real run: open tiny-hybrid, apply the Nemotron 3
// NVFP4 preset on the layer strip, train a few small steps on the CPU engine with inspection at
// every second step (eval_every 2), and see the per-layer heat map of quantization error and
// underflow share that the engine's "precision" inspection events fill (NVFP4 MoE experts and
// Mamba in_proj, the MXFP8 Mamba out_proj, BF16 attention, the LM head). Needs the built engine.
import { openTemplate } from '../app-actions.js';
import { assert, eventually, spec, textOf } from '../harness.js';

const TRAINING = { steps: 4, batch_size: 2, seq_len: 32, eval_every: 2, warmup_steps: 1 };

export const specs = [
  spec(
    'a run trained with the nemotron3-nvfp4 preset shows its per-layer quantization heat map',
    async ({ page, url, screenshot }) => {
      await openTemplate(page, url, 'tiny-hybrid');
      await page.getByLabel('Precision preset').selectOption('nemotron3-nvfp4');
      await page.getByRole('button', { name: 'Apply preset' }).click();
      await eventually(() => page.getByRole('group', { name: 'Layers' }).getByRole('button').first().getAttribute('aria-label'), (l) => /nvfp4/.test(l ?? ''), 'layer 0 shows NVFP4');

      await page.getByRole('group', { name: 'Train step' }).locator('.pipeline-node-title').click();
      const settings = page.getByRole('region', { name: 'Training settings' });
      for (const [field, value] of Object.entries(TRAINING)) {
        await settings.getByLabel(field, { exact: true }).fill(String(value));
        await settings.getByLabel(field, { exact: true }).press('Tab');
      }
      await page.getByRole('button', { name: 'Start training' }).click();
      const run = page.getByRole('region', { name: /^Run / });
      await run.getByText('done', { exact: true }).waitFor({ timeout: 300_000 });

      await page.getByRole('tab', { name: 'Precision' }).click();
      const heatMap = page.getByRole('region', { name: 'Precision heat map' });
      await heatMap.waitFor();
      const cellLabels = () => heatMap.locator('td[aria-label]').evaluateAll((tds) => tds.map((t) => t.getAttribute('aria-label') ?? ''));
      const cell = async (label: RegExp) => (await cellLabels()).filter((l) => label.test(l));
      const experts = await cell(/^Layer 1 moe\.expert_fc1 \(nvfp4\): error \d\.\d\de-\d/);
      assert(experts.length === 1, `layer 1's NVFP4 experts have a measured error: ${JSON.stringify(experts)}`);
      const outProj = await cell(/^Layer 0 mamba\.out_proj \(mxfp8\): error/);
      assert(outProj.length === 1, `the preset's MXFP8 out_proj exception is measured: ${JSON.stringify(outProj)}`);
      const head = await cell(/^LM head \(\w+\): error/);
      assert(head.length === 1, `the LM head has a column: ${JSON.stringify(head)}`);
      const worst = await textOf(heatMap.getByLabel('Worst cell'));
      assert(/^Worst relative quantization error: .*, step 3$/.test(worst), `the summary names the worst cell at the latest inspected step: ${worst}`);
      await heatMap.getByLabel('Heat map metric').selectOption('underflow');
      const underflow = await cell(/^Layer 1 moe\.expert_fc1 \(nvfp4\): underflow \d\.\d\de-?\+?\d/);
      assert(underflow.length === 1, `underflow share per layer too: ${JSON.stringify(underflow)}`);
      await heatMap.getByLabel('Heat map metric').selectOption('error');
      await page.getByRole('button', { name: 'Enlarge run views' }).click();
      await screenshot('precision', page.getByRole('tabpanel', { name: 'Precision' }));
    },
    420_000,
  ),
];
