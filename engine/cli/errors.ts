// Errors the `strata` CLI reports to the user as one line (`strata: <message>`) with an exit code,
// without a stack trace. Commands throw `CliError` for anything the user can fix (bad arguments,
// missing or malformed files, invalid designs); main.ts turns it into the message and exit code.
//
// Not here: printing (main.ts) and the document validation messages themselves (spec/validate.ts).

/** Exit code for bad input: wrong arguments, unreadable or invalid files. */
export const EXIT_BAD_INPUT = 2;
/** Exit code for a failure that is not the user's input (a bug, an engine crash). */
export const EXIT_INTERNAL = 1;

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT_BAD_INPUT,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** True for errors that carry a user-facing message and exit code. */
export function isCliError(error: unknown): error is CliError {
  return error instanceof CliError;
}
