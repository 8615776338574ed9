// Test fixture (not product code): a stand-in for the `strata` CLI process used by the run
// service tests. It follows the CLI's documented contract — `KIND DOC --json --run-dir DIR` or
// `resume DIR --json` — and appends the documented events to DIR/events.jsonl: a start, a step
// every 15 ms until pipeline.training.steps, then done. A model named "crash ..." writes to stderr
// and exits with code 3 after its start event; SIGINT exits at once without a final event, so
// the tests see what the host does when the engine dies mid-run.
import { appendFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const [command, target, ...rest] = process.argv.slice(2);
const dir = command === 'resume' ? target : rest[rest.indexOf('--run-dir') + 1];
const doc = JSON.parse(readFileSync(command === 'resume' ? join(dir, 'document.json') : target, 'utf8'));
const started = Date.now();
const write = (event) => {
  const line = JSON.stringify({ ...event, t: (Date.now() - started) / 1000 });
  appendFileSync(join(dir, 'events.jsonl'), `${line}\n`);
  process.stdout.write(`${line}\n`);
};
process.on('SIGINT', () => process.exit(130));

const steps = doc.pipeline.training.steps;
write({ type: 'start', kind: command === 'resume' ? 'train' : command, steps });
if (doc.model.name.startsWith('crash')) {
  process.stderr.write('engine: native assertion failed in ssd_scan\n');
  process.exit(3);
}
// Resuming continues after the last step already in the file.
let step = 0;
if (command === 'resume')
  for (const line of readFileSync(join(dir, 'events.jsonl'), 'utf8').split('\n'))
    if (line.includes('"step"')) step = Math.max(step, JSON.parse(line).step ?? 0);
const timer = setInterval(() => {
  step++;
  write({ type: 'step', step, loss: 5 / step, lr: 0.001, tokens_per_s: 1000 + step });
  if (step >= steps) {
    clearInterval(timer);
    write({ type: 'done' });
  }
}, 15);
