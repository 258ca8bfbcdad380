import type { TrainEvent } from '../train/trainer';

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '--:--';
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const pad = (n: number) => String(n).padStart(2, '0');
  return h > 0 ? `${h}:${pad(m)}:${pad(s % 60)}` : `${pad(m)}:${pad(s % 60)}`;
}

/** "[#####.....] 12/40 epoch 2/4 loss 1.234 · 2.10 s/step · 1.9 img/s · 00:59 left" */
export function progressLine(e: Extract<TrainEvent, { type: 'step' }>, width = 24): string {
  const done = Math.round((width * e.step) / e.totalSteps);
  const bar = `[${'#'.repeat(done)}${'.'.repeat(width - done)}]`;
  const epochs = Math.ceil(e.totalSteps / e.stepsPerEpoch);
  const flag = e.applied ? '' : ` NON-FINITE (${e.nonFiniteTerms.join(', ')}): step skipped`;
  const c = e.teacherCache;
  // The share of the teacher's image reads served from its cache so far (each a forward skipped).
  const cached = c && c.hits + c.misses > 0 ? ` · teacher cached ${Math.round((100 * c.hits) / (c.hits + c.misses))}% (${c.entries} images, ${Math.round(c.bytes / 2 ** 20)} MiB)` : '';
  return `${bar} ${e.step}/${e.totalSteps} epoch ${e.epoch + 1}/${epochs} loss ${e.loss.toFixed(3)} · ${(e.msPerStep / 1000).toFixed(2)} s/step · ${e.imagesPerSecond.toFixed(1)} img/s · ${formatDuration(e.etaSeconds)} left${cached}${flag}`;
}
