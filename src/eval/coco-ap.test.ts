import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Box } from '../detect/types';
import { COCO_IOU_THRESHOLDS, COCO_RECALL_THRESHOLDS, cocoIoU, evaluateCoco } from './coco-ap';
import type { EvalDetection, EvalGroundTruth } from './types';

const det = (imageId: string, box: Box, score: number, classIndex = 0): EvalDetection => ({ imageId, box, score, classIndex });
const gt = (imageId: string, box: Box, difficult = false, classIndex = 0): EvalGroundTruth => ({ imageId, box, classIndex, difficult });

const P: Box = [0, 0, 10, 10];
const Q: Box = [2, 0, 12, 10];
const FAR: Box = [50, 50, 60, 60];

describe('COCO thresholds', () => {
  it('match numpy linspace values, with 0.5 and 0.75 exact', () => {
    expect(COCO_IOU_THRESHOLDS.length).toBe(10);
    expect(COCO_IOU_THRESHOLDS[0]).toBe(0.5);
    expect(COCO_IOU_THRESHOLDS[5]).toBe(0.75);
    expect(COCO_IOU_THRESHOLDS[9]).toBe(0.95);
    expect(COCO_IOU_THRESHOLDS[8]).toBe(0.8999999999999999); // 8 * (0.45 / 9) + 0.5 in doubles, as numpy prints it
    expect(COCO_RECALL_THRESHOLDS.length).toBe(101);
    expect(COCO_RECALL_THRESHOLDS[100]).toBe(1);
  });

  it('measure IoU on continuous coordinates', () => {
    // Overlap 8 x 10 = 80, union 100 + 100 - 80 = 120.
    expect(cocoIoU(P, Q)).toBeCloseTo(80 / 120, 12);
    expect(cocoIoU(P, [10, 0, 20, 10])).toBe(0);
  });
});

describe('evaluateCoco', () => {
  it('gives AP 1 to a perfect detector', () => {
    const gts = [gt('a', P), gt('a', FAR), gt('b', P, false, 3)];
    const r = evaluateCoco(gts.map((g, i) => det(g.imageId, g.box, 0.9 - i / 10, g.classIndex)), gts);
    // pycocotools' precision tp / (tp + fp + 2^-52) is 1 - 2e-16 for a single TP.
    expect(r.ap).toBeCloseTo(1, 12);
    expect(r.ap50).toBeCloseTo(1, 12);
    expect(r.ap75).toBeCloseTo(1, 12);
    expect(r.classesInMean).toBe(2);
  });

  it('AP50 = 1 but AP75 < 1: a loose second box', () => {
    // Boxes P, Q. Detections: P exactly (0.9); D = (0.5,0)-(10.5,10) (0.8): IoU(D,P) = 95/105 = 0.905, IoU(D,Q) = 85/115 = 0.739.
    // Greedy by score: P takes box P at every threshold; D's best free box is Q (0.739).
    // t = 0.5..0.7 (5 thresholds): both TP -> precision 1 at every recall -> AP 1.
    // t = 0.75..0.95 (5): D is an FP: rec [.5,.5], prec [1,.5]; recall thresholds 0, 0.01, ..., 0.50 (51 of 101)
    //   are reached at precision 1, the other 50 never -> AP 51/101 = 0.50495.
    // AP = (5 * 1 + 5 * 51/101) / 10 = 760/1010 = 0.75248.
    const r = evaluateCoco([det('a', P, 0.9), det('a', [0.5, 0, 10.5, 10], 0.8)], [gt('a', P), gt('a', Q)]);
    const c = r.perClass[0]!;
    expect(c.ap50).toBeCloseTo(1, 12);
    expect(c.ap75).toBeCloseTo(51 / 101, 12);
    expect(c.ap).toBeCloseTo(760 / 1010, 12);
    expect(c.apPerIou.map((v) => Math.round(v * 1e6) / 1e6)).toEqual([1, 1, 1, 1, 1, 0.50495, 0.50495, 0.50495, 0.50495, 0.50495]);
    expect([r.ap50, r.ap75, r.ap]).toEqual([c.ap50, c.ap75, c.ap]);
  });

  it('one detection at IoU 0.72: AP50 1, AP75 0, AP 0.5', () => {
    // IoU 72/100 passes t = 0.5..0.7 (5 thresholds, AP 1 each), fails 0.75..0.95 (AP 0): mean 0.5.
    const c = evaluateCoco([det('a', [0, 0, 10, 7.2], 0.9)], [gt('a', P)]).perClass[0]!;
    expect([c.ap50, c.ap75, c.ap].map((v) => Math.round(v! * 1e9) / 1e9)).toEqual([1, 0, 0.5]);
  });

  it('ranks equal scores in input order', () => {
    // Two detections at 0.5 for one box. FP first: rec [0, 1], prec [0, .5] -> envelope .5 -> AP 0.5. TP first: AP 1.
    const fpFirst = evaluateCoco([det('a', FAR, 0.5), det('a', P, 0.5)], [gt('a', P)]);
    const tpFirst = evaluateCoco([det('a', P, 0.5), det('a', FAR, 0.5)], [gt('a', P)]);
    expect(fpFirst.ap).toBeCloseTo(0.5, 12);
    expect(tpFirst.ap).toBeCloseTo(1, 12);
    // Across images too.
    expect(evaluateCoco([det('b', P, 0.5), det('a', P, 0.5)], [gt('a', P)]).ap).toBeCloseTo(0.5, 12);
  });

  it('handles images without detections, images without boxes, and classes without boxes', () => {
    // Boxes in a and b, a found: rec [.5] -> recall thresholds 0..0.5 (51) at precision 1 -> 51/101.
    expect(evaluateCoco([det('a', P, 0.9)], [gt('a', P), gt('b', P)]).ap).toBeCloseTo(51 / 101, 12);
    // A detection in c, which has no box, ranked first: FP then TP -> 0.5.
    expect(evaluateCoco([det('c', P, 0.9), det('a', P, 0.8)], [gt('a', P)]).ap).toBeCloseTo(0.5, 12);
    // Class 5 has only detections: reported with AP null and left out of the mean.
    const r = evaluateCoco([det('a', P, 0.9), det('a', P, 0.9, 5)], [gt('a', P)]);
    expect(r.perClass[1]).toMatchObject({ classIndex: 5, numGt: 0, numDetections: 1, ap: null, ap50: null, ap75: null });
    expect(r.classesInMean).toBe(1);
    expect(evaluateCoco([], [])).toMatchObject({ ap: null, ap50: null, ap75: null, classesInMean: 0 });
  });

  it('treats difficult boxes as ignore regions that absorb any number of detections', () => {
    // Two detections on the difficult box (0.95, 0.9) are ignored; the TP (0.8) gives rec [0,0,1], prec [0,0,1] -> AP 1.
    const r = evaluateCoco([det('a', FAR, 0.95), det('a', FAR, 0.9), det('a', P, 0.8)], [gt('a', P), gt('a', FAR, true)]);
    expect(r.perClass[0]).toMatchObject({ numGt: 1, numIgnored: 1, numDetections: 3 });
    expect(r.ap).toBeCloseTo(1, 12);
    // A detection on an ignored box alone is no FP, but the missed normal box in b still counts: recall 0 -> AP 0.
    expect(evaluateCoco([det('a', FAR, 0.9)], [gt('b', P), gt('a', FAR, true)]).ap).toBe(0);
  });

  it('prefers a normal box to an ignored one of higher IoU, as pycocotools does', () => {
    // X = (1,0)-(11,10) is exactly the difficult box (IoU 1) and overlaps P by 90/110 = 0.818.
    // t = 0.5..0.8 (7 thresholds): X matches P -> TP -> AP 1. t = 0.85..0.95 (3): P fails, X falls to the
    // ignored box, P is missed -> AP 0. Mean 7/10. (The VOC devkit would take the difficult box at 0.5.)
    const X: Box = [1, 0, 11, 10];
    const c = evaluateCoco([det('a', X, 0.9)], [gt('a', P), gt('a', X, true)]).perClass[0]!;
    expect(c.ap50).toBeCloseTo(1, 12);
    expect(c.ap).toBeCloseTo(0.7, 12);
  });

  it('counts a duplicate detection of one box as an FP', () => {
    // P found at 0.9, again at 0.8 (FP), Q at 0.7 over Q alone (TP at every threshold): rec [.5,.5,1], prec [1,.5,2/3].
    // Envelope [1, 2/3, 2/3]: recall thresholds 0..0.5 (51) -> 1, 0.51..1 (50) -> 2/3: (51 + 100/3) / 101 = 253/303.
    const far: Box = [20, 0, 30, 10];
    const r = evaluateCoco([det('a', P, 0.9), det('a', P, 0.8), det('a', far, 0.7)], [gt('a', P), gt('a', far)]);
    expect(r.ap).toBeCloseTo(253 / 303, 12);
  });

  it('keeps at most maxDets detections per image and class', () => {
    // Three boxes found at 0.9, 0.8, 0.7; with maxDets 2 the 0.7 one is dropped: rec [1/3, 2/3] at precision 1.
    // Recall thresholds 0..0.66 (67 of 101) are reached -> AP 67/101.
    const boxes: Box[] = [P, [20, 0, 30, 10], [40, 0, 50, 10]];
    const gts = boxes.map((b) => gt('a', b));
    const dets = boxes.map((b, i) => det('a', b, 0.9 - i / 10));
    expect(evaluateCoco(dets, gts, { maxDets: 2 }).ap).toBeCloseTo(67 / 101, 12);
    expect(evaluateCoco(dets, gts).ap).toBeCloseTo(1, 12);
  });
});

describe('evaluateCoco against pycocotools', () => {
  interface Reference {
    detections: EvalDetection[];
    groundTruth: EvalGroundTruth[];
    expected: { ap: number; ap50: number; ap75: number; perClass: { classIndex: number; ap: number | null; ap50: number | null; ap75: number | null }[] };
  }
  const ref = JSON.parse(readFileSync(new URL('./fixtures/pycocotools-random.json', import.meta.url), 'utf8')) as Reference;

  it('gives the AP, AP50, AP75 and per-class values pycocotools gives on random boxes', () => {
    // 13 images, 5 classes (class 4 has detections only), one image with 106 detections of one class, cut to 100:
    // its lowest-scored one is the only hit on a second box, so without the cut class 0 would score higher.
    expect(ref.detections.filter((d) => d.imageId === 'crowded').length).toBe(106);
    const r = evaluateCoco(ref.detections, ref.groundTruth);
    expect(evaluateCoco(ref.detections, ref.groundTruth, { maxDets: 200 }).perClass[0]!.ap).toBeGreaterThan(r.perClass[0]!.ap! + 0.002);
    expect(r.ap).toBeCloseTo(ref.expected.ap, 12);
    expect(r.ap50).toBeCloseTo(ref.expected.ap50, 12);
    expect(r.ap75).toBeCloseTo(ref.expected.ap75, 12);
    expect(r.perClass.map((c) => c.classIndex)).toEqual(ref.expected.perClass.map((c) => c.classIndex));
    r.perClass.forEach((c, k) => {
      const e = ref.expected.perClass[k]!;
      for (const key of ['ap', 'ap50', 'ap75'] as const) {
        if (e[key] === null) expect(c[key]).toBeNull();
        else expect(c[key]).toBeCloseTo(e[key], 12);
      }
    });
  });
});
