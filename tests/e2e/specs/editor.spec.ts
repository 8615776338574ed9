// End-to-end specs of the design editor in browser mode, written against the accessible names
// the UI exposes (renderer/): open a template from the gallery, type a layer pattern, add a
// Mamba-2 block from the palette and connect it, watch total parameters change, paint a layer's
// precision on the layer strip, undo and redo, save, reload and get the same design back.
import type { Page } from 'playwright-core';
import { assert, eventually, parseQuantity, spec, textOf } from '../harness.js';

/** Loads the app and opens a template from the gallery. */
async function openTemplate(page: Page, url: string, title: RegExp): Promise<void> {
  await page.goto(url);
  await page.getByRole('button', { name: title }).first().click();
  await page.getByLabel('Total parameters').waitFor();
}

/** Opens the layer-stack editor (double-click the model step of the pipeline). */
async function openLayerEditor(page: Page): Promise<void> {
  if (await page.getByLabel('Layer pattern').isVisible().catch(() => false)) return;
  await page.getByRole('group', { name: /^Model step/ }).dblclick();
  await page.getByLabel('Layer pattern').waitFor();
}

async function setPattern(page: Page, pattern: string): Promise<void> {
  const field = page.getByLabel('Layer pattern');
  await field.fill(pattern);
  await field.press('Enter');
  await eventually(() => textOf(field), (v) => v === pattern, `pattern field shows ${pattern}`);
}

const totalParameters = async (page: Page) => parseQuantity(await textOf(page.getByLabel('Total parameters')));
const pattern = (page: Page) => textOf(page.getByLabel('Layer pattern'));
const layerCells = (page: Page) => page.getByRole('group', { name: 'Layers' }).getByRole('button', { name: /^Layer \d+:/ });

export const specs = [
  spec('open a template, type a pattern, add a Mamba-2 block and connect it', async ({ page, url, screenshot }) => {
    await openTemplate(page, url, /Open template Tiny hybrid/);
    await openLayerEditor(page);
    await screenshot('editor');

    const before = await totalParameters(page);
    await setPattern(page, 'M*E');
    assert((await layerCells(page).count()) === 3, 'layer strip shows the 3 layers of M*E');
    const afterPattern = await eventually(() => totalParameters(page), (v) => v !== before, 'total parameters change after typing a pattern');

    await page.getByLabel('Search blocks').fill('mamba');
    await page.getByRole('button', { name: 'Add Mamba-2 block' }).click();
    await eventually(() => pattern(page), (v) => v === 'M*EM', 'the new Mamba-2 block is appended (pattern M*EM)');
    const afterAdd = await eventually(() => totalParameters(page), (v) => v > afterPattern, 'total parameters grow with the new block');
    assert(afterAdd > afterPattern, 'more parameters after adding a block');

    // Connect layer 0's output to the new block's input: the new block moves right after layer 0.
    const from = page.getByRole('group', { name: /^Mamba-2 block, layer 0\b/ }).getByLabel('Mamba-2 output');
    const to = page.getByRole('group', { name: /^Mamba-2 block, layer 3\b/ }).getByLabel('Mamba-2 input');
    const a = await from.boundingBox();
    const b = await to.boundingBox();
    assert(a && b, 'both handles are on screen');
    await page.mouse.move(a.x + a.width / 2, a.y + a.height / 2);
    await page.mouse.down();
    await page.mouse.move((a.x + b.x) / 2, (a.y + b.y) / 2, { steps: 5 });
    await page.mouse.move(b.x + b.width / 2, b.y + b.height / 2, { steps: 5 });
    await page.mouse.up();
    await eventually(() => pattern(page), (v) => v === 'MM*E', 'connecting moves the new block after layer 0 (pattern MM*E)');
  }),

  spec('paint a layer precision, undo and redo', async ({ page, url, screenshot }) => {
    await openTemplate(page, url, /Open template Tiny hybrid/);
    const cell = layerCells(page).nth(1);
    const original = (await cell.getAttribute('aria-label')) ?? '';
    assert(!/nvfp4/i.test(original), `layer 1 does not start in NVFP4 (${original})`);
    await page.getByLabel('Paint precision').selectOption('nvfp4');
    await cell.click();
    await eventually(async () => (await cell.getAttribute('aria-label')) ?? '', (v) => /nvfp4/i.test(v), 'layer 1 shows NVFP4 after painting');
    await screenshot('layer-strip', page.getByRole('region', { name: 'Layer strip' }));

    await page.getByRole('button', { name: /^Undo/ }).click();
    await eventually(async () => (await cell.getAttribute('aria-label')) ?? '', (v) => v === original, 'undo restores the original precision');
    await page.getByRole('button', { name: /^Redo/ }).click();
    await eventually(async () => (await cell.getAttribute('aria-label')) ?? '', (v) => /nvfp4/i.test(v), 'redo paints NVFP4 again');
  }),

  spec('save, reload and get the same design', async ({ page, url, workspaceDir }) => {
    await openTemplate(page, url, /Open template Tiny hybrid/);
    await openLayerEditor(page);
    await setPattern(page, 'MEM*E');
    await page.getByLabel('Paint precision').selectOption('mxfp8');
    await layerCells(page).nth(2).click();
    const labels = async () => layerCells(page).evaluateAll((cells) => cells.map((c) => c.getAttribute('aria-label')));
    const designBefore = { pattern: await pattern(page), cells: await labels(), total: await textOf(page.getByLabel('Total parameters')) };

    const file = `${workspaceDir}/saved-design.strata.json`;
    await page.getByRole('button', { name: /^Save/ }).first().click();
    await page.getByLabel(/path/i).fill(file);
    await page.getByLabel(/path/i).press('Enter');
    await page.getByText(/saved/i).first().waitFor();

    await page.reload();
    await page.getByRole('button', { name: /^Open/ }).first().click();
    await page.getByLabel(/path/i).fill(file);
    await page.getByLabel(/path/i).press('Enter');
    await openLayerEditor(page);
    await eventually(() => pattern(page), (v) => v === designBefore.pattern, 'the reopened design has the saved pattern');
    const after = { pattern: await pattern(page), cells: await labels(), total: await textOf(page.getByLabel('Total parameters')) };
    assert(JSON.stringify(after) === JSON.stringify(designBefore), `same design after reload: ${JSON.stringify(after)} vs ${JSON.stringify(designBefore)}`);
  }),
];
