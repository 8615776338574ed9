// End-to-end spec of runs made elsewhere: the native engine CLI (`strata-engine train`, as on a
// remote GPU box) writes a run folder with events.jsonl, document.json and checkpoints (run.json
// only in newer engine builds), outside the app's runs folder; the user opens it by path from the runs panel and sees
// it in the runs list with its design's name, its steps and its loss curve. Needs the built engine.
import { spawn } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { assert, eventually, spec, textOf } from '../harness.js';

const ROOT = resolve(import.meta.dirname, '..', '..', '..');
const ENGINE = join(ROOT, 'build', 'native', 'strata-engine');

function run(command: string, args: string[]): Promise<string> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(command, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (c) => (output += c));
    child.stderr.setEncoding('utf8').on('data', (c) => (output += c));
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolveRun(output) : reject(new Error(`${command} ${args.join(' ')} exited ${code}:\n${output}`))));
  });
}

export const specs = [
  spec(
    'open a run folder the native engine CLI wrote elsewhere into the runs list',
    async ({ page, url, workspaceDir }) => {
      assert(existsSync(ENGINE), `the native engine CLI is built (${ENGINE}; npm run build:engine)`);
      const box = join(workspaceDir, 'from-gpu-box');
      await mkdir(box, { recursive: true });
      const doc = JSON.parse(await readFile(join(ROOT, 'templates', 'tiny-hybrid.json'), 'utf8'));
      doc.model.name = 'gpu-box-design';
      doc.pipeline.training = { ...doc.pipeline.training, steps: 3, batch_size: 2, seq_len: 32, warmup_steps: 1, eval_every: 0 };
      await writeFile(join(box, 'design.json'), JSON.stringify(doc));
      const runDir = join(box, 'run-0042');
      await run(ENGINE, ['train', join(box, 'design.json'), '--data', join(ROOT, 'assets', 'corpus', 'train.txt'), '--run-dir', runDir, '--json']);
      // Newer engine builds also write run.json; older ones and other tools may not (the host's unit
      // tests cover folders without it). Either way the folder opens the same.
      assert(existsSync(join(runDir, 'events.jsonl')) && existsSync(join(runDir, 'document.json')), 'the engine wrote events.jsonl and document.json');

      await page.goto(url);
      await page.getByRole('button', { name: 'Open run folder…' }).click();
      const prompt = page.getByRole('dialog', { name: 'Open run folder' });
      await prompt.getByLabel('Run folder path').fill(runDir);
      await prompt.getByRole('button', { name: 'Open run' }).click();

      const active = page.getByRole('region', { name: 'Run run-0042' });
      await active.waitFor();
      await active.getByText('done', { exact: true }).waitFor();
      await eventually(() => textOf(active.locator('.run-status-line')), (t) => t.includes('gpu-box-design') && t.includes('step 3 / 3'), 'the open run shows its design name and step 3 / 3');
      await eventually(() => active.getByRole('img', { name: 'Loss curve' }).locator('figcaption').innerText(), (t) => /at step 3\b/.test(t), 'its loss curve is drawn');
      const listed = page.getByRole('grid', { name: 'Runs' });
      await eventually(() => textOf(listed), (t) => t.includes('gpu-box-design') && t.includes('3/3'), 'the runs list has it with its steps');
      await eventually(() => textOf(page.getByRole('status', { name: 'Status' })), (t) => t === `Opened run folder ${runDir} as run-0042`, 'the status bar says where it came from');

      // Opening a folder that is not a run explains why, naming it.
      await page.getByRole('button', { name: 'Open run folder…' }).click();
      await prompt.getByLabel('Run folder path').fill(box);
      await prompt.getByLabel('Run folder path').press('Enter');
      await eventually(() => textOf(page.getByRole('status', { name: 'Status' })), (t) => t.includes(`${box}: not a run folder (it has no events.jsonl)`), 'a folder without events.jsonl is refused with its path');
    },
    180_000,
  ),
];
