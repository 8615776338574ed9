// Terminal progress for long engine jobs: a one-line bar with step, loss, tokens/s and ETA that is
// redrawn in place on a terminal (or printed every so often when output is a file or pipe).
//
// Not here: running the job (job-runner.ts) or the event types (events.ts).
import type { StepEvent } from './events.js';

/** `1:02:03` / `4:05` for a duration in seconds. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${sec}` : `${m}:${sec}`;
}

/** `950`, `12.3k`, `4.56M` tokens per second. */
export function formatRate(perSecond: number): string {
  if (perSecond >= 1e6) return `${(perSecond / 1e6).toFixed(2)}M`;
  if (perSecond >= 1e4) return `${(perSecond / 1e3).toFixed(1)}k`;
  return `${Math.round(perSecond)}`;
}

/**
 * The progress line after a step event. The ETA assumes the remaining steps take as long as the
 * average step so far (measured from the first step event, so start-up time is left out).
 */
export function progressLine(event: StepEvent, totalSteps: number, firstStep: { step: number; t: number } | null, width = 24): string {
  const fraction = totalSteps > 0 ? Math.min(1, event.step / totalSteps) : 0;
  const filled = Math.round(fraction * width);
  const bar = `${'='.repeat(Math.max(0, filled - 1))}${filled > 0 ? (filled === width ? '=' : '>') : ''}${' '.repeat(width - filled)}`;
  let eta = '--:--';
  if (firstStep && event.step > firstStep.step) {
    const perStep = (event.t - firstStep.t) / (event.step - firstStep.step);
    eta = formatDuration(perStep * (totalSteps - event.step));
  }
  const digits = String(totalSteps).length;
  return `step ${String(event.step).padStart(digits)}/${totalSteps} [${bar}] loss ${event.loss.toFixed(4)} | ${formatRate(event.tokens_per_s)} tok/s | ETA ${eta}`;
}
