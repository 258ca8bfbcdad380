import { describe, expect, it } from 'vitest';
import type { Box, LabeledDetection } from '../detect/types';
import type { RgbImage } from '../data/image';
import { evaluateDetector, poolReports, reportOnImages, type EvalImage } from './evaluate-detector';

const names = ['cat', 'dog', 'bird'];
const blank = (width: number, height: number): RgbImage => ({ width, height, channels: 3, data: new Uint8Array(width * height * 3) });
const det = (box: Box, classIndex: number, score: number): LabeledDetection => ({ box, classIndex, score, className: names[classIndex]! });

describe('evaluateDetector on hand-made cases', () => {
  // Two images; class 0 has one GT in each. VOC [1, 1, 10, 10] is continuous [0, 0, 10, 10].
  const images: EvalImage[] = [
    { id: 'one', image: blank(20, 20), objects: [{ box: [1, 1, 10, 10], classIndex: 0, difficult: false }] },
    {
      id: 'two',
      image: blank(30, 20),
      objects: [
        { box: [11, 11, 20, 20], classIndex: 0, difficult: false },
        { box: [1, 1, 5, 5], classIndex: 1, difficult: true },
      ],
    },
  ];
  const detections: Record<string, LabeledDetection[]> = {
    one: [det([0, 0, 10, 10], 0, 0.9)],
    two: [det([20, 0, 30, 10], 0, 0.8), det([10, 10, 20, 20], 0, 0.7), det([0, 0, 5, 5], 1, 0.6), det([0, 0, 4, 4], 2, 0.5)],
  };

  it('scores a TP, an FP, a TP in rank order as computed by hand', async () => {
    const progress: string[] = [];
    const report = await evaluateDetector(images, (_, id) => detections[id]!, {
      classNames: names,
      classIndices: [0, 1],
      onProgress: (p) => progress.push(`${p.done}/${p.total} ${p.imageId}`),
    });
    expect(progress).toEqual(['1/2 one', '2/2 two']);
    // Class 0 ranked TP (0.9), FP (0.8), TP (0.7): recall [.5, .5, 1], precision [1, .5, 2/3].
    // All-point: 0.5·1 + 0.5·(2/3) = 5/6. 11-point: t = 0..0.5 → 1 (6 points), t = 0.6..1 → 2/3 (5): (6 + 10/3) / 11 = 28/33.
    const cat = report.perClass.find((c) => c.classIndex === 0)!;
    expect(cat).toMatchObject({ className: 'cat', numGt: 2, numDifficult: 0, numDetections: 3 });
    expect(cat.apAll).toBeCloseTo(5 / 6, 12);
    expect(cat.ap11).toBeCloseTo(28 / 33, 12);
    // Class 1 has only a difficult GT: no AP, and not in the mean. Class 2 is not evaluated.
    const dog = report.perClass.find((c) => c.classIndex === 1)!;
    expect(dog).toMatchObject({ className: 'dog', numGt: 0, numDifficult: 1, ap11: null, apAll: null, cocoAp: null });
    expect(report.perClass.map((c) => c.classIndex)).toEqual([0, 1]);
    expect(report.classesInMap).toBe(1);
    expect(report.mapAll).toBeCloseTo(5 / 6, 12);
    expect(report.map11).toBeCloseTo(28 / 33, 12);
    // COCO: the two TPs have IoU 1 at every threshold, so each threshold gives the same AP:
    // precision envelope 1 up to recall 0.5 (51 thresholds), 2/3 up to 1 (50): (51 + 100/3) / 101.
    expect(report.coco.ap).toBeCloseTo((51 + 100 / 3) / 101, 10);
    expect(report.coco.ap50).toBeCloseTo((51 + 100 / 3) / 101, 10);
    expect(report.counts).toEqual({ images: 2, groundTruth: 2, difficult: 1, detections: 4, otherClassDetections: 1, cappedDetections: 0 });
    expect(report.images[1]).toMatchObject({ id: 'two', width: 30, height: 20 });
    expect(report.images[1]!.detections.map((d) => d.className)).toEqual(['cat', 'cat', 'dog']);
    expect(report.images[1]!.groundTruth[1]).toEqual({ box: [1, 1, 5, 5], classIndex: 1, className: 'dog', difficult: true });
    // Plain data: survives JSON unchanged.
    expect(JSON.parse(JSON.stringify(report))).toEqual(report);
  });

  it('pools reports of separate images into the scores of one evaluation over all of them', async () => {
    const options = { classNames: names, classIndices: [0, 1] };
    const detect = (_: RgbImage, id: string) => detections[id]!;
    const [one, two] = [await evaluateDetector([images[0]!], detect, options), await evaluateDetector([images[1]!], detect, options)];
    // Alone, image one has its one TP (AP 1) and image two a FP ranked above its TP (AP 1/2).
    expect([one.mapAll, two.mapAll]).toEqual([1, 0.5]);
    const pooled = poolReports([one, two]);
    // Together: the hand-computed 5/6 of the test above, not the mean of the parts (3/4).
    expect(pooled.mapAll).toBeCloseTo(5 / 6, 12);
    const whole = await evaluateDetector(images, detect, options);
    const { elapsedMs: _a, ...a } = pooled;
    const { elapsedMs: _b, ...b } = whole;
    expect(a).toEqual(b);
    expect(() => poolReports([one, one])).toThrow('an image appears in more than one report');
    // And back: the whole report read on one image's detections alone is that image's report.
    const { elapsedMs: _c, counts: _d, ...alone } = reportOnImages(whole, ['two']);
    const { elapsedMs: _e, counts: _f, ...twoAlone } = two;
    expect(alone).toEqual(twoAlone);
    expect(() => reportOnImages(whole, ['three'])).toThrow('no image "three"');
    expect(() => poolReports([one, { ...two, settings: { ...two.settings, maxDetectionsPerImage: 5 } }])).toThrow('different evaluation settings');
  });

  it('keeps the highest-scoring detections up to the per-image cap', async () => {
    const many = Array.from({ length: 150 }, (_, i) => det([40, 40, 50, 50], 0, i / 150));
    const report = await evaluateDetector(images.slice(0, 1), () => many, { classNames: names });
    expect(report.counts.detections).toBe(100);
    expect(report.counts.cappedDetections).toBe(50);
    expect(report.images[0]!.detections[0]!.score).toBeCloseTo(149 / 150, 12);
    expect(Math.min(...report.images[0]!.detections.map((d) => d.score))).toBeCloseTo(50 / 150, 12);
  });

  it('loads images through loadImage, says what is missing, and stops when aborted', async () => {
    const noPixels: EvalImage[] = [{ id: 'x', objects: [] }];
    const loaded = await evaluateDetector(noPixels, () => [], { classNames: names, loadImage: async () => blank(7, 5) });
    expect(loaded.images[0]).toMatchObject({ width: 7, height: 5 });
    expect(loaded.map11).toBeNull();
    await expect(evaluateDetector(noPixels, () => [], { classNames: names })).rejects.toThrow(/"x" has no pixels and no loadImage/);
    await expect(evaluateDetector(images, () => [det([0, 0, 1, 1], 7, 1)], { classNames: names })).rejects.toThrow(/class index 7, outside the 3 class names/);
    await expect(evaluateDetector(images, () => [det([0, 0, NaN, 1], 0, 1)], { classNames: names })).rejects.toThrow(/non-finite/);
    const controller = new AbortController();
    let calls = 0;
    const run = evaluateDetector(images, () => {
      calls += 1;
      controller.abort();
      return [];
    }, { classNames: names, signal: controller.signal });
    await expect(run).rejects.toThrow(/abort/i);
    expect(calls).toBe(1);
  });
});
