// The CLI's view of the outside world: where text goes (stdout/stderr), which folder relative
// paths resolve against, and whether the output is a terminal. Every `strata` subcommand receives
// one `CliIO` so tests can run commands in-process with captured output.
//
// Not here: argument parsing (main.ts), error types (errors.ts), input loading (load-input.ts).

export interface CliIO {
  /** Writes text to standard output as is (callers add their own newlines). */
  stdout: (text: string) => void;
  /** Writes text to standard error as is (callers add their own newlines). */
  stderr: (text: string) => void;
  /** Folder that relative paths on the command line are resolved against. */
  cwd: string;
  /** True when stdout is an interactive terminal (commands may then print tables, colors, progress). */
  isTTY: boolean;
}

/** The CliIO of the running process. */
export function processIO(): CliIO {
  return {
    stdout: (text) => {
      process.stdout.write(text);
    },
    stderr: (text) => {
      process.stderr.write(text);
    },
    cwd: process.cwd(),
    isTTY: Boolean(process.stdout.isTTY),
  };
}

/** A CliIO that records everything written, for tests and for embedding commands in other tools. */
export function bufferIO(cwd: string, isTTY = false): CliIO & { out: () => string; err: () => string } {
  const outChunks: string[] = [];
  const errChunks: string[] = [];
  return {
    stdout: (text) => {
      outChunks.push(text);
    },
    stderr: (text) => {
      errChunks.push(text);
    },
    cwd,
    isTTY,
    out: () => outChunks.join(''),
    err: () => errChunks.join(''),
  };
}
