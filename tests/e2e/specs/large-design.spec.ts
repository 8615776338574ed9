// End-to-end spec of a 118-layer design (Nemotron 3 Super's template, re-patterned to 118 layers):
// the pattern expands to 118 strip cells and editor nodes, typing into the inspector and dragging
// across the strip to paint a precision keep working and the analytics follow each edit, computed
// in the Web Worker (the figures update while the page stays interactive). Responsiveness is
// measured by hand (README, "The app"); this spec checks behaviour only, never durations.
import { layerCells, openLayerEditor, openTemplate, setPattern, totalParameters } from '../app-actions.js';
import { assert, eventually, spec, textOf } from '../harness.js';

const PATTERN = 'MEMEM*EMEMEM*E'.repeat(9).slice(0, 118);

export const specs = [
  spec(
    'a 118-layer design: pattern, inspector typing, strip painting and analytics in the worker',
    async ({ page, url, screenshot }) => {
      const workers: string[] = [];
      page.on('worker', (w) => workers.push(w.url()));
      await openTemplate(page, url, 'nemotron-3-super-120b-a12b');
      await openLayerEditor(page);
      await setPattern(page, PATTERN);
      await eventually(() => layerCells(page).count(), (n) => n === 118, 'the strip shows 118 layers');
      assert(workers.some((w) => /analytics-worker/.test(w)), `analytics run in a Web Worker: ${JSON.stringify(workers)}`);
      const before = await eventually(() => totalParameters(page), (v) => v > 1e9, 'analytics of the 118-layer design are shown');

      // Typing in the inspector: the selected Mamba-2 block's state size, key by key.
      await page.getByRole('group', { name: /^Mamba-2 block, layer 0\b/ }).click();
      const field = page.getByRole('region', { name: 'Mamba-2 block settings' }).getByLabel('d_state', { exact: true });
      await field.fill('');
      await field.pressSequentially('256');
      await field.press('Tab');
      await eventually(() => textOf(field), (v) => v === '256', 'the typed value stays in the field');
      await eventually(() => totalParameters(page), (v) => v !== before, 'total parameters follow the typed value');

      // Painting across the strip: drag from layer 10 to layer 100 (over the strip's two rows).
      const cellLabels = () => layerCells(page).evaluateAll((cells) => cells.map((c) => c.getAttribute('aria-label') ?? ''));
      const unpainted = await cellLabels();
      await page.getByLabel('Paint precision').selectOption('mxfp8');
      const first = await layerCells(page).nth(10).boundingBox();
      const last = await layerCells(page).nth(100).boundingBox();
      assert(first && last, 'both cells are on screen (the strip wraps large designs)');
      await page.mouse.move(first.x + first.width / 2, first.y + first.height / 2);
      await page.mouse.down();
      await page.mouse.move(last.x + last.width / 2, last.y + last.height / 2, { steps: 30 });
      await page.mouse.up();
      // A painted layer runs every GEMM in MXFP8, so its label lists that one format.
      const labels = await eventually(cellLabels, (l) => /, mxfp8$/.test(l[10]!) && /, mxfp8$/.test(l[100]!), 'layers 10 and 100 are painted MXFP8');
      assert(labels.slice(10, 101).every((l) => /: \w+, mxfp8$/.test(l)), 'every layer from 10 to 100 is MXFP8');
      assert(JSON.stringify([...labels.slice(0, 10), ...labels.slice(101)]) === JSON.stringify([...unpainted.slice(0, 10), ...unpainted.slice(101)]), 'the layers outside the drag keep their precision');
      await screenshot('large-design');
    },
    180_000,
  ),
];
