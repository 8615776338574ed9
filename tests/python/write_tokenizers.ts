// Helper for tests/python/test_tokenizer_export.py (not product code): writes the HF tokenizer
// files of both Strata tokenizers into OUT/byte and OUT/gpt2, and OUT/encodings.json with the ids
// Strata's own tokenizers give for a few texts, so Python can check transformers agrees.
// Usage: npx tsx tests/python/write_tokenizers.ts OUT "text 1" "text 2" ...
import { join } from 'node:path';
import { writeFileAtomic } from '../../engine/runtime/atomic-write.js';
import { writeHfTokenizerFiles } from '../../engine/runtime/tokenizers/hf-files.js';
import { createTokenizer } from '../../engine/runtime/tokenizers/index.js';

const [out, ...texts] = process.argv.slice(2);
if (!out) {
  process.stderr.write('usage: write_tokenizers.ts OUT [TEXT...]\n');
  process.exit(2);
}
const encodings: Record<string, number[][]> = {};
for (const kind of ['byte', 'gpt2'] as const) {
  writeHfTokenizerFiles(join(out, kind), kind, 1024);
  const tokenizer = createTokenizer(kind);
  encodings[kind] = texts.map((text) => tokenizer.encode(text));
}
writeFileAtomic(join(out, 'encodings.json'), JSON.stringify({ texts, encodings }));
