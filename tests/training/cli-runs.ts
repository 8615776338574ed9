// Helpers of the training-quality tests (tests/training): write a template with test-sized
// training settings, run the real `strata` CLI (engine/cli/bin.mjs, which drives the native engine
// through the Node binding) with --json, and read its events back. Nothing here is mocked: every
// number the tests judge comes from the engine's own events.
//
// Not here: the assertions (the *.test.ts files) or any engine code.
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI = join(REPO_ROOT, 'engine', 'cli', 'bin.mjs');

/** One JSON event line of the engine (type plus whatever fields that type carries). */
export interface EngineEvent {
  type: string;
  [field: string]: unknown;
}

/** What a test changes in a template: pipeline fields, and optionally the model's precision policy. */
export interface DesignOverrides {
  dataset?: object;
  training: object;
  evaluations?: object[];
  precision?: object;
}

/** A bundled template (templates/NAME.json) with the overrides applied, written to `path`. */
export function writeDesign(path: string, template: string, pipeline: DesignOverrides): string {
  const doc = JSON.parse(readFileSync(join(REPO_ROOT, 'templates', `${template}.json`), 'utf8'));
  if (pipeline.precision) doc.model.precision = pipeline.precision;
  if (pipeline.dataset) doc.pipeline.dataset = pipeline.dataset;
  doc.pipeline.training = { ...doc.pipeline.training, ...pipeline.training };
  if (pipeline.evaluations) doc.pipeline.evaluations = pipeline.evaluations;
  writeFileSync(path, `${JSON.stringify(doc, null, 2)}\n`);
  return path;
}

/**
 * Runs `strata ARGS --json` to completion; fails with the CLI's own output when it exits non-zero.
 * Two OpenMP threads, waiting passively at barriers (unless the environment says otherwise): CI
 * runs these beside other work, where spinning threads that lose their core slow a run tenfold.
 */
export function strataJson(args: string[]): EngineEvent[] {
  const result = spawnSync(process.execPath, [CLI, ...args, '--json'], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
    env: { ...process.env, OMP_NUM_THREADS: process.env.OMP_NUM_THREADS ?? '2', OMP_WAIT_POLICY: process.env.OMP_WAIT_POLICY ?? 'PASSIVE' },
  });
  if (result.status !== 0) {
    const tail = `${result.stdout ?? ''}\n${result.stderr ?? ''}`.trim().split('\n').slice(-8).join('\n');
    throw new Error(`strata ${args.join(' ')} exited with ${result.status ?? result.signal}:\n${tail}`);
  }
  return result.stdout
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as EngineEvent);
}

export function eventsOfType(events: EngineEvent[], type: string): EngineEvent[] {
  return events.filter((e) => e.type === type);
}

/** The last "eval" event of a run (the held-out evaluation after the final step). */
export function finalEval(events: EngineEvent[]): EngineEvent {
  const evals = eventsOfType(events, 'eval');
  const last = evals[evals.length - 1];
  if (!last) throw new Error(`the run printed no eval event (events: ${[...new Set(events.map((e) => e.type))].join(', ')})`);
  return last;
}

/** Loss of every "step" event, by step number. */
export function stepLosses(events: EngineEvent[]): Map<number, number> {
  return new Map(eventsOfType(events, 'step').map((e) => [Number(e.step), Number(e.loss)]));
}
