/**
 * The training panel's numbers as text, honest about what is not known yet: before the first step
 * of a run (kernels compiling) there is no loss; while paused nothing moves, so rates and the
 * time left say so instead of freezing at their last value.
 */
import { formatValue } from './colors';
import { formatDuration } from './format';
import type { TrainStatus } from './store';

export const NO_VALUE = '—';

interface Live {
  status: TrainStatus;
  /** Step events received for this run on this page. */
  stepsSeen: number;
}

/** A per-step number (loss, grad norm): "compiling…" until the run's first step, "—" when there is none. */
export function stepValueText(v: number, t: Live): string {
  if (Number.isFinite(v)) return formatValue(v);
  if (t.stepsSeen === 0) return t.status === 'starting' || t.status === 'running' ? 'compiling…' : NO_VALUE;
  // A step really gave a non-finite value: say so (the skipped-steps line names the terms).
  return formatValue(v);
}

/** Images per second: not a rate while paused or before the first step. */
export function rateText(imagesPerSecond: number, t: Live): string {
  if (t.status === 'paused') return 'paused';
  if (!imagesPerSecond || t.stepsSeen === 0) return t.status === 'starting' || t.status === 'running' ? 'compiling…' : NO_VALUE;
  return imagesPerSecond.toFixed(2);
}

/** Time left: none while paused (the clock stops), none once the run is over. */
export function timeLeftText(etaSeconds: number, msPerStep: number, t: Live): string {
  if (t.status === 'paused') return 'paused';
  if (t.status === 'finished') return 'done';
  if (t.status === 'stopped' || t.status === 'error' || t.status === 'idle') return NO_VALUE;
  if (!msPerStep || t.stepsSeen === 0) return t.status === 'starting' || t.status === 'running' ? 'compiling…' : NO_VALUE;
  return formatDuration(etaSeconds);
}

/** The teacher cache: the share of image reads it served so far, the images it holds and their memory. */
export function cacheText(c: { hits: number; misses: number; entries: number; bytes: number }): string {
  const reads = c.hits + c.misses;
  const share = reads > 0 ? `${Math.round((100 * c.hits) / reads)}%` : NO_VALUE;
  return `${share} · ${c.entries} img · ${Math.round(c.bytes / 2 ** 20)} MiB`;
}
