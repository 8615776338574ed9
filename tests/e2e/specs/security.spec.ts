// End-to-end check of browser mode's Content-Security-Policy: the page is served with a strict
// policy header (own origin only, no inline or eval scripts, no plugins, frames or form posts, the
// /rpc socket allowed), and using the app under it — the analytics Web Worker computing figures
// for a design, a run's uPlot loss curve — raises no CSP violation and no console error. The run
// shown is a run folder opened from outside the runs folder (written here in the engine's event
// format). Electron's app:// policy is the same rule set (electron/security.ts, unit-tested).
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openTemplate } from '../app-actions.js';
import { assert, eventually, spec } from '../harness.js';

/** Directives the policy must carry exactly (others may be added). */
const REQUIRED_DIRECTIVES = [
  "default-src 'self'",
  "script-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
  "worker-src 'self' blob:",
];

export const specs = [
  spec('strict CSP header; the analytics worker and a uPlot chart run without violations', async ({ page, url, workspaceDir }) => {
    await page.addInitScript(() => {
      const seen: string[] = [];
      (window as unknown as { __cspViolations: string[] }).__cspViolations = seen;
      document.addEventListener('securitypolicyviolation', (e) => seen.push(`${e.violatedDirective} blocked ${e.blockedURI || 'inline'}`));
    });
    const consoleErrors: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error' || /Content Security Policy/i.test(m.text())) consoleErrors.push(m.text());
    });
    const workers: string[] = [];
    page.on('worker', (w) => workers.push(w.url()));

    const response = await page.goto(url);
    const csp = response?.headers()['content-security-policy'] ?? '';
    const directives = csp.split(';').map((d) => d.trim());
    for (const required of REQUIRED_DIRECTIVES) assert(directives.includes(required), `the CSP has "${required}": ${csp}`);
    const scriptSrc = directives.find((d) => d.startsWith('script-src')) ?? '';
    assert(!/unsafe-inline|unsafe-eval|\*/.test(scriptSrc), `script-src allows nothing but the origin: ${scriptSrc}`);
    assert(/connect-src 'self' ws:\/\/127\.0\.0\.1:\d+/.test(csp), `connect-src allows only the origin and its socket: ${csp}`);
    assert(response?.headers()['x-content-type-options'] === 'nosniff', 'nosniff is set');

    await openTemplate(page, url, 'tiny-hybrid');
    const origin = new URL(url).origin;
    await eventually(async () => workers, (w) => w.some((u) => u.startsWith(`${origin}/`) && /analytics-worker/.test(u)), 'the analytics run in a same-origin Web Worker');

    // A finished run from elsewhere, opened by path: its loss curve is drawn by uPlot.
    const folder = join(workspaceDir, 'csp-check-run');
    await mkdir(folder, { recursive: true });
    const lines = [{ type: 'start', t: 0, job: 'train', steps: 20 }];
    for (let s = 1; s <= 20; s++) lines.push({ type: 'step', t: s, step: s, loss: 5 / Math.sqrt(s), lr: 1e-3, tokens_per_s: 1000 } as never);
    lines.push({ type: 'done', t: 21, reason: 'finished' } as never);
    await writeFile(join(folder, 'events.jsonl'), lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
    await page.getByRole('button', { name: 'Open run folder…' }).click();
    const prompt = page.getByRole('dialog', { name: 'Open run folder' });
    await prompt.getByLabel('Run folder path').fill(folder);
    await prompt.getByLabel('Run folder path').press('Enter');
    const chart = page.getByRole('img', { name: 'Loss curve' });
    await chart.locator('canvas').first().waitFor();
    await eventually(() => chart.locator('figcaption').innerText(), (t) => /at step 20/.test(t), 'the uPlot loss curve shows the run');

    const violations = await page.evaluate(() => (window as unknown as { __cspViolations: string[] }).__cspViolations);
    assert(violations.length === 0, `no CSP violations: ${violations.join('; ')}`);
    assert(consoleErrors.length === 0, `no console errors: ${consoleErrors.join('; ')}`);
  }),
];
