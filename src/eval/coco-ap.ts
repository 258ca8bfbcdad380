/**
 * COCO-style box AP, computed the way pycocotools' COCOeval does for area "all":
 * - IoU thresholds 0.5:0.05:0.95 (10 values, built like numpy's linspace) and 101 recall
 *   thresholds 0:0.01:1; IoU on continuous coordinates (no +1 pixel convention);
 * - per image and class, detections ranked by score (equal scores: input order) and cut to
 *   `maxDets` (default 100; as in pycocotools the cut applies per image and class);
 * - greedy matching, per IoU threshold t: each detection in rank order takes the unmatched
 *   ground-truth box of highest IoU >= t, preferring a non-ignored box over an ignored one;
 * - difficult boxes are "ignore" regions like COCO's crowd regions: any number of detections
 *   may match one, and those detections are neither TP nor FP. Unlike crowd regions, their
 *   IoU is the ordinary one (not intersection over detection area);
 * - precision at each recall threshold = the highest precision at that recall or beyond
 *   (0 when the recall is never reached); AP = mean over recall thresholds, then over IoU
 *   thresholds, then over classes with at least one non-ignored box. AP50 and AP75 are the
 *   same at a single threshold.
 */
import type { Box } from '../detect/types';
import { assertFiniteInputs, classesOf, groupByClass, orderByScore, type EvalDetection, type EvalGroundTruth } from './types';

/** 0.5, 0.55, ..., 0.95 as numpy's linspace gives them (k * step + 0.5, last exactly 0.95). */
export const COCO_IOU_THRESHOLDS: readonly number[] = (() => {
  const step = (0.95 - 0.5) / 9;
  const t = Array.from({ length: 10 }, (_, k) => k * step + 0.5);
  t[9] = 0.95;
  return t;
})();

/** 0, 0.01, ..., 1 as numpy's linspace gives them. */
export const COCO_RECALL_THRESHOLDS: readonly number[] = Array.from({ length: 101 }, (_, k) => (k === 100 ? 1 : k * 0.01));

// pycocotools adds np.spacing(1) to the precision denominator.
const EPS = 2 ** -52;

export interface CocoEvalOptions {
  /** Detections kept per image and class, highest scores first. Default 100. */
  maxDets?: number;
}

export interface CocoClassAp {
  classIndex: number;
  /** Non-ignored (non-difficult) ground-truth boxes. */
  numGt: number;
  numIgnored: number;
  /** Detections evaluated, after the per-image cut. */
  numDetections: number;
  /** Mean AP over the 10 IoU thresholds; null when the class has no non-ignored box. */
  ap: number | null;
  ap50: number | null;
  ap75: number | null;
  /** AP at each of COCO_IOU_THRESHOLDS; empty when the class has no non-ignored box. */
  apPerIou: number[];
}

export interface CocoApResult {
  /** AP@[0.5:0.95] averaged over classes with a non-ignored box; null when there is none. */
  ap: number | null;
  ap50: number | null;
  ap75: number | null;
  perClass: CocoClassAp[];
  classesInMean: number;
}

/** IoU on continuous coordinates: width = x2 - x1. */
export function cocoIoU(a: Box, b: Box): number {
  const iw = Math.min(a[2], b[2]) - Math.max(a[0], b[0]);
  const ih = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
  if (iw <= 0 || ih <= 0) return 0;
  const inter = iw * ih;
  const union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
  return union > 0 ? inter / union : 0;
}

/** A kept detection's outcome at every IoU threshold. */
interface Ranked {
  score: number;
  /** Input position, for the tie-break across images. */
  order: number;
  matched: boolean[];
  ignored: boolean[];
}

/** Matches one image's detections of one class at every threshold (pycocotools evaluateImg). */
function matchImage(dets: { d: EvalDetection; order: number }[], gts: readonly EvalGroundTruth[], maxDets: number): Ranked[] {
  const kept = orderByScore(dets.map((x) => x.d.score)).slice(0, maxDets).map((i) => dets[i]!);
  // Non-ignored boxes first (stable), so the "stop at the first ignored box" rule below works.
  const sorted = [...gts.filter((g) => !g.difficult), ...gts.filter((g) => g.difficult)];
  const ignore = sorted.map((g) => !!g.difficult);
  const ious = kept.map(({ d }) => sorted.map((g) => cocoIoU(d.box, g.box)));
  const out: Ranked[] = kept.map(({ d, order }) => ({ score: d.score, order, matched: [], ignored: [] }));
  COCO_IOU_THRESHOLDS.forEach((t, ti) => {
    const taken = sorted.map(() => false);
    kept.forEach((_, di) => {
      let best = Math.min(t, 1 - 1e-10);
      let m = -1;
      for (let gi = 0; gi < sorted.length; gi++) {
        // A non-ignored box can be matched once; ignored boxes absorb any number of detections.
        if (taken[gi] && !ignore[gi]) continue;
        // Once a non-ignored box matched, ignored boxes (sorted last) cannot replace it.
        if (m > -1 && !ignore[m] && ignore[gi]) break;
        const o = ious[di]![gi]!;
        if (o < best) continue;
        best = o;
        m = gi;
      }
      const r = out[di]!;
      r.matched[ti] = m > -1;
      r.ignored[ti] = m > -1 && ignore[m]!;
      if (m > -1) taken[m] = true;
    });
  });
  return out;
}

/** AP at one threshold from the ranked outcomes (pycocotools accumulate). */
function apAt(ranked: readonly Ranked[], ti: number, numGt: number): number {
  let tp = 0;
  let fp = 0;
  const rc: number[] = [];
  const pr: number[] = [];
  for (const r of ranked) {
    // Ignored detections add nothing but still leave a (repeated) point, as in pycocotools.
    if (!r.ignored[ti]) {
      if (r.matched[ti]) tp += 1;
      else fp += 1;
    }
    rc.push(tp / numGt);
    pr.push(tp / (tp + fp + EPS));
  }
  for (let i = pr.length - 1; i > 0; i--) if (pr[i]! > pr[i - 1]!) pr[i - 1] = pr[i]!;
  let sum = 0;
  let i = 0;
  for (const t of COCO_RECALL_THRESHOLDS) {
    // First point with recall >= t (numpy searchsorted, side "left"); recall never decreases.
    while (i < rc.length && rc[i]! < t) i++;
    sum += i < rc.length ? pr[i]! : 0;
  }
  return sum / COCO_RECALL_THRESHOLDS.length;
}

/** COCO AP@[.5:.95], AP50 and AP75, per class and averaged; see the module comment. */
export function evaluateCoco(
  detections: readonly EvalDetection[],
  groundTruth: readonly EvalGroundTruth[],
  options: CocoEvalOptions = {},
): CocoApResult {
  const { maxDets = 100 } = options;
  assertFiniteInputs(detections, groundTruth, 'COCO evaluation');
  const detsOf = groupByClass(detections);
  const gtsOf = groupByClass(groundTruth);
  const perClass = classesOf(detsOf, gtsOf).map((c): CocoClassAp => {
    const detsByImage = new Map<string, { d: EvalDetection; order: number }[]>();
    // `order` is the position among the class's detections, which keeps the input order.
    (detsOf.get(c) ?? []).forEach((d, order) => {
      const list = detsByImage.get(d.imageId) ?? [];
      list.push({ d, order });
      detsByImage.set(d.imageId, list);
    });
    const gtsByImage = new Map<string, EvalGroundTruth[]>();
    for (const g of gtsOf.get(c) ?? []) {
      const list = gtsByImage.get(g.imageId) ?? [];
      list.push(g);
      gtsByImage.set(g.imageId, list);
    }
    const numIgnored = [...gtsByImage.values()].reduce((s, l) => s + l.filter((g) => g.difficult).length, 0);
    const numGt = [...gtsByImage.values()].reduce((s, l) => s + l.length, 0) - numIgnored;

    const ranked: Ranked[] = [];
    for (const [imageId, dets] of detsByImage) ranked.push(...matchImage(dets, gtsByImage.get(imageId) ?? [], maxDets));
    ranked.sort((a, b) => b.score - a.score || a.order - b.order);

    const base = { classIndex: c, numGt, numIgnored, numDetections: ranked.length };
    if (numGt === 0) return { ...base, ap: null, ap50: null, ap75: null, apPerIou: [] };
    const apPerIou = COCO_IOU_THRESHOLDS.map((_, ti) => apAt(ranked, ti, numGt));
    return {
      ...base,
      ap: apPerIou.reduce((s, v) => s + v, 0) / apPerIou.length,
      ap50: apPerIou[0]!,
      ap75: apPerIou[5]!,
      apPerIou,
    };
  });

  const scored = perClass.filter((c) => c.numGt > 0);
  const mean = (pick: (c: CocoClassAp) => number | null) =>
    scored.length > 0 ? scored.reduce((s, c) => s + (pick(c) ?? 0), 0) / scored.length : null;
  return { ap: mean((c) => c.ap), ap50: mean((c) => c.ap50), ap75: mean((c) => c.ap75), perClass, classesInMean: scored.length };
}
