// `strata generate INPUT [options]`: generates text from weights. INPUT is a training run folder
// (its newest checkpoint and tokenizer) or a design (fresh initialization, or --checkpoint). The
// prompt is tokenized here with the run's tokenizer; the engine prefills it, then decodes with a
// constant-size Mamba state and a KV cache for attention layers. --speculative lets the MTP heads
// draft and the main model verify (the acceptance rate is reported); --think-budget N forces
// `</think>` once N tokens were spent inside a `<think>` span (markers: runtime/tokenizers/think.ts).
// A design without a checkpoint is freshly initialized from --seed (also the sampling seed).
//
// Not here: decoding (native engine), tokenizers (runtime/tokenizers).
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { inferenceCheckpoint } from '../../runtime/checkpoints.js';
import { applyOverrides, checkEngineMemory, intOption, loadTarget, numberOption, requireEngine } from '../../runtime/command-support.js';
import type { GenerateResult } from '../../runtime/engine.js';
import { eventPrinter, reportJobError, superviseJob } from '../../runtime/job-runner.js';
import { createTokenizer } from '../../runtime/tokenizers/index.js';
import { decodeGenerated, encodeWithThinkTags, thinkIds, type ThinkIds } from '../../runtime/tokenizers/think.js';
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
  --seed N             sampling seed, and the initialization seed of a design without weights
                       (default 0 for sampling, the document's for initialization)
  --speculative        MTP self-speculative decoding (needs a design with MTP heads); prints the
                       acceptance rate
  --think-budget N     after N tokens inside <think>, append </think> and let the answer follow
                       (<think> and </think> in the prompt are the marker tokens)
  --checkpoint PATH    weights (default: the run's newest checkpoint; fresh init for a design)
  --json               print a JSON result {prompt, text, ids, tokens_per_s, ...}
`;

/** One line of decoding statistics (stderr in text mode). */
export function generationSummary(result: GenerateResult, speculative: boolean): string {
  const parts = [`${result.ids.length} tokens`];
  if (typeof result.tokens_per_s === 'number') parts.push(`${result.tokens_per_s.toFixed(1)} tok/s decode`);
  if (typeof result.prefill_ms === 'number') parts.push(`prefill ${result.prefill_ms.toFixed(1)} ms`);
  if (speculative) {
    const drafted = result.drafted ?? 0;
    const rate = drafted > 0 ? `${((100 * (result.accepted ?? 0)) / drafted).toFixed(1)}%` : 'n/a';
    parts.push(`MTP speculative: ${result.accepted ?? 0}/${drafted} drafts accepted (acceptance rate ${rate})`);
  }
  if (result.forced_think_close) parts.push('thinking budget reached: </think> appended');
  return parts.join(', ');
}

export async function run(argv: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseCommandArgs('generate', argv, {
    prompt: { type: 'string' },
    'max-tokens': { type: 'string' },
    temperature: { type: 'string' },
    'top-p': { type: 'string' },
    seed: { type: 'string' },
    speculative: { type: 'boolean' },
    'think-budget': { type: 'string' },
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
  // Generation needs the weights only (an imported checkpoint has no optimizer state); the engine
  // verifies a checkpoint folder's hashes first.
  let checkpoint: string | undefined = target.checkpoint ? inferenceCheckpoint(target.checkpoint.path) : undefined;
  if (values.checkpoint) {
    checkpoint = resolve(io.cwd, values.checkpoint);
    if (!existsSync(checkpoint)) throw new CliError(`generate: --checkpoint ${values.checkpoint}: no such file or folder`);
  }
  if (target.runDir && !checkpoint) throw new CliError(`${target.where}: the run has no checkpoint yet`);
  const seed = intOption('generate', 'seed', values.seed, 0);
  // A fresh model (no weights given) is initialized from --seed, as `strata train` would.
  const doc = seed !== undefined && !checkpoint ? applyOverrides('generate', target.doc, { seed }, io) : target.doc;
  const speculative = Boolean(values.speculative);
  if (speculative && !doc.model.mtp) throw new CliError(`generate: --speculative needs MTP heads, and ${target.where} has no model.mtp (try the tiny-mtp template)`);
  const thinkBudget = intOption('generate', 'think-budget', values['think-budget'], 0);
  const tokenizer = createTokenizer(doc.pipeline.tokenizer.kind);
  let think: ThinkIds | null = null;
  if (thinkBudget !== undefined) {
    try {
      think = thinkIds(tokenizer, doc.model.vocab_size);
    } catch (error) {
      throw new CliError(`generate: --think-budget: ${(error as Error).message}`);
    }
  }
  const prompt = values.prompt ?? '';
  const promptIds = [...(tokenizer.bosId !== null ? [tokenizer.bosId] : []), ...(think ? encodeWithThinkTags(tokenizer, prompt, think) : tokenizer.encode(prompt))];
  checkEngineMemory(target.where, doc, 'inference');
  const engine = requireEngine();
  // Engine events (logs) go to stderr so stdout carries only the text.
  const logIO = { stdout: io.stderr, stderr: io.stderr, isTTY: false };
  const printer = eventPrinter(logIO, { json: false });
  const job = engine.generate(
    {
      document: doc,
      ...(checkpoint ? { checkpoint } : {}),
      prompt_ids: promptIds,
      max_new_tokens: intOption('generate', 'max-tokens', values['max-tokens']) ?? 200,
      temperature: numberOption('generate', 'temperature', values.temperature, 0, 10) ?? 0.8,
      top_p: numberOption('generate', 'top-p', values['top-p'], 0, 1) ?? 0.95,
      seed: seed ?? 0,
      stop_id: tokenizer.eosId,
      ...(speculative ? { speculative: true } : {}),
      ...(think ? { think_open_id: think.open, think_close_id: think.close, think_budget: thinkBudget } : {}),
    },
    printer.onEvent,
  );
  const outcome = await superviseJob(job, printer, logIO, { json: false });
  if (outcome.error) {
    reportJobError('generate', outcome, io, false);
    return EXIT_INTERNAL;
  }
  if (outcome.cancelled) return EXIT_CANCELLED;
  const result = outcome.result!;
  const decoded = decodeGenerated(tokenizer, result.ids, think);
  if (values.json) {
    const { ids, tokens_per_s, prefill_ms, decode_ms, drafted, accepted, acceptance_rate, forced_think_close } = result;
    const stats = { tokens_per_s: tokens_per_s ?? null, prefill_ms, decode_ms, drafted, accepted, acceptance_rate, forced_think_close: forced_think_close ?? false };
    io.stdout(`${JSON.stringify({ prompt, text: decoded.text, ids, ...stats, unknown_ids: decoded.unknownIds })}\n`);
  } else {
    io.stdout(`${prompt}${decoded.text}\n`);
    io.stderr(`${generationSummary(result, speculative)}${decoded.unknownIds ? `; ${decoded.unknownIds} ids beyond the ${tokenizer.kind} tokenizer left out of the text` : ''}\n`);
  }
  return 0;
}
