// End-to-end specs of the design editor in browser mode, written against the accessible names
// the UI exposes (renderer/): open a template from the gallery, type a layer pattern, add a
// Mamba-2 block from the palette and connect it, watch total parameters change, paint a layer's
// precision on the layer strip, undo and redo, save, reload and get the same design back.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { answerPathPrompt, layerCells, openLayerEditor, openTemplate, pattern, setPattern, totalParameters } from '../app-actions.js';
import { assert, eventually, spec, textOf } from '../harness.js';

export const specs = [
  spec('open a template, type a pattern, add a Mamba-2 block and connect it', async ({ page, url, screenshot }) => {
    await openTemplate(page, url, 'tiny-hybrid');
    await openLayerEditor(page);
    await page.getByRole('group', { name: /^Attention block, layer 3\b/ }).click();
    await page.getByRole('region', { name: 'Attention block settings' }).waitFor();
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
    await openTemplate(page, url, 'tiny-hybrid');
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
    await openTemplate(page, url, 'tiny-hybrid');
    await openLayerEditor(page);
    await setPattern(page, 'MEM*E');
    await page.getByLabel('Paint precision').selectOption('mxfp8');
    await layerCells(page).nth(2).click();
    const labels = async () => layerCells(page).evaluateAll((cells) => cells.map((c) => c.getAttribute('aria-label')));
    const designBefore = { pattern: await pattern(page), cells: await labels(), total: await textOf(page.getByLabel('Total parameters')) };

    const file = join(workspaceDir, 'saved-design.strata.json');
    await page.getByRole('button', { name: 'Save', exact: true }).click();
    await answerPathPrompt(page, 'Save design', file);
    const onDisk = await eventually(async () => JSON.parse(await readFile(file, 'utf8')) as { format?: string }, (d) => d.format === 'strata', 'the design is written to disk');
    assert(onDisk.format === 'strata', 'a Strata document on disk');

    await page.reload();
    await page.getByRole('button', { name: 'Open', exact: true }).click();
    await answerPathPrompt(page, 'Open design', file);
    await openLayerEditor(page);
    await eventually(() => pattern(page), (v) => v === designBefore.pattern, 'the reopened design has the saved pattern');
    const after = { pattern: await pattern(page), cells: await labels(), total: await textOf(page.getByLabel('Total parameters')) };
    assert(JSON.stringify(after) === JSON.stringify(designBefore), `same design after reload: ${JSON.stringify(after)} vs ${JSON.stringify(designBefore)}`);
  }),

  spec('opening a corrupt project file explains where it is broken and keeps the design', async ({ page, url, workspaceDir }) => {
    await openTemplate(page, url, 'tiny-hybrid');
    const before = await textOf(page.getByLabel('Total parameters'));
    const file = join(workspaceDir, 'broken.strata.json');
    await writeFile(file, '{\n  "format": "strata",\n  "version": 2,\n  "model": { "name": "x", }\n}\n');
    await page.getByRole('button', { name: 'Open', exact: true }).click();
    await answerPathPrompt(page, 'Open design', file);
    const dialog = page.getByRole('alertdialog');
    await dialog.waitFor();
    const message = await dialog.getByRole('alert').innerText();
    assert(message.includes(`${file}: malformed JSON at line 4 column 27`), `the error names file, line and column: ${message}`);
    await dialog.getByRole('button', { name: 'Dismiss' }).click();
    assert((await textOf(page.getByLabel('Total parameters'))) === before, 'the open design is unchanged');
  }),
];
