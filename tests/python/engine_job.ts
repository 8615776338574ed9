// Helper for the Python tiers (not product code): runs one engine job through the Node binding
// (engine/runtime/engine.ts) and prints its result as one JSON line on stdout.
// Usage: npx tsx tests/python/engine_job.ts KIND REQUEST.json
import { readFileSync } from 'node:fs';
import { type JobKind, loadEngine } from '../../engine/runtime/engine.js';

const [kind, requestFile] = process.argv.slice(2);
if (!kind || !requestFile) {
  process.stderr.write('usage: engine_job.ts KIND REQUEST.json\n');
  process.exit(2);
}
const engine = loadEngine();
const request = JSON.parse(readFileSync(requestFile, 'utf8'));
const jobs: Record<string, (r: never) => { result: Promise<unknown> }> = {
  train: (r) => engine.train(r, () => {}),
  eval: (r) => engine.eval(r, () => {}),
  generate: (r) => engine.generate(r, () => {}),
  profile: (r) => engine.profile(r, () => {}),
  init: (r) => engine.init(r, () => {}),
  grads: (r) => engine.grads(r, () => {}),
  logits: (r) => engine.logits(r, () => {}),
};
const start = jobs[kind as JobKind];
if (!start) {
  process.stderr.write(`unknown job kind ${kind}\n`);
  process.exit(2);
}
const result = await start(request as never).result;
process.stdout.write(`${JSON.stringify(result)}\n`);
