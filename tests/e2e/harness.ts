// The e2e specs' small harness: the context every spec receives (a fresh page on browser mode,
// the server's folders, a screenshot helper), the spec registry, and polling assertions (specs
// wait for what the user would see, never for wall-clock durations). playwright-core has no test
// runner or `expect`; tests/e2e/run.mjs runs the registered specs. Not here: the specs themselves.
import type { Locator, Page } from 'playwright-core';

export interface SpecContext {
  page: Page;
  /** The browser-mode URL with its token. */
  url: string;
  /** Where the host keeps run folders and where relative project paths resolve. */
  runsDir: string;
  workspaceDir: string;
  /** Saves docs/screenshots/NAME.png when the runner was asked for screenshots (--screenshots). */
  screenshot(name: string, target?: Locator): Promise<void>;
  /** True with --screenshots: a spec may then wait for a fuller picture (e.g. more of a loss curve). */
  takingScreenshots: boolean;
}

export interface Spec {
  name: string;
  /** Upper bound before the spec is failed (a safety net, not an assertion about speed). */
  timeoutMs: number;
  run(ctx: SpecContext): Promise<void>;
}

export function spec(name: string, run: (ctx: SpecContext) => Promise<void>, timeoutMs = 60_000): Spec {
  return { name, run, timeoutMs };
}

export class AssertionError extends Error {
  override name = 'AssertionError';
}

export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new AssertionError(message);
}

/**
 * Polls `probe` until `accept` holds; fails with `what` and the last value seen. For things the
 * UI shows asynchronously (analytics, run progress).
 */
export async function eventually<T>(probe: () => Promise<T>, accept: (value: T) => boolean, what: string, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  let lastError: unknown;
  for (;;) {
    try {
      last = await probe();
      if (accept(last)) return last;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      const seen = lastError && last === undefined ? `error: ${(lastError as Error).message}` : `last value: ${JSON.stringify(last)}`;
      throw new AssertionError(`${what} (${seen})`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Text of a locator with whitespace collapsed (value for inputs, text otherwise). */
export async function textOf(locator: Locator): Promise<string> {
  const tag = await locator.evaluate((el) => el.tagName.toLowerCase());
  const raw = tag === 'input' || tag === 'textarea' || tag === 'select' ? await locator.inputValue() : await locator.innerText();
  return raw.replace(/\s+/g, ' ').trim();
}

/** Parses a displayed quantity such as "3.41M", "1.2 B", "812,344" or "12.5k" into a number. */
export function parseQuantity(text: string): number {
  const match = /(-?[\d,]*\.?\d+)\s*([kKMGBT])?/.exec(text);
  assert(match, `no number in ${JSON.stringify(text)}`);
  const scale: Record<string, number> = { k: 1e3, K: 1e3, M: 1e6, G: 1e9, B: 1e9, T: 1e12 };
  return Number(match[1]!.replace(/,/g, '')) * (match[2] ? scale[match[2]]! : 1);
}
