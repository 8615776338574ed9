#!/usr/bin/env node
// One MQAR training run through the real CLI, as tests/training/mqar-recall.test.ts does it, for the
// measurements in docs/cpu-benchmarks.md (MQAR): a bundled template, optionally with its single
// repeat's count changed (--layers N: tiny-mamba2's block repeated N times, for the equal-size
// Mamba-2), trained in fp32 on the mqar task with a constant learning rate after 20 warmup steps;
// held-out recall and loss every --eval-every steps. Prints the parameter counts, each eval, and the
// run folder (whose checkpoint mqar_query_order.mjs reads).
//
//   OMP_NUM_THREADS=1 node scripts/experiments/mqar_run.mjs tiny-mamba2 --layers 13 --seed 9 \
//     --pairs 16 --seq-len 66 --batch 16 --lr 1e-3 --steps 2000 --eval-every 500 --run-dir /tmp/m13-s9
//
// Not here: any assertion (the tests) or scoring by query order (mqar_query_order.mjs).
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const [template, ...rest] = process.argv.slice(2);
if (!template) throw new Error('usage: mqar_run.mjs TEMPLATE [--layers N] --seed S --pairs P --seq-len T --batch B --lr X --steps N --eval-every E --run-dir DIR');
const opt = {};
for (let i = 0; i < rest.length; i += 2) opt[rest[i].replace(/^--/, '')] = rest[i + 1];
for (const k of ['seed', 'pairs', 'seq-len', 'batch', 'lr', 'steps', 'run-dir']) if (opt[k] === undefined) throw new Error(`missing --${k}`);

const doc = JSON.parse(readFileSync(join(repoRoot, 'templates', `${template}.json`), 'utf8'));
if (opt.layers !== undefined) {
  if (doc.model.stack.length !== 1 || doc.model.stack[0].kind !== 'repeat') throw new Error(`${template}: --layers needs a stack of one repeat`);
  doc.model.stack[0].count = Number(opt.layers);
  doc.model.name = `${doc.model.name} x${opt.layers}`;
}
doc.model.precision = { default: 'fp32', rules: [] };
doc.pipeline.dataset = { source: 'task', task: 'mqar', num_pairs: Number(opt.pairs) };
doc.pipeline.training = {
  ...doc.pipeline.training,
  steps: Number(opt.steps), batch_size: Number(opt.batch), seq_len: Number(opt['seq-len']), lr: Number(opt.lr),
  warmup_steps: 20, schedule: 'constant', eval_every: Number(opt['eval-every'] ?? 0), checkpoint_every: 0, seed: Number(opt.seed),
};
doc.pipeline.evaluations = [{ kind: 'mqar', batches: 8 }];

const runDir = opt['run-dir'];
mkdirSync(runDir, { recursive: true });
const design = join(runDir, 'design.json');
writeFileSync(design, `${JSON.stringify(doc, null, 2)}\n`);

const cli = join(repoRoot, 'engine', 'cli', 'bin.mjs');
const analyze = spawnSync(process.execPath, [cli, 'analyze', design, '--json'], { cwd: repoRoot, encoding: 'utf8' });
const params = JSON.parse(analyze.stdout).params;
console.log(`${template}${opt.layers ? ` x${opt.layers}` : ''} seed ${opt.seed}: params total ${params.total}, active ${params.active}`);

const started = Date.now();
const run = spawnSync(process.execPath, [cli, 'train', design, '--run-dir', runDir, '--json'], {
  cwd: repoRoot,
  encoding: 'utf8',
  maxBuffer: 256 * 1024 * 1024,
  env: { ...process.env, OMP_NUM_THREADS: process.env.OMP_NUM_THREADS ?? '1', OMP_WAIT_POLICY: process.env.OMP_WAIT_POLICY ?? 'PASSIVE' },
});
writeFileSync(join(runDir, 'events.jsonl'), run.stdout ?? '');
if (run.status !== 0) throw new Error(`train exited with ${run.status}:\n${(run.stderr ?? '').slice(-2000)}`);
for (const line of run.stdout.split('\n')) {
  if (!line.startsWith('{')) continue;
  const e = JSON.parse(line);
  if (e.type === 'eval') console.log(`  step ${e.step}: recall ${(100 * e.accuracy).toFixed(2)}%, held-out loss ${e.loss.toFixed(4)}`);
}
console.log(`  ${((Date.now() - started) / 1000).toFixed(0)} s, run folder ${runDir}`);
