/**
 * Inputs shared by the evaluators: plain arrays of detections and ground-truth boxes,
 * tied together by an image id and a class index (the model's label space).
 * Boxes are [x1, y1, x2, y2]; detections and ground truth must use the same frame.
 */
import type { Box } from '../detect/types';

export interface EvalDetection {
  imageId: string;
  classIndex: number;
  score: number;
  box: Box;
}

export interface EvalGroundTruth {
  imageId: string;
  classIndex: number;
  box: Box;
  /** VOC "difficult": neither a hit nor a miss when detected, nor counted when missed. */
  difficult?: boolean;
}

/** Throws on a non-finite score or coordinate, which would silently corrupt the ranking. */
export function assertFiniteInputs(detections: readonly EvalDetection[], groundTruth: readonly EvalGroundTruth[], who: string): void {
  detections.forEach((d, i) => {
    if (!Number.isFinite(d.score) || !d.box.every(Number.isFinite)) {
      throw new Error(`${who}: detection #${i} (image "${d.imageId}") has a non-finite score or box (${d.score}, [${d.box.join(', ')}]).`);
    }
  });
  groundTruth.forEach((g, i) => {
    if (!g.box.every(Number.isFinite)) throw new Error(`${who}: ground-truth box #${i} (image "${g.imageId}") has non-finite coordinates [${g.box.join(', ')}].`);
  });
}

/** Indices 0..n-1 ordered by score, highest first; equal scores keep their input order. */
export function orderByScore(scores: readonly number[]): number[] {
  // Array.prototype.sort is stable (ES2019), which gives the documented tie-break.
  return scores.map((_, i) => i).sort((a, b) => scores[b]! - scores[a]!);
}

/** Items per class index, each list in input order. */
export function groupByClass<T extends { classIndex: number }>(items: readonly T[]): Map<number, T[]> {
  const out = new Map<number, T[]>();
  for (const item of items) {
    const list = out.get(item.classIndex);
    if (list) list.push(item);
    else out.set(item.classIndex, [item]);
  }
  return out;
}

/** Class indices present in either grouping, ascending. */
export function classesOf(...groups: ReadonlyMap<number, unknown>[]): number[] {
  const set = new Set<number>();
  for (const g of groups) for (const c of g.keys()) set.add(c);
  return [...set].sort((a, b) => a - b);
}
