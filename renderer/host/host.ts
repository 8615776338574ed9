// The renderer's one door to the host (electron/contract.ts services): `host()` returns the
// window's StrataHost from electron/client.ts getHost(), or the one installed with `installHost`
// (component tests install an in-process host built with the same createHost()). Also turns host
// failures into one readable sentence for the status bar and error dialogs.
// Not here: the transports (electron/client.ts) or any service implementation.
import { type StrataHost, StrataHostError } from '../../electron/contract.js';
import { getHost } from '../../electron/client.js';

let installed: StrataHost | null = null;

export function host(): StrataHost {
  return installed ?? getHost();
}

/** Uses `h` instead of getHost() (tests, or an embedding page); null restores the default. */
export function installHost(h: StrataHost | null): void {
  installed = h;
}

/** One human sentence for any failure, with the document issues listed after it. */
export function describeHostError(error: unknown): { message: string; details: string[] } {
  if (error instanceof StrataHostError) {
    const details = (error.issues ?? []).map((i) => i.message);
    return { message: error.message, details };
  }
  if (error instanceof Error) return { message: error.message, details: [] };
  return { message: String(error), details: [] };
}
