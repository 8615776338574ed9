// Tests of the run service and run-folder reading: listing 2,000 synthetic run folders (every
// status, folders without run.json, event files larger than the summary window, resumed runs),
// event paging with partial last lines, and the live lifecycle (events pushed, stop, crash,
// resume) with a real child process that writes events the way the `strata` CLI documents.
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type RunEventMessage, type RunStatus, StrataHostError } from '../contract.js';
import { documentFromModel } from '../../engine/spec/document.js';
import { nodeChildLauncher } from './jobs.js';
import { EventsTailer, readEventsFrom, splitCompleteLines } from './run-folders.js';
import { createRunService } from './runs.js';

const FIXTURE_CLI = resolve(import.meta.dirname, 'test-fixtures/event-writer.mjs');

function doc(name: string, steps = 20) {
  return documentFromModel(
    { name, vocab_size: 264, d_model: 32, stack: [{ kind: 'mlp', ffn: 64 }] },
    { training: { steps } },
  );
}

const line = (event: object) => `${JSON.stringify(event)}\n`;

/** Writes one synthetic run folder whose expected summary fields are derived from `i`. */
function writeRun(runsDir: string, i: number): { runId: string; status: RunStatus; step: number; withMeta: boolean } {
  const runId = `run-${String(i).padStart(5, '0')}`;
  const dir = join(runsDir, runId);
  mkdirSync(dir, { recursive: true });
  const withMeta = i % 5 !== 0; // every fifth folder came from elsewhere: no run.json
  const variant = i % 4; // 0 done, 1 error, 2 interrupted, 3 stopped
  const steps = 10 + (i % 7);
  const createdAt = new Date(Date.UTC(2025, 0, 1) + i * 60_000).toISOString();
  if (withMeta)
    writeFileSync(join(dir, 'run.json'), JSON.stringify({ runId, name: `run ${i}`, kind: 'train', device: 'cpu', model: `model ${i}`, createdAt, steps, stopped: variant === 3 }));
  writeFileSync(join(dir, 'document.json'), JSON.stringify(doc(`model ${i}`, steps)));
  let text = line({ type: 'start', t: 0, kind: 'train', steps });
  const reached = variant === 0 ? steps : Math.max(1, steps - 3);
  for (let s = 1; s <= reached; s++) text += line({ type: 'step', t: s * 0.5, step: s, loss: 10 / s, lr: 1e-3, tokens_per_s: 100 * s });
  text += line({ type: 'eval', t: reached * 0.5, step: reached, loss: 1 + i / 10000 });
  if (variant === 0) text += line({ type: 'done', t: reached * 0.5 + 0.1 });
  if (variant === 1) text += line({ type: 'error', t: reached * 0.5 + 0.1, message: `diverged at ${reached}` });
  if (variant === 3) text += line({ type: 'done', t: reached * 0.5 + 0.1 });
  writeFileSync(join(dir, 'events.jsonl'), text);
  const status: RunStatus = variant === 0 ? 'done' : variant === 1 ? 'error' : variant === 2 ? 'interrupted' : withMeta ? 'stopped' : 'done';
  return { runId, status, step: reached, withMeta };
}

describe('run listing from folders', () => {
  it('summarizes 2,000 run folders correctly', async () => {
    const runsDir = mkdtempSync(join(tmpdir(), 'strata-runs-'));
    const expected = Array.from({ length: 2000 }, (_, i) => writeRun(runsDir, i));
    mkdirSync(join(runsDir, 'not-a-run')); // an unrelated folder is ignored
    const service = createRunService({ runsDir, cliScript: FIXTURE_CLI, cwd: runsDir, launcher: nodeChildLauncher });
    const list = await service.list();
    expect(list).toHaveLength(2000);
    const byId = new Map(list.map((s) => [s.runId, s]));
    for (const [i, e] of expected.entries()) {
      const s = byId.get(e.runId)!;
      expect(s.status, e.runId).toBe(e.status);
      expect(s.step, e.runId).toBe(e.step);
      expect(s.lastLoss).toBeCloseTo(10 / e.step, 12);
      expect(s.lastEvalLoss).toBeCloseTo(1 + i / 10000, 12);
      expect(s.tokensPerS).toBe(100 * e.step);
      expect(s.totalSteps).toBe(10 + (i % 7));
      expect(s.model).toBe(`model ${i}`);
      expect(s.name).toBe(e.withMeta ? `run ${i}` : `model ${i}`);
      if (e.status === 'error') expect(s.error).toBe(`diverged at ${e.step}`);
    }
    // Newest first among folders with a recorded creation time.
    const withMeta = list.filter((s) => byId.get(s.runId) && expected[Number(s.runId.slice(4))]!.withMeta);
    expect(withMeta[0]!.runId).toBe('run-01999');
    // A second listing (served from the cache) is identical; a changed folder is re-read.
    expect(await service.list()).toEqual(list);
    appendFileSync(join(runsDir, 'run-00002', 'events.jsonl'), line({ type: 'done', t: 99 }));
    expect((await service.list()).find((s) => s.runId === 'run-00002')?.status).toBe('done');
  });

  it('reads the tail of event files larger than the summary window', async () => {
    const runsDir = mkdtempSync(join(tmpdir(), 'strata-runs-'));
    const dir = join(runsDir, 'big');
    mkdirSync(dir);
    let text = line({ type: 'start', t: 0, steps: 5000 });
    for (let s = 1; s <= 5000; s++) text += line({ type: 'step', t: s, step: s, loss: 1 / s, lr: 1e-3, tokens_per_s: 7, note: 'x'.repeat(40) });
    writeFileSync(join(dir, 'events.jsonl'), text);
    expect(text.length).toBeGreaterThan(256 * 1024);
    const service = createRunService({ runsDir, cliScript: FIXTURE_CLI, cwd: runsDir, launcher: nodeChildLauncher });
    const [s] = await service.list();
    expect(s).toMatchObject({ step: 5000, totalSteps: 5000, status: 'interrupted', elapsedS: 5000 });
  });

  it('treats a run resumed after a stop as not ended', async () => {
    const runsDir = mkdtempSync(join(tmpdir(), 'strata-runs-'));
    const dir = join(runsDir, 'resumed');
    mkdirSync(dir);
    writeFileSync(join(dir, 'events.jsonl'), [
      line({ type: 'start', t: 0 }),
      line({ type: 'step', t: 1, step: 1, loss: 2, lr: 1, tokens_per_s: 1 }),
      line({ type: 'done', t: 1, reason: 'stopped' }),
      line({ type: 'start', t: 0 }),
      line({ type: 'step', t: 1, step: 2, loss: 1, lr: 1, tokens_per_s: 1 }),
    ].join(''));
    const service = createRunService({ runsDir, cliScript: FIXTURE_CLI, cwd: runsDir, launcher: nodeChildLauncher });
    expect((await service.list())[0]).toMatchObject({ status: 'interrupted', step: 2 });
  });

  it('pages events by line and ignores a half-written last line', async () => {
    const runsDir = mkdtempSync(join(tmpdir(), 'strata-runs-'));
    const dir = join(runsDir, 'paged');
    mkdirSync(dir);
    writeFileSync(join(dir, 'events.jsonl'), `${line({ type: 'start', t: 0 })}not json\n${line({ type: 'step', t: 1, step: 1, loss: 1, lr: 1, tokens_per_s: 1 })}{"type":"step","t":2,"st`);
    const page = await readEventsFrom(dir, 0);
    expect(page.nextLine).toBe(3);
    expect(page.events.map((e) => e.type)).toEqual(['start', 'step']);
    expect((await readEventsFrom(dir, 2)).events).toHaveLength(1);
    const tailer = new EventsTailer(join(dir, 'events.jsonl'));
    expect((await tailer.poll()).map((x) => x.line)).toEqual([0, 2]);
    appendFileSync(join(dir, 'events.jsonl'), 'ep":2,"loss":0.5,"lr":1,"tokens_per_s":1}\n');
    expect(await tailer.poll()).toEqual([{ line: 3, event: { type: 'step', t: 2, step: 2, loss: 0.5, lr: 1, tokens_per_s: 1 } }]);
    expect(splitCompleteLines('{"type":"done","t":1}').lines).toHaveLength(1); // complete, just no newline
  });

  it('pages long event files in bounded pages that follow the file as it grows', async () => {
    const runsDir = mkdtempSync(join(tmpdir(), 'strata-runs-'));
    const dir = join(runsDir, 'long');
    mkdirSync(dir);
    const stepLine = (s: number) => line({ type: 'step', t: s, step: s, loss: 1, lr: 1, tokens_per_s: 1 });
    writeFileSync(join(dir, 'events.jsonl'), Array.from({ length: 12_000 }, (_, i) => stepLine(i)).join(''));
    const steps: number[] = [];
    let from = 0;
    for (;;) {
      const page = await readEventsFrom(dir, from, 5000);
      if (page.events.length === 0) break;
      expect(page.nextLine - from).toBeLessThanOrEqual(5000);
      steps.push(...page.events.map((e) => e.step as number));
      from = page.nextLine;
    }
    expect(steps).toEqual(Array.from({ length: 12_000 }, (_, i) => i));
    appendFileSync(join(dir, 'events.jsonl'), `${stepLine(12_000)}{"type":"done","t":9}`);
    const tail = await readEventsFrom(dir, from);
    expect(tail.events.map((e) => e.type)).toEqual(['step', 'done']);
    expect(tail.nextLine).toBe(12_002);
    expect(tail.lastEvent).toEqual({ type: 'done', t: 9 });
    expect((await readEventsFrom(dir, 99_999)).events).toEqual([]);
  });

  it('refuses run ids that are not folder names', async () => {
    const runsDir = mkdtempSync(join(tmpdir(), 'strata-runs-'));
    const service = createRunService({ runsDir, cliScript: FIXTURE_CLI, cwd: runsDir, launcher: nodeChildLauncher });
    await expect(service.events('../etc', 0)).rejects.toMatchObject({ code: 'bad_request' });
    await expect(service.events('missing', 0)).rejects.toMatchObject({ code: 'not_found' });
  });
});

describe('live runs (child process writing documented events)', () => {
  function setup() {
    const runsDir = mkdtempSync(join(tmpdir(), 'strata-live-'));
    const service = createRunService({ runsDir, cliScript: FIXTURE_CLI, cwd: runsDir, launcher: nodeChildLauncher, pollMs: 20, stopGraceMs: 2000 });
    const messages: RunEventMessage[] = [];
    service.onEvent((m) => messages.push(m));
    return { runsDir, service, messages };
  }
  const until = async (check: () => boolean) => {
    while (!check()) await new Promise((r) => setTimeout(r, 10));
  };

  it('pushes every event of a finished run once, in line order', async () => {
    const { service, messages } = setup();
    const { runId, dir } = await service.start({ doc: doc('live', 8), kind: 'train', device: 'cpu' });
    await until(() => messages.some((m) => m.event.type === 'done'));
    const mine = messages.filter((m) => m.runId === runId);
    expect(mine.map((m) => m.line)).toEqual(mine.map((_, i) => i));
    expect(mine.map((m) => m.event.type)).toEqual(['start', ...Array(8).fill('step'), 'done']);
    const page = await service.events(runId, 0);
    expect(page.events).toEqual(mine.map((m) => m.event));
    const asRun = JSON.parse(readFileSync(join(dir, 'document.json'), 'utf8'));
    expect(asRun.pipeline.training.device).toBe('cpu');
  });

  it('stops a run: the folder ends in a stopped terminal event', async () => {
    const { service, messages } = setup();
    const { runId } = await service.start({ doc: doc('long', 100000), kind: 'train', device: 'cpu', steps: 100000 });
    await until(() => messages.filter((m) => m.event.type === 'step').length >= 2);
    await service.stop(runId);
    const last = messages.at(-1)!;
    expect(last.event).toMatchObject({ type: 'done', reason: 'stopped' });
    const [summary] = await service.list();
    expect(summary).toMatchObject({ runId, status: 'stopped', totalSteps: 100000 });
    expect((await service.events(runId, 0)).status).toBe('stopped');
    await service.stop(runId); // idempotent

    // Resume continues in the same folder and numbering.
    const before = (await service.events(runId, 0)).nextLine;
    messages.length = 0;
    await service.resume(runId);
    await expect(service.resume(runId)).rejects.toMatchObject({ code: 'conflict' });
    await until(() => messages.filter((m) => m.event.type === 'step').length >= 2);
    expect(messages[0]).toMatchObject({ line: before, event: { type: 'start' } });
    expect((await service.list())[0]!.status).toBe('running');
    await service.stop(runId);
  });

  it('turns an engine crash into an error event naming the exit code and stderr', async () => {
    const { service, messages } = setup();
    const { runId } = await service.start({ doc: doc('crash test'), kind: 'train', device: 'cpu' });
    await until(() => messages.some((m) => m.event.type === 'error'));
    const error = messages.find((m) => m.event.type === 'error')!.event;
    expect(error.message).toBe('engine process exited with code 3: engine: native assertion failed in ssd_scan');
    const summary = (await service.list()).find((s) => s.runId === runId);
    expect(summary).toMatchObject({ status: 'error', error: error.message });
  });

  it('validates start requests', async () => {
    const { service } = setup();
    await expect(service.start({ doc: doc('x'), kind: 'dance' as never, device: 'cpu' })).rejects.toBeInstanceOf(StrataHostError);
    await expect(service.start({ doc: doc('x'), kind: 'train', device: 'cpu', steps: 0 })).rejects.toMatchObject({ code: 'bad_request' });
    const bad = JSON.parse(JSON.stringify(doc('x')));
    bad.model.d_model = 0;
    await expect(service.start({ doc: bad, kind: 'train', device: 'cpu' })).rejects.toMatchObject({ code: 'invalid_document' });
    expect(await service.list()).toEqual([]);
  });
});

describe('importing run folders made elsewhere', () => {
  /** A folder as the native strata-engine CLI leaves it on a GPU box: no run.json. */
  function engineRunFolder(dir: string, steps = 40) {
    mkdirSync(join(dir, 'checkpoints', 'step-40'), { recursive: true });
    writeFileSync(join(dir, 'document.json'), JSON.stringify(doc('gpu box design', steps)));
    let text = line({ type: 'start', t: 0.5, job: 'train', steps, backend: 'cuda' });
    for (let s = 1; s <= steps; s++) text += line({ type: 'step', t: s, step: s, loss: 4 / s, lr: 1e-3, tokens_per_s: 50_000 });
    text += line({ type: 'done', t: steps + 1, reason: 'finished', steps_done: steps });
    writeFileSync(join(dir, 'events.jsonl'), text);
  }

  it('links the folder into the runs list once, summarizes it from its own files and reads its events', async () => {
    const work = mkdtempSync(join(tmpdir(), 'strata-import-'));
    const runsDir = join(work, 'runs');
    const service = createRunService({ runsDir, cliScript: FIXTURE_CLI, cwd: work, launcher: nodeChildLauncher, workspaceDir: work });
    const outside = join(work, 'from-gpu-box', 'nvfp4 run #7');
    engineRunFolder(outside);

    const handle = await service.importFolder(outside);
    expect(handle).toEqual({ runId: 'nvfp4-run-7', dir: outside });
    expect(await service.importFolder('from-gpu-box/nvfp4 run #7')).toEqual(handle); // relative to the workspace, same folder
    const [listed, ...others] = await service.list();
    expect(others).toEqual([]);
    expect(listed).toMatchObject({ runId: 'nvfp4-run-7', name: 'gpu box design', status: 'done', step: 40, totalSteps: 40, kind: 'train' });
    const page = await service.events('nvfp4-run-7', 0);
    expect(page.events).toHaveLength(42);
    expect((await service.document('nvfp4-run-7')).model.name).toBe('gpu box design');

    // Another folder with the same name gets its own id; runs already in runsDir are returned as they are.
    const twin = join(work, 'elsewhere', 'nvfp4 run #7');
    engineRunFolder(twin, 5);
    expect((await service.importFolder(twin)).runId).toBe('nvfp4-run-7-2');
    mkdirSync(join(runsDir, 'native-run'));
    writeFileSync(join(runsDir, 'native-run', 'events.jsonl'), line({ type: 'start', t: 0 }));
    expect(await service.importFolder(join(runsDir, 'native-run'))).toEqual({ runId: 'native-run', dir: join(runsDir, 'native-run') });
    expect((await service.list()).map((r) => r.runId).sort()).toEqual(['native-run', 'nvfp4-run-7', 'nvfp4-run-7-2']);
  });

  it('refuses what is not a run folder, naming the path', async () => {
    const work = mkdtempSync(join(tmpdir(), 'strata-import-bad-'));
    const service = createRunService({ runsDir: join(work, 'runs'), cliScript: FIXTURE_CLI, cwd: work, launcher: nodeChildLauncher, workspaceDir: work });
    await expect(service.importFolder(join(work, 'missing'))).rejects.toMatchObject({ code: 'not_found', message: `${join(work, 'missing')}: no such folder` });
    mkdirSync(join(work, 'empty'));
    await expect(service.importFolder(join(work, 'empty'))).rejects.toMatchObject({ code: 'bad_request', message: `${join(work, 'empty')}: not a run folder (it has no events.jsonl)` });
    writeFileSync(join(work, 'file.txt'), 'x');
    await expect(service.importFolder(join(work, 'file.txt'))).rejects.toMatchObject({ code: 'bad_request' });
    await expect(service.importFolder('' as string)).rejects.toBeInstanceOf(StrataHostError);
  });
});

describe('summaries of runs whose last step is far from the end of events.jsonl', () => {
  it('reads further back than the tail window to find the last step (many precision events after it)', async () => {
    const work = mkdtempSync(join(tmpdir(), 'strata-summary-far-'));
    const runsDir = join(work, 'runs');
    const dir = join(runsDir, 'nvfp4-run');
    mkdirSync(dir, { recursive: true });
    let text = line({ type: 'start', t: 0, job: 'train', steps: 40 });
    for (let s = 1; s <= 40; s++) text += line({ type: 'step', t: s, step: s, loss: 4 / s, lr: 1e-3, tokens_per_s: 30 });
    const histogram = Array.from({ length: 64 }, (_, k) => k * 1000);
    for (let k = 0; k < 400; k++) text += line({ type: 'precision', t: 41, step: 39, layer: k % 10, role: 'moe.expert_fc1', pass: 'fprop', operand: 'weight', rel_err: 0.1, histogram });
    text += line({ type: 'done', t: 42, reason: 'finished' });
    expect(Buffer.byteLength(text)).toBeGreaterThan(2 * 64 * 1024);
    expect(text.slice(-64 * 1024)).not.toContain('"type":"step"'); // no step in the tail window
    writeFileSync(join(dir, 'events.jsonl'), text);
    const service = createRunService({ runsDir, cliScript: FIXTURE_CLI, cwd: work, launcher: nodeChildLauncher });
    const [summary] = await service.list();
    expect(summary).toMatchObject({ runId: 'nvfp4-run', status: 'done', step: 40, totalSteps: 40, lastLoss: 0.1, elapsedS: 42 });
  });
});
