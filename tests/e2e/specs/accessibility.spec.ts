// End-to-end accessibility checks in the real browser: on every screen and panel of the app
// (pipeline, template gallery, layer editor with a block selected, each pipeline step's inspector,
// the runs panel with an open run, compare/profile/precision tabs, the path prompt) every control
// the accessibility tree exposes (button, text box, spin button, combo box, check box, tab, ...)
// has a non-empty accessible name, as Chromium computes it (Playwright's ARIA snapshot). Then both
// themes: text on its own background meets WCAG AA contrast for the main text styles, and
// screenshots of both themes are kept for the README (docs/screenshots/theme-*.png).
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { openLayerEditor, openTemplate } from '../app-actions.js';
import { assert, eventually, spec } from '../harness.js';

/** ARIA roles of interactive controls that must be named. */
const CONTROL_ROLES = ['button', 'textbox', 'searchbox', 'spinbutton', 'combobox', 'listbox', 'checkbox', 'radio', 'switch', 'slider', 'tab', 'menuitem', 'link'];

/** Controls in the page's accessibility tree without a name, as "role (context line)". */
export async function unnamedControls(page: Page): Promise<string[]> {
  const snapshot = await page.locator('body').ariaSnapshot();
  const unnamed: string[] = [];
  const lines = snapshot.split('\n');
  lines.forEach((raw, i) => {
    const line = raw.trim().replace(/^- /, '').replace(/^'(.*)'$/, '$1');
    const role = /^([a-z]+)\b/.exec(line)?.[1];
    if (!role || !CONTROL_ROLES.includes(role)) return;
    const rest = line.slice(role.length);
    const named = /^ "([^"]|\\")+"/.test(rest) || /^ \/.+\//.test(rest);
    if (!named) unnamed.push(`${role} (after: ${lines[i - 1]?.trim() ?? 'start'})`);
  });
  return unnamed;
}

async function expectAllNamed(page: Page, where: string): Promise<number> {
  const unnamed = await unnamedControls(page);
  assert(unnamed.length === 0, `${where}: controls without an accessible name: ${unnamed.join('; ')}`);
  const snapshot = await page.locator('body').ariaSnapshot();
  return snapshot.split('\n').filter((l) => CONTROL_ROLES.some((r) => new RegExp(`^\\s*- '?${r} "`).test(l))).length;
}

/**
 * In-page source of the WCAG contrast computation: each sample's text colour against the first
 * opaque background behind it. A string, because the spec is compiled with esbuild's keepNames,
 * whose helper does not exist inside the page.
 */
const CONTRAST_SOURCE = `(selectors) => {
  const parse = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
  const lin = (v) => ((v /= 255) <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4));
  const luminance = (c) => 0.2126 * lin(c[0]) + 0.7152 * lin(c[1]) + 0.0722 * lin(c[2]);
  const background = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0.9)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  return selectors.map((selector) => {
    const el = document.querySelector(selector);
    if (!el) return { selector, ratio: 0 };
    const fg = luminance(parse(getComputedStyle(el).color).slice(0, 3));
    const bg = luminance(background(el));
    return { selector, ratio: (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05) };
  });
}`;

async function contrastRatios(page: Page, selectors: string[]): Promise<Array<{ selector: string; ratio: number }>> {
  return page.evaluate(`(${CONTRAST_SOURCE})(${JSON.stringify(selectors)})`);
}

/** Text styles users read all the time: toolbar, inspector labels and fields, analytics, strip, runs, status. */
const TEXT_SAMPLES = [
  '.toolbar button',
  '.inspector h2',
  '.inspector input',
  '.side-section .muted',
  '.layer-strip .muted',
  '.strip-detail',
  '.pipeline-node-title',
  '.pipeline-node-line',
  '.runs-panel button',
  '.status-bar',
];

export const specs = [
  spec('every control on every screen has an accessible name', async ({ page, url, workspaceDir }) => {
    await page.goto(url);
    await page.getByLabel('Total parameters').waitFor();
    // The check itself finds an unnamed control (an icon button without a label).
    await page.evaluate(`document.body.insertAdjacentHTML('beforeend', '<button id="unnamed-probe"><svg width="8" height="8"></svg></button>')`);
    const probe = await unnamedControls(page);
    assert(probe.length === 1 && probe[0]!.startsWith('button'), `the checker reports an unnamed button: ${JSON.stringify(probe)}`);
    await page.evaluate(`document.getElementById('unnamed-probe').remove()`);
    let checked = await expectAllNamed(page, 'pipeline');

    await page.getByRole('button', { name: 'Templates', exact: true }).click();
    await page.getByRole('dialog', { name: 'Template gallery' }).waitFor();
    checked += await expectAllNamed(page, 'template gallery');
    await page.getByRole('dialog', { name: 'Template gallery' }).getByRole('button', { name: 'Open template tiny-mtp' }).click();

    for (const step of ['Dataset', 'Tokenizer', 'Train', 'Evaluate', 'Profile', 'Export']) {
      await page.getByRole('group', { name: `${step} step` }).locator('.pipeline-node-title').click();
      checked += await expectAllNamed(page, `${step} inspector`);
    }

    await openLayerEditor(page);
    await page.getByRole('group', { name: /^Attention block, layer \d+/ }).first().click();
    checked += await expectAllNamed(page, 'layer editor with an attention block selected');
    await page.getByRole('group', { name: /^MoE block, layer \d+/ }).first().click();
    checked += await expectAllNamed(page, 'layer editor with a MoE block selected');

    const folder = join(workspaceDir, 'a11y-run');
    await mkdir(folder, { recursive: true });
    const events = [{ type: 'start', t: 0, job: 'train', steps: 4 }, ...[1, 2, 3, 4].map((s) => ({ type: 'step', t: s, step: s, loss: 4 / s, lr: 1e-3, tokens_per_s: 900 })), { type: 'done', t: 5 }];
    await writeFile(join(folder, 'events.jsonl'), events.map((e) => JSON.stringify(e)).join('\n') + '\n');
    await page.getByRole('button', { name: 'Open run folder…' }).click();
    checked += await expectAllNamed(page, 'run folder prompt');
    await page.getByLabel('Run folder path').fill(folder);
    await page.getByLabel('Run folder path').press('Enter');
    await page.getByRole('region', { name: /^Run / }).waitFor();
    checked += await expectAllNamed(page, 'runs panel with an open run');
    for (const tab of ['Compare', 'Profile', 'Precision']) {
      await page.getByRole('tab', { name: tab }).click();
      checked += await expectAllNamed(page, `${tab} tab`);
    }
    assert(checked > 100, `a meaningful number of named controls was checked (${checked})`);
  }),

  spec('dark and light themes are both readable (WCAG AA text contrast)', async ({ page, url, screenshot }) => {
    await openTemplate(page, url, 'tiny-hybrid');
    await page.getByRole('group', { name: 'Layers' }).getByRole('button').nth(4).hover();
    for (const theme of ['dark', 'light'] as const) {
      const toggle = page.getByRole('button', { name: theme === 'dark' ? 'Switch to light theme' : 'Switch to dark theme' });
      if (theme === 'light') {
        await page.getByRole('button', { name: 'Switch to light theme' }).click();
        await eventually(() => page.evaluate(() => document.documentElement.dataset.theme), (t) => t === 'light', 'the light theme is applied');
      } else {
        await toggle.waitFor();
      }
      const ratios = await contrastRatios(page, TEXT_SAMPLES);
      const poor = ratios.filter((r) => r.ratio < 4.5);
      assert(poor.length === 0, `${theme} theme: text below 4.5:1 contrast: ${poor.map((p) => `${p.selector} ${p.ratio.toFixed(2)}`).join(', ')}`);
      await screenshot(`theme-${theme}`);
    }
  }),
];
