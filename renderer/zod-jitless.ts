// Imported first by the renderer's entry points (main.tsx, the analytics worker): switches zod to
// its interpreter-only mode. By default zod probes `new Function` to compile fast parsers; under
// the app's strict Content-Security-Policy (no 'unsafe-eval') that probe is refused and reported
// as a CSP violation even though zod catches it. Must run before any schema parses, hence its own
// module, imported before everything else. Not a place for other start-up work.
import { config } from 'zod';

config({ jitless: true });
