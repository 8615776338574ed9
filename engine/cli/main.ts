// The `strata` command line: global options, subcommand dispatch and error reporting. Each
// subcommand lives in commands/<name>.ts and exports `run(argv, io): Promise<number>` (argv is
// everything after the subcommand name); it is imported only when used, so one command's heavy
// dependencies (the native engine) never slow down another. Errors the user can fix (CliError) are
// printed as one line `strata: <message>` with their exit code (2 for bad input); anything else is
// an internal error (exit 1), with the stack only when STRATA_DEBUG is set.
//
// Not here: the commands themselves, input loading (load-input.ts), the process entry (bin.mjs).
import { parseArgs } from 'node:util';
import { CliError, EXIT_BAD_INPUT, EXIT_INTERNAL, isCliError } from './errors.js';
import { type CliIO, processIO } from './io.js';

/** What every commands/<name>.ts module exports. */
export interface CommandModule {
  run(argv: string[], io: CliIO): Promise<number>;
}

/** Subcommands with a one-line summary, in the order help lists them. */
export const COMMANDS: ReadonlyArray<{ name: string; summary: string }> = [
  { name: 'analyze', summary: 'parameters, FLOPs, memory and throughput estimates of a design' },
  { name: 'convert', summary: 'convert a design between Strata, Megatron-LM flags and HF nemotron_h config.json' },
  { name: 'train', summary: 'train a design on the bundled engine' },
  { name: 'eval', summary: 'evaluate a checkpoint (perplexity, bits per byte, synthetic tasks)' },
  { name: 'generate', summary: 'generate text from a checkpoint' },
  { name: 'resume', summary: 'resume a stopped training run' },
  { name: 'profile', summary: 'profile a design layer by layer (train, prefill, decode)' },
  { name: 'export-hf', summary: 'export a trained run as an HF config.json + safetensors folder' },
  { name: 'import-hf', summary: 'import an HF checkpoint folder as a Strata run' },
  { name: 'inspect-precision', summary: 'resolved per-layer precision table and quantization error' },
  // precision engineer: the BF16 vs NVFP4 experiment (commands/precision-experiment.ts)
  { name: 'precision-experiment', summary: 'train a design in BF16, NVFP4 (recipe) and NVFP4 (no exceptions) and compare' },
  { name: 'export-megatron', summary: 'write a Megatron-LM launch bundle for a design' },
  { name: 'plan', summary: 'memory, step time and the fastest layout for training a design on a GPU cluster' },
];

export const VERSION = '0.1.0';

export function usage(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    'usage: strata <command> [options]',
    '',
    'commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'INPUT arguments accept a Strata document (.json), a template name, or an HF config.json.',
    "Run 'strata <command> --help' for a command's options.",
    '',
  ].join('\n');
}

function isMissingModule(error: unknown, name: string): boolean {
  const e = error as { code?: string; message?: string; url?: string };
  return (
    (e?.code === 'ERR_MODULE_NOT_FOUND' || e?.code === 'MODULE_NOT_FOUND') &&
    typeof e.message === 'string' &&
    e.message.includes(`commands/${name}.`)
  );
}

async function loadCommand(name: string): Promise<CommandModule> {
  try {
    const module = (await import(`./commands/${name}.js`)) as Partial<CommandModule>;
    if (typeof module.run !== 'function') throw new Error(`commands/${name} does not export run(argv, io)`);
    return module as CommandModule;
  } catch (error) {
    if (isMissingModule(error, name))
      throw new CliError(`${name}: this command is not part of this build yet`, EXIT_INTERNAL);
    throw error;
  }
}

/** Runs the CLI with argv (without node and script) and returns the exit code. */
export async function main(argv: string[], io: CliIO = processIO()): Promise<number> {
  try {
    const commandIndex = argv.findIndex((a) => !a.startsWith('-'));
    const globalArgs = commandIndex < 0 ? argv : argv.slice(0, commandIndex);
    const { values } = (() => {
      try {
        return parseArgs({
          args: globalArgs,
          options: { help: { type: 'boolean', short: 'h' }, version: { type: 'boolean', short: 'v' } },
          strict: true,
        });
      } catch (error) {
        throw new CliError(`${(error as Error).message.split('\n')[0]} (see strata --help)`);
      }
    })();
    if (values.version) {
      io.stdout(`strata ${VERSION}\n`);
      return 0;
    }
    if (values.help || commandIndex < 0) {
      io.stdout(usage());
      return commandIndex < 0 && !values.help ? EXIT_BAD_INPUT : 0;
    }
    const name = argv[commandIndex]!;
    const rest = argv.slice(commandIndex + 1);
    if (name === 'help') {
      if (rest[0]) return await main([rest[0], '--help'], io);
      io.stdout(usage());
      return 0;
    }
    if (!COMMANDS.some((c) => c.name === name))
      throw new CliError(`unknown command '${name}' (commands: ${COMMANDS.map((c) => c.name).join(', ')})`);
    const command = await loadCommand(name);
    return await command.run(rest, io);
  } catch (error) {
    if (isCliError(error)) {
      io.stderr(`strata: ${error.message.replace(/\s*\n\s*/g, '; ')}\n`);
      return error.exitCode;
    }
    const message = error instanceof Error ? error.message : String(error);
    io.stderr(`strata: internal error: ${message.replace(/\s*\n\s*/g, '; ')}\n`);
    if (process.env.STRATA_DEBUG && error instanceof Error && error.stack) io.stderr(`${error.stack}\n`);
    return EXIT_INTERNAL;
  }
}
