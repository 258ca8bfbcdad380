/**
 * PASCAL VOC detection average precision, computed the way the official devkit's Python
 * `voc_eval` does, one class at a time:
 * 1. the class's detections are ranked by score, highest first (equal scores: input order;
 *    the devkit's unstable argsort leaves ties unspecified);
 * 2. each detection is compared with every ground-truth box of its image and class and takes
 *    the one of highest IoU (the first of equal ones). If that IoU is > 0.5 (strictly):
 *    a difficult box makes the detection neither TP nor FP; a non-difficult box not yet
 *    matched makes it a TP (and marks the box); an already matched box makes it an FP (a
 *    duplicate). Otherwise, or with no box in the image, it is an FP;
 * 3. recall = cumulative TP / number of non-difficult boxes, precision = cumulative TP /
 *    cumulative (TP + FP), one point per ranked detection;
 * 4. AP both ways: VOC2007 11-point (mean over t = 0, 0.1, ..., 1 of the highest precision at
 *    recall >= t, with t computed as k * 0.1 like numpy's arange, so the fourth threshold is
 *    0.30000000000000004) and all-point (VOC2010+: area under the precision envelope made
 *    non-increasing from the right).
 * mAP averages AP over classes with at least one non-difficult box; other classes get AP null.
 *
 * Pixel convention: VOC boxes are 1-based inclusive pixel indices, so the devkit measures a
 * box as (x2 - x1 + 1) x (y2 - y1 + 1). `pixelInclusive` (default true) does the same; set
 * it false for continuous coordinates (width = x2 - x1). Detections must be in the same frame
 * as the ground truth: `continuousToVocPixels` converts a detector's continuous box.
 */
import type { Box } from '../detect/types';
import { assertFiniteInputs, classesOf, groupByClass, orderByScore, type EvalDetection, type EvalGroundTruth } from './types';

export interface VocEvalOptions {
  /** IoU a match must exceed; the devkit uses 0.5. */
  iouThreshold?: number;
  /** Measure boxes as inclusive pixel ranges (+1), like the devkit. Default true. */
  pixelInclusive?: boolean;
}

export interface VocClassAp {
  classIndex: number;
  /** Non-difficult ground-truth boxes (the recall denominator). */
  numGt: number;
  numDifficult: number;
  numDetections: number;
  tp: number;
  fp: number;
  /** VOC2007 11-point AP; null when the class has no non-difficult box. */
  ap11: number | null;
  /** All-point AP (VOC2010+); null when the class has no non-difficult box. */
  apAll: number | null;
  /** One point per ranked detection (ignored ones included, as in the devkit). */
  recall: number[];
  precision: number[];
}

export interface VocMapResult {
  /** Every class present in the detections or the ground truth, by class index. */
  perClass: VocClassAp[];
  /** Mean 11-point AP over classes with a non-difficult box; null when there is none. */
  map11: number | null;
  mapAll: number | null;
  /** How many classes the means average over. */
  classesInMap: number;
}

/** IoU of two boxes; with `pixelInclusive` a box spans x1..x2 inclusive (width x2 - x1 + 1). */
export function vocIoU(a: Box, b: Box, pixelInclusive = true): number {
  const one = pixelInclusive ? 1 : 0;
  const iw = Math.max(Math.min(a[2], b[2]) - Math.max(a[0], b[0]) + one, 0);
  const ih = Math.max(Math.min(a[3], b[3]) - Math.max(a[1], b[1]) + one, 0);
  const inter = iw * ih;
  const area = (x: Box) => Math.max(x[2] - x[0] + one, 0) * Math.max(x[3] - x[1] + one, 0);
  const union = area(a) + area(b) - inter;
  return union > 0 ? inter / union : 0;
}

/**
 * A detector's continuous box (pixel i spans [i, i+1)) as VOC's 1-based inclusive pixel range:
 * the first covered pixel is x1 + 1, the last is x2. Widths then agree under the +1 convention.
 */
export function continuousToVocPixels(box: Box): Box {
  return [box[0] + 1, box[1] + 1, box[2], box[3]];
}

/** VOC2007 11-point AP: mean over t = k * 0.1 (k = 0..10) of max precision at recall >= t. */
export function ap11Point(recall: readonly number[], precision: readonly number[]): number {
  let sum = 0;
  for (let k = 0; k <= 10; k++) {
    const t = k * 0.1;
    let p = 0;
    recall.forEach((r, i) => {
      if (r >= t) p = Math.max(p, precision[i]!);
    });
    sum += p / 11;
  }
  return sum;
}

/** All-point AP: area under the precision envelope, recall padded with 0 and 1. */
export function apAllPoint(recall: readonly number[], precision: readonly number[]): number {
  const mrec = [0, ...recall, 1];
  const mpre = [0, ...precision, 0];
  for (let i = mpre.length - 2; i >= 0; i--) mpre[i] = Math.max(mpre[i]!, mpre[i + 1]!);
  let ap = 0;
  for (let i = 0; i + 1 < mrec.length; i++) {
    if (mrec[i + 1] !== mrec[i]) ap += (mrec[i + 1]! - mrec[i]!) * mpre[i + 1]!;
  }
  return ap;
}

interface ImageGt {
  boxes: Box[];
  difficult: boolean[];
  matched: boolean[];
}

/** Evaluates one class: its detections and ground truth only. */
function evaluateClass(classIndex: number, dets: readonly EvalDetection[], gts: readonly EvalGroundTruth[], thr: number, inclusive: boolean): VocClassAp {
  const byImage = new Map<string, ImageGt>();
  let numGt = 0;
  for (const g of gts) {
    let img = byImage.get(g.imageId);
    if (!img) byImage.set(g.imageId, (img = { boxes: [], difficult: [], matched: [] }));
    img.boxes.push(g.box);
    img.difficult.push(!!g.difficult);
    img.matched.push(false);
    if (!g.difficult) numGt += 1;
  }

  const recall: number[] = [];
  const precision: number[] = [];
  let tp = 0;
  let fp = 0;
  for (const i of orderByScore(dets.map((d) => d.score))) {
    const d = dets[i]!;
    const img = byImage.get(d.imageId);
    let best = -Infinity;
    let j = -1;
    img?.boxes.forEach((g, k) => {
      const o = vocIoU(d.box, g, inclusive);
      if (o > best) [best, j] = [o, k];
    });
    if (img && j >= 0 && best > thr) {
      if (!img.difficult[j]) {
        if (img.matched[j]) fp += 1;
        else {
          img.matched[j] = true;
          tp += 1;
        }
      }
    } else fp += 1;
    recall.push(numGt > 0 ? tp / numGt : 0);
    // The devkit divides by max(tp + fp, eps): 0 before the first TP or FP.
    precision.push(tp + fp > 0 ? tp / (tp + fp) : 0);
  }

  return {
    classIndex,
    numGt,
    numDifficult: gts.length - numGt,
    numDetections: dets.length,
    tp,
    fp,
    ap11: numGt > 0 ? ap11Point(recall, precision) : null,
    apAll: numGt > 0 ? apAllPoint(recall, precision) : null,
    recall,
    precision,
  };
}

/** VOC AP per class and mAP; see the module comment for the exact rules. */
export function evaluateVoc(
  detections: readonly EvalDetection[],
  groundTruth: readonly EvalGroundTruth[],
  options: VocEvalOptions = {},
): VocMapResult {
  const { iouThreshold = 0.5, pixelInclusive = true } = options;
  assertFiniteInputs(detections, groundTruth, 'VOC evaluation');
  const dets = groupByClass(detections);
  const gts = groupByClass(groundTruth);
  const perClass = classesOf(dets, gts).map((c) => evaluateClass(c, dets.get(c) ?? [], gts.get(c) ?? [], iouThreshold, pixelInclusive));
  const scored = perClass.filter((c) => c.numGt > 0);
  const mean = (pick: (c: VocClassAp) => number | null) =>
    scored.length > 0 ? scored.reduce((s, c) => s + (pick(c) ?? 0), 0) / scored.length : null;
  return { perClass, map11: mean((c) => c.ap11), mapAll: mean((c) => c.apAll), classesInMap: scored.length };
}
