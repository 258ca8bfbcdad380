import { describe, expect, it } from 'vitest';
import type { Box } from '../detect/types';
import type { EvalDetection, EvalGroundTruth } from './types';
import { ap11Point, apAllPoint, continuousToVocPixels, evaluateVoc, vocIoU } from './voc-map';

const det = (imageId: string, box: Box, score: number, classIndex = 0): EvalDetection => ({ imageId, box, score, classIndex });
const gt = (imageId: string, box: Box, difficult = false, classIndex = 0): EvalGroundTruth => ({ imageId, box, classIndex, difficult });

const A: Box = [1, 1, 10, 10];
const B: Box = [21, 21, 40, 40];
const FAR: Box = [60, 60, 70, 70];

describe('vocIoU', () => {
  it('uses the +1 pixel convention unless told otherwise', () => {
    // Inclusive: both 10x10 = 100 px; columns 4..10 overlap = 7 x 10 = 70; union 130 -> 7/13 = 0.538.
    expect(vocIoU([1, 1, 10, 10], [4, 1, 13, 10])).toBeCloseTo(7 / 13, 12);
    // Continuous: both 9x9 = 81; overlap 6 x 9 = 54; union 108 -> 0.5.
    expect(vocIoU([1, 1, 10, 10], [4, 1, 13, 10], false)).toBe(0.5);
    // Inclusive: boxes sharing one pixel column overlap by one column (1 x 10 of 100 + 100 - 10).
    expect(vocIoU([1, 1, 10, 10], [10, 1, 19, 10])).toBeCloseTo(10 / 190, 12);
    expect(vocIoU([1, 1, 10, 10], [10, 1, 19, 10], false)).toBe(0);
  });

  it('converts a continuous detector box to inclusive pixels of the same width', () => {
    // Continuous [0, 10) covers pixels 1..10 in VOC numbering: 10 wide either way.
    expect(continuousToVocPixels([0, 0, 10, 5])).toEqual([1, 1, 10, 5]);
  });
});

describe('AP from a precision/recall curve', () => {
  it('computes 11-point and all-point AP by hand', () => {
    // rec [.5,.5,1], prec [1,.5,2/3]. 11-point: t = 0..0.5 (6 values) -> 1, t = 0.6..1 (5) -> 2/3: (6 + 10/3) / 11 = 28/33.
    // All-point: envelope [1, 2/3, 2/3] -> 0.5 * 1 + 0.5 * 2/3 = 5/6.
    expect(ap11Point([0.5, 0.5, 1], [1, 0.5, 2 / 3])).toBeCloseTo(28 / 33, 12);
    expect(apAllPoint([0.5, 0.5, 1], [1, 0.5, 2 / 3])).toBeCloseTo(5 / 6, 12);
    expect(ap11Point([], [])).toBe(0);
    expect(apAllPoint([], [])).toBe(0);
  });
});

describe('evaluateVoc', () => {
  it('gives AP 1 to a perfect detector', () => {
    const gts = [gt('a', A), gt('a', B), gt('b', A), gt('b', B, false, 1)];
    const dets = gts.map((g, i) => det(g.imageId, g.box, 0.9 - i * 0.1, g.classIndex));
    const r = evaluateVoc(dets, gts);
    expect(r.perClass.map((c) => [c.classIndex, c.apAll, c.numGt, c.numDetections, c.tp, c.fp])).toEqual([
      [0, 1, 3, 3, 3, 0],
      [1, 1, 1, 1, 1, 0],
    ]);
    // The 11 terms of 1/11 add up to 1 + 2e-16, as in the devkit's float sum.
    for (const c of r.perClass) expect(c.ap11).toBeCloseTo(1, 12);
    expect(r.map11).toBeCloseTo(1, 12);
    expect([r.mapAll, r.classesInMap]).toEqual([1, 2]);
  });

  it('one TP and one FP: the order decides', () => {
    // FP (0.9) then TP (0.8), one box: rec [0, 1], prec [0, 1/2].
    // 11-point: every t has a point with rec >= t and prec 1/2 -> 11 * (1/2) / 11 = 0.5.
    // All-point: envelope [1/2, 1/2]; recall steps 0 -> 1 once, at precision 1/2 -> 0.5.
    const fpFirst = evaluateVoc([det('a', FAR, 0.9), det('a', A, 0.8)], [gt('a', A)]).perClass[0]!;
    expect([fpFirst.apAll, fpFirst.tp, fpFirst.fp]).toEqual([0.5, 1, 1]);
    expect(fpFirst.ap11).toBeCloseTo(0.5, 12);
    expect(fpFirst.recall).toEqual([0, 1]);
    expect(fpFirst.precision).toEqual([0, 0.5]);
    // TP (0.9) then FP (0.8): rec [1, 1], prec [1, 1/2] -> the envelope is 1 everywhere: AP 1 both ways.
    const tpFirst = evaluateVoc([det('a', A, 0.9), det('a', FAR, 0.8)], [gt('a', A)]).perClass[0]!;
    expect(tpFirst.apAll).toBe(1);
    expect(tpFirst.ap11).toBeCloseTo(1, 12);
  });

  it('11-point and all-point differ: TP, FP, TP over two boxes', () => {
    // rec [.5,.5,1], prec [1,.5,2/3]: AP11 = 28/33 = 0.8485, all-point = 5/6 = 0.8333 (see above).
    const c = evaluateVoc([det('a', A, 0.9), det('a', FAR, 0.8), det('a', B, 0.7)], [gt('a', A), gt('a', B)]).perClass[0]!;
    expect(c.ap11).toBeCloseTo(28 / 33, 12);
    expect(c.apAll).toBeCloseTo(5 / 6, 12);
  });

  it('breaks score ties by input order (stable)', () => {
    // Equal scores: the first listed ranks first. FP first -> 0.5, TP first -> 1 (see the TP/FP case).
    expect(evaluateVoc([det('a', FAR, 0.5), det('a', A, 0.5)], [gt('a', A)]).mapAll).toBe(0.5);
    expect(evaluateVoc([det('a', A, 0.5), det('a', FAR, 0.5)], [gt('a', A)]).mapAll).toBe(1);
  });

  it('counts boxes in images with no detections as misses', () => {
    // Boxes in a and b, one detection in a: rec [0.5], prec [1].
    // 11-point: t = 0..0.5 -> 1 (6 values), t > 0.5 -> 0: 6/11. All-point: 0.5 * 1 = 0.5.
    const c = evaluateVoc([det('a', A, 0.9)], [gt('a', A), gt('b', A)]).perClass[0]!;
    expect(c.ap11).toBeCloseTo(6 / 11, 12);
    expect(c.apAll).toBe(0.5);
  });

  it('counts detections in images with no boxes as FPs', () => {
    // 'b' has no box: its detection (0.9) is an FP before the TP in 'a' -> rec [0,1], prec [0,.5] -> 0.5.
    const c = evaluateVoc([det('b', A, 0.9), det('a', A, 0.8)], [gt('a', A)]).perClass[0]!;
    expect([c.tp, c.fp, c.apAll]).toEqual([1, 1, 0.5]);
    expect(c.ap11).toBeCloseTo(0.5, 12);
  });

  it('leaves a class with no boxes out of the mAP', () => {
    const r = evaluateVoc([det('a', A, 0.9), det('a', FAR, 0.9, 7)], [gt('a', A)]);
    const c7 = r.perClass.find((c) => c.classIndex === 7)!;
    expect([c7.numGt, c7.fp, c7.ap11, c7.apAll]).toEqual([0, 1, null, null]);
    expect([r.mapAll, r.classesInMap]).toEqual([1, 1]);
    expect(r.map11).toBeCloseTo(1, 12);
    // Nothing to average over at all.
    expect(evaluateVoc([det('a', A, 0.9)], [])).toMatchObject({ map11: null, mapAll: null, classesInMap: 0 });
  });

  it('ignores difficult boxes: their detections are neither TP nor FP, their misses do not count', () => {
    // Detection on the difficult box (0.9) ignored, then a TP (0.8): rec [0, 1], prec [0, 1].
    // 11-point: each t has rec 1 at prec 1 -> 1. All-point: 1. numGt counts only the non-difficult box.
    const c = evaluateVoc([det('a', B, 0.9), det('a', A, 0.8)], [gt('a', A), gt('a', B, true)]).perClass[0]!;
    expect([c.numGt, c.numDifficult, c.tp, c.fp, c.apAll]).toEqual([1, 1, 1, 0, 1]);
    expect(c.ap11).toBeCloseTo(1, 12);
    // Without the flag the same detections find 2 boxes: rec [.5, 1], prec [1, 1] -> AP 1 too, but numGt 2.
    const plain = evaluateVoc([det('a', B, 0.9), det('a', A, 0.8)], [gt('a', A), gt('a', B)]).perClass[0]!;
    expect([plain.numGt, plain.tp]).toEqual([2, 2]);
    // An undetected difficult box costs nothing; a class with only difficult boxes is left out of the mAP.
    expect(evaluateVoc([det('a', A, 0.9)], [gt('a', A), gt('b', B, true)]).mapAll).toBe(1);
    expect(evaluateVoc([det('a', A, 0.9)], [gt('a', A, true)]).classesInMap).toBe(0);
  });

  it('counts a second detection of the same box as an FP', () => {
    // A at 0.9 (TP), A again at 0.8 (duplicate: FP), B at 0.7 (TP): the TP, FP, TP case -> 28/33 and 5/6.
    const c = evaluateVoc([det('a', A, 0.9), det('a', [1, 1, 10, 9], 0.8), det('a', B, 0.7)], [gt('a', A), gt('a', B)]).perClass[0]!;
    expect([c.tp, c.fp]).toEqual([2, 1]);
    expect(c.ap11).toBeCloseTo(28 / 33, 12);
    expect(c.apAll).toBeCloseTo(5 / 6, 12);
  });

  it('matches each detection to its highest-IoU box even when that box is taken, like the devkit', () => {
    // Boxes P = (0,0)-(10,10) and Q = (2,0)-(12,10). The second detection overlaps P most, P is taken: FP,
    // although its IoU with Q would pass. rec [.5, .5], prec [1, .5]: AP11 = 6/11, all-point 0.5.
    const c = evaluateVoc(
      [det('a', [0, 0, 10, 10], 0.9), det('a', [0.5, 0, 10.5, 10], 0.8)],
      [gt('a', [0, 0, 10, 10]), gt('a', [2, 0, 12, 10])],
    ).perClass[0]!;
    expect([c.tp, c.fp, c.apAll]).toEqual([1, 1, 0.5]);
    expect(c.ap11).toBeCloseTo(6 / 11, 12);
  });

  it('lets the +1 convention move an IoU across 0.5', () => {
    // IoU 7/13 = 0.538 with +1 (a TP), exactly 0.5 without (not > 0.5: an FP).
    const dets = [det('a', [4, 1, 13, 10], 0.9)];
    const gts = [gt('a', [1, 1, 10, 10])];
    expect(evaluateVoc(dets, gts).mapAll).toBe(1);
    expect(evaluateVoc(dets, gts, { pixelInclusive: false }).mapAll).toBe(0);
  });

  it('uses the devkit 11-point thresholds k * 0.1, so recall 0.3 misses t = 0.30000000000000004', () => {
    // 10 boxes, 3 found first at precision 1: rec [.1,.2,.3]. t = 0, 0.1, 0.2 -> 1; t = 3 * 0.1 > 0.3 -> 0: AP11 = 3/11.
    const gts = Array.from({ length: 10 }, (_, i) => gt(`i${i}`, A));
    const dets = [0, 1, 2].map((i) => det(`i${i}`, A, 1 - i / 10));
    const c = evaluateVoc(dets, gts).perClass[0]!;
    expect(c.ap11).toBeCloseTo(3 / 11, 12);
    expect(c.apAll).toBeCloseTo(0.3, 12);
  });

  it('rejects non-finite scores and boxes', () => {
    expect(() => evaluateVoc([det('a', A, NaN)], [])).toThrow(/detection #0 \(image "a"\) has a non-finite score/);
    expect(() => evaluateVoc([], [gt('a', [0, 0, Infinity, 1])])).toThrow(/ground-truth box #0/);
  });
});
