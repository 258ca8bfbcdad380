import { describe, expect, it } from 'vitest';
import { iou } from './box';
import { classwiseNms } from './nms';
import type { Detection } from './types';

describe('iou', () => {
  it('matches a hand-computed overlap', () => {
    // [0,0,10,10] vs [5,0,15,10]: inter 50, union 150
    expect(iou([0, 0, 10, 10], [5, 0, 15, 10])).toBeCloseTo(1 / 3, 12);
    expect(iou([0, 0, 10, 10], [10, 0, 20, 10])).toBe(0);
    expect(iou([0, 0, 0, 10], [0, 0, 0, 10])).toBe(0);
  });
});

describe('classwiseNms', () => {
  const d = (x: number, cls: number, score: number): Detection => ({ box: [x, 0, x + 10, 10], classIndex: cls, score });
  it('suppresses overlapping boxes of one class only', () => {
    const kept = classwiseNms([d(0, 0, 0.6), d(1, 0, 0.9), d(1, 1, 0.5), d(30, 0, 0.4)], { iouThreshold: 0.5, maxDetections: 10 });
    expect(kept.map((k) => [k.box[0], k.classIndex, k.score])).toEqual([
      [1, 0, 0.9],
      [1, 1, 0.5],
      [30, 0, 0.4],
    ]);
  });
  it('keeps a box whose IoU equals the threshold and honours maxDetections', () => {
    // IoU of [0,0,10,10] and [5,0,15,10] is 1/3
    const kept = classwiseNms([d(0, 0, 0.9), d(5, 0, 0.8), d(50, 0, 0.1)], { iouThreshold: 1 / 3, maxDetections: 2 });
    expect(kept.map((k) => k.box[0])).toEqual([0, 5]);
  });
  it('breaks score ties by input order', () => {
    const kept = classwiseNms([d(0, 0, 0.5), d(2, 0, 0.5)], { iouThreshold: 0.3, maxDetections: 5 });
    expect(kept.map((k) => k.box[0])).toEqual([0]);
  });
});
