// Test fixture (not product code): a stand-in for the `strata` CLI's exporters used by the export
// service tests. `export-hf SOURCE --out DIR` / `export-megatron DOC --out DIR [flags]` write
// DIR/args.json (what they were called with) and DIR/sub/readme.txt, print one line, and exit 0;
// a document whose model is named "fail ..." makes them print `strata: ...` to stderr and exit 2,
// as the real CLI does for bad input.
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const [command, source, ...rest] = process.argv.slice(2);
const out = rest[rest.indexOf('--out') + 1];
const docFile = statSync(source).isDirectory() ? join(source, 'document.json') : source;
const doc = JSON.parse(readFileSync(docFile, 'utf8'));
if (doc.model.name.startsWith('fail')) {
  process.stderr.write(`strata: ${command}: layer 0 (mlp): cannot export this design\n`);
  process.exit(2);
}
mkdirSync(join(out, 'sub'), { recursive: true });
writeFileSync(join(out, 'args.json'), JSON.stringify({ command, source, rest }));
writeFileSync(join(out, 'sub', 'readme.txt'), 'exported');
process.stdout.write(`${command}: wrote ${out}\n`);
