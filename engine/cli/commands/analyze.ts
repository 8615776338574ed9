// `strata analyze INPUT [--context N] [--batch N] [--hardware ID] [--rates datasheet|measured] [--json]`:
// parameters, FLOPs per token, memory (weights, KV cache, Mamba state, training) and roofline
// estimates of a design (a Strata document, a template name or an HF config.json). Prints aligned
// tables, or with --json one JSON object: the AnalysisReport of engine/spec/analytics plus
// `source` (where the design came from) and `notes` (validation warnings, import notes).
//
// Not here: the figures and their conventions (engine/spec/analytics/*), the text layout
// (analytics/text.ts), input loading (load-input.ts).
import { analyzeModel } from '../../spec/analytics/index.js';
import { renderReport } from '../../spec/analytics/text.js';
import { HARDWARE_IDS, type RateSource } from '../../spec/hardware.js';
import { parseCommandArgs } from '../args.js';
import { CliError } from '../errors.js';
import { type CliIO } from '../io.js';
import { loadModelInput } from '../load-input.js';

const HELP = `usage: strata analyze INPUT [--context N] [--batch N] [--hardware ID] [--rates datasheet|measured] [--json]

INPUT is a Strata document, a template name, or an HF config.json.
  --context N     sequence length for FLOPs, activations and the roofline (default 8k);
                  accepts k/M suffixes in powers of 1024: 8k = 8192, 128k, 1M
  --batch N       sequences per step for memory and the roofline (default 1)
  --hardware ID   ${HARDWARE_IDS.join(', ')} (default h200)
  --rates R       datasheet peaks (default) or the profile's measured figures
  --json          print one JSON object instead of tables
`;

const SUFFIX: Record<string, number> = { '': 1, k: 1024, m: 1024 * 1024 };

/** Parses `8192`, `8k`, `128K`, `1M` into a token count; throws a CliError naming the option. */
export function parseTokenCount(option: string, text: string): number {
  const match = /^(\d+(?:\.\d+)?)([kKmM]?)$/.exec(text.trim());
  const value = match ? Number(match[1]) * SUFFIX[match[2]!.toLowerCase()]! : Number.NaN;
  if (!Number.isInteger(value) || value < 1)
    throw new CliError(`analyze: ${option} ${JSON.stringify(text)} is not a positive whole number of tokens (e.g. 8192, 8k, 128k, 1M)`);
  return value;
}

export async function run(argv: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseCommandArgs('analyze', argv, {
    context: { type: 'string', short: 'c' },
    batch: { type: 'string', short: 'b' },
    hardware: { type: 'string' },
    rates: { type: 'string' },
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    io.stdout(HELP);
    return 0;
  }
  if (positionals.length !== 1) throw new CliError(`analyze: expected one INPUT, got ${positionals.length} (see strata analyze --help)`);
  const context = parseTokenCount('--context', values.context ?? '8k');
  const batch = parseTokenCount('--batch', values.batch ?? '1');
  const hardware = (values.hardware ?? 'h200').toLowerCase();
  if (!HARDWARE_IDS.includes(hardware)) throw new CliError(`analyze: --hardware ${values.hardware} is not one of ${HARDWARE_IDS.join(', ')}`);
  const rates = values.rates ?? 'datasheet';
  if (rates !== 'datasheet' && rates !== 'measured') throw new CliError(`analyze: --rates ${rates} is not datasheet or measured`);

  const input = loadModelInput(positionals[0]!, io);
  const report = analyzeModel(input.doc.model, { context, batch, hardware, rates: rates as RateSource });
  const source = { kind: input.source, file: input.file ?? positionals[0]! };
  if (values.json) {
    io.stdout(`${JSON.stringify({ source, notes: input.notes, ...report }, null, 2)}\n`);
  } else {
    io.stdout(renderReport(report, `${source.kind} ${source.file}`));
    for (const note of input.notes) io.stderr(`strata: note: ${note}\n`);
  }
  return 0;
}
