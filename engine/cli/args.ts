// Option parsing for `strata` subcommands: node:util parseArgs in strict mode, with its errors
// turned into one-line CliErrors that name the subcommand (`strata: convert: Unknown option '--x'`).
//
// Not here: subcommand dispatch (main.ts), what options each command has (commands/*).
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { CliError } from './errors.js';

type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * Options of every command that writes a run folder: where it goes (`--run-dir DIR` exactly, or a
 * new folder under `--runs DIR`), its display name, JSON events instead of a progress display, help.
 */
export const RUN_FOLDER_OPTIONS = {
  'run-dir': { type: 'string' },
  runs: { type: 'string' },
  name: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Parses a subcommand's argv (everything after the subcommand name) with positionals allowed. */
export function parseCommandArgs<O extends Options>(command: string, argv: string[], options: O) {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (error) {
    const message = error instanceof Error ? error.message.split('\n')[0]! : String(error);
    throw new CliError(`${command}: ${message} (see strata ${command} --help)`);
  }
}
