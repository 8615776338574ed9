#!/usr/bin/env node
// MQAR recall by query order of a finished run (docs/cpu-benchmarks.md, MQAR): the raw logits of the
// run's final checkpoint on the first 128 held-out samples (`strata-engine logits`, the main head,
// fp32, one batch of 128), scored as the engine's eval scores them (argmax over the full vocabulary
// at every position whose target is a queried value). Prints the recall of the 1st, 2nd, ... query
// of a sample, so binding (recall at every position) can be told from the elimination shortcut
// (recall rising towards the last query, whose value is the only one not yet answered).
//
//   node scripts/experiments/mqar_query_order.mjs RUN_DIR
//
// Not here: training (mqar_run.mjs) or any assertion.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SAMPLES = 128;
const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const runDir = process.argv[2];
if (!runDir) throw new Error('usage: mqar_query_order.mjs RUN_DIR');

/** .stok: "STOKENS1", u64 header length, JSON header, u32 tokens[N], u8 mask[N]. */
function readStok(path) {
  const buf = readFileSync(path);
  if (buf.subarray(0, 8).toString('latin1') !== 'STOKENS1') throw new Error(`${path}: not a .stok file`);
  const headerLen = Number(buf.readBigUInt64LE(8));
  const header = JSON.parse(buf.subarray(16, 16 + headerLen).toString('utf8'));
  const at = 16 + headerLen;
  const tokens = new Uint32Array(buf.buffer.slice(buf.byteOffset + at, buf.byteOffset + at + 4 * header.n_tokens));
  const mask = header.has_mask ? buf.subarray(at + 4 * header.n_tokens, at + 5 * header.n_tokens) : null;
  return { header, tokens, mask };
}

/** The one F32 tensor "logits" of a safetensors file, with its shape. */
function readLogits(path) {
  const buf = readFileSync(path);
  const headerLen = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + headerLen).toString('utf8'));
  const t = header.logits;
  if (!t || t.dtype !== 'F32') throw new Error(`${path}: no F32 tensor "logits"`);
  const [begin, end] = t.data_offsets;
  const data = new Float32Array(buf.buffer.slice(buf.byteOffset + 8 + headerLen + begin, buf.byteOffset + 8 + headerLen + end));
  return { shape: t.shape, data };
}

const doc = JSON.parse(readFileSync(join(runDir, 'document.json'), 'utf8'));
const steps = readdirSync(join(runDir, 'checkpoints')).filter((d) => d.startsWith('step_')).sort();
const checkpoint = join(runDir, 'checkpoints', steps[steps.length - 1]);
const heldout = readStok(join(runDir, 'data', 'heldout.stok'));
const T = heldout.header.seq_len;
if (heldout.tokens.length < SAMPLES * T) throw new Error(`${runDir}: fewer than ${SAMPLES} held-out samples`);

const work = mkdtempSync(join(tmpdir(), 'mqar-order-'));
try {
  doc.pipeline.training.batch_size = SAMPLES; // the logits job scores one batch: make it 128 samples
  writeFileSync(join(work, 'doc.json'), JSON.stringify(doc));
  const out = join(work, 'logits.safetensors');
  const engine = join(repoRoot, 'build', 'native', 'strata-engine');
  const r = spawnSync(engine, ['logits', join(work, 'doc.json'), '--weights', join(checkpoint, 'model.safetensors'), '--data', join(runDir, 'data', 'heldout.stok'), '--out', out], {
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`strata-engine logits exited with ${r.status}: ${r.stderr}`);
  const { shape, data } = readLogits(out);
  const [B, TT, V] = shape;
  // a sample of T tokens is T - 1 predictions: logits row i - 1 predicts token i
  if (B !== SAMPLES || TT !== T - 1) throw new Error(`logits shape ${shape}, expected (${SAMPLES}, ${T - 1}, V)`);
  const hits = [];
  const counts = [];
  for (let b = 0; b < B; b++) {
    let q = 0;
    for (let i = 1; i < T; i++) {
      if (!heldout.mask[b * T + i]) continue;
      const row = data.subarray((b * TT + i - 1) * V, (b * TT + i) * V);
      let best = 0;
      for (let v = 1; v < V; v++) if (row[v] > row[best]) best = v;
      hits[q] = (hits[q] ?? 0) + (best === heldout.tokens[b * T + i] ? 1 : 0);
      counts[q] = (counts[q] ?? 0) + 1;
      q++;
    }
  }
  const total = hits.reduce((a, h) => a + h, 0) / counts.reduce((a, c) => a + c, 0);
  console.log(`${runDir} (${steps[steps.length - 1]}, ${SAMPLES} held-out samples): recall ${(100 * total).toFixed(2)}%`);
  console.log(`  by query order (%): ${hits.map((h, q) => ((100 * h) / counts[q]).toFixed(0)).join(' ')}`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
