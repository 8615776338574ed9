// Steps the e2e specs share, phrased as a user does them through the UI's accessible names:
// open a template from the gallery, answer browser mode's path prompt, open the layer editor,
// type a pattern, and read total parameters, the pattern and the layer strip cells.
// Not here: assertions of a particular spec (specs/).
import type { Page } from 'playwright-core';
import { eventually, parseQuantity, textOf } from './harness.js';

/** Loads the app and opens a template (by file name) from the gallery. */
export async function openTemplate(page: Page, url: string, name: string): Promise<void> {
  await page.goto(url);
  const gallery = page.getByRole('dialog', { name: 'Template gallery' });
  if (!(await gallery.isVisible())) await page.getByRole('button', { name: 'Templates', exact: true }).click();
  await gallery.getByRole('button', { name: `Open template ${name}` }).click();
  await gallery.waitFor({ state: 'hidden' });
  await page.getByLabel('Total parameters').waitFor();
}

/** Answers the browser-mode path prompt of Open or Save. */
export async function answerPathPrompt(page: Page, dialogName: string, path: string): Promise<void> {
  const dialog = page.getByRole('dialog', { name: dialogName });
  await dialog.getByLabel('Project file path').fill(path);
  await dialog.getByLabel('Project file path').press('Enter');
  await dialog.waitFor({ state: 'hidden' });
}

/** Opens the layer-stack editor from the model step of the pipeline ("Edit layers"). */
export async function openLayerEditor(page: Page): Promise<void> {
  if (await page.getByLabel('Layer pattern').isVisible().catch(() => false)) return;
  await page.getByRole('button', { name: 'Edit layers' }).click();
  await page.getByLabel('Layer pattern').waitFor();
}

export async function setPattern(page: Page, pattern: string): Promise<void> {
  const field = page.getByLabel('Layer pattern');
  await field.fill(pattern);
  await field.press('Enter');
  await eventually(() => textOf(field), (v) => v === pattern, `pattern field shows ${pattern}`);
}

export const totalParameters = async (page: Page) => parseQuantity(await textOf(page.getByLabel('Total parameters')));
export const pattern = (page: Page) => textOf(page.getByLabel('Layer pattern'));
export const layerCells = (page: Page) => page.getByRole('group', { name: 'Layers' }).getByRole('button', { name: /^Layer \d+:/ });
