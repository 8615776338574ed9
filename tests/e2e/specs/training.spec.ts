// End-to-end spec of a real training run in browser mode: open the tiny-hybrid template, make the
// training small (Training settings: steps, batch_size, seq_len), start it on the CPU with the bundled native engine,
// see the progress bar and the loss curve move, stop it, and see it stopped. Needs the built
// engine (npm run build:engine) and `strata train`; nothing here fakes training.
import type { Page } from 'playwright-core';
import { openTemplate } from '../app-actions.js';
import { assert, eventually, spec } from '../harness.js';

// Small batches so steps come quickly on a busy 2-core CPU; enough steps that the run is still going
// when it is stopped (the progress bar shows 1% after 3 of them).
const TRAINING = { steps: 500, batch_size: 4, seq_len: 64 };
/** Steps the loss curve shows before the README's run picture is taken (only with --screenshots). */
const PICTURE_STEPS = 25;

/** The step of the last loss point, from the curve's caption ("...: 5.1234 at step 12"). */
async function lastPlottedStep(page: Page): Promise<number> {
  const caption = await page.getByRole('img', { name: 'Loss curve' }).locator('figcaption').innerText();
  const match = /at step (\d+)/.exec(caption);
  return match ? Number(match[1]) : 0;
}

export const specs = [
  spec(
    'train tiny-hybrid: progress and loss curve move, then stop',
    async ({ page, url, screenshot, takingScreenshots }) => {
      await openTemplate(page, url, 'tiny-hybrid');
      await page.getByRole('group', { name: 'Train step' }).click();
      const settings = page.getByRole('region', { name: 'Training settings' });
      for (const [field, value] of Object.entries(TRAINING)) {
        await settings.getByLabel(field, { exact: true }).fill(String(value));
        await settings.getByLabel(field, { exact: true }).press('Tab');
      }
      await page.getByRole('group', { name: 'Train step' }).getByText(`${TRAINING.steps} steps, batch ${TRAINING.batch_size} x ${TRAINING.seq_len}`).waitFor();

      await page.getByRole('button', { name: 'Start training' }).click();
      const progress = page.getByRole('progressbar', { name: 'Run progress' });
      await progress.waitFor();
      const percent = async () => Number((await progress.getAttribute('aria-valuenow')) ?? '0');

      const firstStep = await eventually(() => lastPlottedStep(page), (s) => s > 0, 'the loss curve gets its first point', 180_000);
      const laterStep = await eventually(() => lastPlottedStep(page), (s) => s > firstStep + 1, 'the loss curve moves on', 180_000);
      await eventually(percent, (p) => p > 0, 'the progress bar moves', 60_000);
      assert(laterStep > firstStep, 'the plotted step advanced');
      await page.getByRole('button', { name: 'Enlarge run views' }).click();
      if (takingScreenshots) await eventually(() => lastPlottedStep(page), (s) => s >= PICTURE_STEPS, `the README picture shows ${PICTURE_STEPS} steps`, 300_000);
      await screenshot('run');

      await page.getByRole('button', { name: 'Stop run' }).click();
      const active = page.getByRole('region', { name: /^Run / });
      await active.getByText('stopped', { exact: true }).waitFor({ timeout: 60_000 });
      assert(await page.getByRole('button', { name: 'Stop run' }).isDisabled(), 'Stop is disabled once the run stopped');
    },
    420_000,
  ),
];
