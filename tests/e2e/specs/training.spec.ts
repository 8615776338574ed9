// End-to-end spec of a real training run in browser mode: open the tiny-hybrid template, start a
// short CPU training on the bundled engine, see the progress bar and the loss curve move, stop the
// run and see it stopped in the runs list. Needs the native engine and `strata train`.
import { assert, eventually, spec } from '../harness.js';
import { openTemplate } from '../app-actions.js';

export const specs = [
  spec(
    'train tiny-hybrid: progress and loss curve move, then stop',
    async ({ page, url, screenshot }) => {
      await openTemplate(page, url, 'tiny-hybrid');
      await page.getByRole('button', { name: 'Start training' }).click();

      const progress = page.getByRole('progressbar', { name: 'Run progress' });
      await progress.waitFor({ timeout: 60_000 });
      const now = async () => Number((await progress.getAttribute('aria-valuenow')) ?? 'NaN');
      const first = await eventually(now, (v) => v > 0, 'training reports a first step', 120_000);
      await eventually(now, (v) => v > first, 'progress moves past the first step', 120_000);

      const curve = page.getByLabel('Loss curve');
      await curve.waitFor();
      const points = async () => Number((await curve.getAttribute('data-points')) ?? (await curve.locator('canvas').count()));
      assert((await points()) > 0, 'the loss curve has data');
      await screenshot('run');

      await page.getByRole('button', { name: 'Stop run' }).click();
      await page.getByText(/stopped/i).first().waitFor({ timeout: 30_000 });
    },
    240_000,
  ),
];
