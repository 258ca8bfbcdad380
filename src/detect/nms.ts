import { iou } from './box';
import type { Detection } from './types';

export interface NmsOptions {
  /** A box is dropped when its IoU with a kept box of the same class exceeds this. */
  iouThreshold: number;
  /** Keep at most this many detections over all classes, best first. */
  maxDetections: number;
}

/**
 * Greedy non-maximum suppression, separately per class (boxes of different classes never
 * suppress each other). Ties in score keep the earlier candidate, so the result is deterministic.
 */
export function classwiseNms<D extends Detection>(candidates: readonly D[], options: NmsOptions): D[] {
  const order = candidates
    .map((d, i) => ({ d, i }))
    .sort((a, b) => b.d.score - a.d.score || a.i - b.i)
    .map(({ d }) => d);
  const keptByClass = new Map<number, D[]>();
  const kept: D[] = [];
  for (const d of order) {
    if (kept.length >= options.maxDetections) break;
    const sameClass = keptByClass.get(d.classIndex) ?? [];
    if (sameClass.some((k) => iou(k.box, d.box) > options.iouThreshold)) continue;
    sameClass.push(d);
    keptByClass.set(d.classIndex, sameClass);
    kept.push(d);
  }
  return kept;
}
