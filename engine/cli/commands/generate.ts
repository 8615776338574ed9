// `strata generate INPUT [options]`: generates text from weights. INPUT is a training run folder
// (its newest checkpoint and tokenizer) or a design (fresh initialization, or --checkpoint). The
// prompt is tokenized here with the run's tokenizer; the engine prefills it, then decodes with a
// constant-size Mamba state and a KV cache for attention layers.
//
// Not here: decoding (native engine), tokenizers (runtime/tokenizers).
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { modelWeightsFile } from '../../runtime/checkpoints.js';
import { intOption, loadTarget, numberOption, requireEngine } from '../../runtime/command-support.js';
import { eventPrinter, superviseJob } from '../../runtime/job-runner.js';
import { createTokenizer } from '../../runtime/tokenizers/index.js';
import { parseCommandArgs } from '../args.js';
import { CliError, EXIT_INTERNAL } from '../errors.js';
import type { CliIO } from '../io.js';
import { EXIT_CANCELLED } from './train.js';

const HELP = `usage: strata generate INPUT [options]

INPUT is a training run folder, a Strata document, a template name, or an HF config.json.
  --prompt TEXT        text to continue (default: empty, starts from <bos>)
  --max-tokens N       tokens to generate (default 200)
  --temperature T      0 = greedy (default 0.8)
  --top-p P            nucleus sampling threshold (default 0.95)
  --seed N             sampling seed (default 0)
  --checkpoint PATH    weights (default: the run's newest checkpoint; fresh init for a design)
  --json               print a JSON result {prompt, text, ids, tokens_per_s}
`;

export async function run(argv: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseCommandArgs('generate', argv, {
    prompt: { type: 'string' },
    'max-tokens': { type: 'string' },
    temperature: { type: 'string' },
    'top-p': { type: 'string' },
    seed: { type: 'string' },
    checkpoint: { type: 'string' },
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    io.stdout(HELP);
    return 0;
  }
  if (positionals.length !== 1) throw new CliError(`generate: expected one INPUT, got ${positionals.length} (see strata generate --help)`);
  const target = loadTarget(positionals[0]!, io);
  // Generation needs the weights only (an imported checkpoint has no optimizer state).
  let checkpoint: string | undefined = target.checkpoint ? (modelWeightsFile(target.checkpoint.path) ?? target.checkpoint.path) : undefined;
  if (values.checkpoint) {
    checkpoint = resolve(io.cwd, values.checkpoint);
    if (!existsSync(checkpoint)) throw new CliError(`generate: --checkpoint ${values.checkpoint}: no such file or folder`);
  }
  if (target.runDir && !checkpoint) throw new CliError(`${target.where}: the run has no checkpoint yet`);
  const tokenizer = createTokenizer(target.doc.pipeline.tokenizer.kind);
  const prompt = values.prompt ?? '';
  const promptIds = [...(tokenizer.bosId !== null ? [tokenizer.bosId] : []), ...tokenizer.encode(prompt)];
  const engine = requireEngine();
  // Engine events (logs) go to stderr so stdout carries only the text.
  const logIO = { stdout: io.stderr, stderr: io.stderr, isTTY: false };
  const printer = eventPrinter(logIO, { json: false });
  const job = engine.generate(
    {
      document: target.doc,
      ...(checkpoint ? { checkpoint } : {}),
      prompt_ids: promptIds,
      max_new_tokens: intOption('generate', 'max-tokens', values['max-tokens']) ?? 200,
      temperature: numberOption('generate', 'temperature', values.temperature, 0, 10) ?? 0.8,
      top_p: numberOption('generate', 'top-p', values['top-p'], 0, 1) ?? 0.95,
      seed: intOption('generate', 'seed', values.seed, 0) ?? 0,
      stop_id: tokenizer.eosId,
    },
    printer.onEvent,
  );
  const outcome = await superviseJob(job, printer, logIO, { json: false });
  if (outcome.error) {
    io.stderr(`strata: generate: ${outcome.error.message}\n`);
    return EXIT_INTERNAL;
  }
  if (outcome.cancelled) return EXIT_CANCELLED;
  const ids = outcome.result!.ids.filter((id) => id !== tokenizer.eosId);
  const text = tokenizer.decode(ids);
  if (values.json) io.stdout(`${JSON.stringify({ prompt, text, ids: outcome.result!.ids, tokens_per_s: outcome.result!.tokens_per_s ?? null })}\n`);
  else io.stdout(`${prompt}${text}\n`);
  return 0;
}
