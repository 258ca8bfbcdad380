import { describe, expect, it } from 'vitest';
import { makeAnchorGrid } from './anchors';
import type { Assignment } from './assignment';
import { assignAtss } from './atss';
import { iou } from './box';
import type { Box } from './types';

const gt = (box: Box, classIndex = 0) => ({ box, classIndex });
const rowOf = (a: Assignment, g: number) => a.ious.subarray(g * a.grid.count, (g + 1) * a.grid.count);
const candidateIous = (a: Assignment, g: number) => Array.from(a.candidates[g]!, (i) => rowOf(a, g)[i]!);

/** mean + sample std, recomputed independently of the implementation. */
function meanPlusStd(values: number[]): number {
  const mean = values.reduce((s, v) => s + v, 0) / values.length;
  const variance = values.reduce((s, v) => s + (v - mean) ** 2, 0) / (values.length - 1);
  return mean + Math.sqrt(variance);
}

describe('assignAtss on a 32x32 input, strides [8, 16], anchor side 5·s', () => {
  // Level 0: 4x4 anchors, centres 4, 12, 20, 28, boxes 40x40 (area 1600), indices 0..15.
  // Level 1: 2x2 anchors at offset 16, centres 8, 24, boxes 80x80 (area 6400), indices 16..19.
  const grid = makeAnchorGrid(32, [8, 16], 5);

  it('GT covering the image: 13 candidates, threshold 0.6014, the 4 central anchors positive', () => {
    // GT [0,0,32,32], centre (16,16), area 1024.
    // Level 0 squared distances: the 4 inner anchors (12|20, 12|20) 32; the 8 edge-middle ones 160;
    // corners 288. Top 9 = the 4 inner (5,6,9,10) + the 5 lowest-index edge-middle ones (1,2,4,7,8).
    // Level 1 has only 4 anchors: all are candidates (16..19).
    // IoUs: inner (12,12): box [-8,32]², inter 32·32 = 1024, union 1600 → 0.64.
    //       edge (12,4): box x[-8,32] y[-16,24]: inter 32·24 = 768, union 1600+1024−768 = 1856 → 0.413793.
    //       level 1: box [-32,48]² holds the GT: 1024/6400 = 0.16.
    // mean = (4·0.64 + 5·0.413793 + 4·0.16)/13 = 5.268966/13 = 0.405305
    // sample var = (4·0.234695² + 5·0.008488² + 4·0.245305²)/12 = 0.461388/12 = 0.038449, std 0.196085
    // threshold = 0.601390; only the 0.64 anchors pass, and their centres are inside the GT.
    const a = assignAtss(grid, [gt([0, 0, 32, 32])]);
    expect(Array.from(a.candidates[0]!)).toEqual([5, 6, 9, 10, 1, 2, 4, 7, 8, 16, 17, 18, 19]);
    expect(candidateIous(a, 0).map((v) => +v.toFixed(6))).toEqual([
      0.64, 0.64, 0.64, 0.64, 0.413793, 0.413793, 0.413793, 0.413793, 0.413793, 0.16, 0.16, 0.16, 0.16,
    ]);
    expect(a.thresholds[0]).toBeCloseTo(0.60139, 5);
    expect(Array.from(a.positives[0]!)).toEqual([5, 6, 9, 10]);
    expect(Array.from(a.assignedGt).map((g, i) => (g === 0 ? i : -1)).filter((i) => i >= 0)).toEqual([5, 6, 9, 10]);
  });

  it('a GT smaller than every anchor box: uniform IoUs put the threshold above them, no positive', () => {
    // GT [8,8,24,24] (area 256) lies inside every anchor box: level 0 IoU 256/1600 = 0.16 (9 candidates),
    // level 1 IoU 256/6400 = 0.04 (4). mean = 1.6/13 = 0.123077;
    // sample var = (9·0.036923² + 4·0.083077²)/12 = 0.039877/12, std 0.057646 → threshold 0.180723 > 0.16.
    const a = assignAtss(grid, [gt([8, 8, 24, 24])]);
    expect(a.thresholds[0]).toBeCloseTo(0.180723, 5);
    expect(a.positives[0]!.length).toBe(0);
    expect(a.assignedGt.every((g) => g === -1)).toBe(true);
  });

  it('an anchor claimed by two GTs goes to the one with the higher IoU', () => {
    // GT A [0,0,32,32] alone: positives 5,6,9,10 with IoU 0.64 (first test).
    // GT B [2,2,30,30] (area 784), same centre so the same candidates:
    //   inner: box holds B → 784/1600 = 0.49; edge (12,4): inter 28·22 = 616, union 1768 → 0.348416;
    //   level 1: 784/6400 = 0.1225. mean = 4.192081/13 = 0.322468,
    //   sample var = (4·0.167532² + 5·0.025948² + 4·0.199968²)/12 = 0.275585/12, std 0.151543,
    //   threshold 0.474011 → B alone also claims 5,6,9,10 (0.49), but A's 0.64 wins all four.
    const alone = assignAtss(grid, [gt([2, 2, 30, 30], 1)]);
    expect(alone.thresholds[0]).toBeCloseTo(0.474011, 5);
    expect(Array.from(alone.positives[0]!)).toEqual([5, 6, 9, 10]);

    const both = assignAtss(grid, [gt([0, 0, 32, 32]), gt([2, 2, 30, 30], 1)]);
    expect(Array.from(both.thresholds)).toEqual([expect.closeTo(0.60139, 5), expect.closeTo(0.474011, 5)]);
    expect(Array.from(both.positives[0]!)).toEqual([5, 6, 9, 10]);
    expect(both.positives[1]!.length).toBe(0);
    // The same with the GTs listed the other way round: the winner follows the IoU, not the order.
    const swapped = assignAtss(grid, [gt([2, 2, 30, 30], 1), gt([0, 0, 32, 32])]);
    expect(swapped.positives.map((p) => Array.from(p))).toEqual([[], [5, 6, 9, 10]]);
  });

  it('zero GTs: every anchor is background and the per-GT arrays are empty', () => {
    const a = assignAtss(grid, []);
    expect(a.assignedGt.length).toBe(20);
    expect(a.assignedGt.every((g) => g === -1)).toBe(true);
    expect([a.ious.length, a.thresholds.length, a.candidates.length, a.positives.length]).toEqual([0, 0, 0, 0]);
  });

  it('rejects empty or non-finite boxes and bad options with a message', () => {
    expect(() => assignAtss(grid, [gt([10, 10, 10, 20])])).toThrow(/empty box/);
    expect(() => assignAtss(grid, [gt([0, 0, NaN, 20])])).toThrow(/finite/);
    expect(() => assignAtss(grid, [gt([0, 0, 8, 8], -1)])).toThrow(/class index/);
    expect(() => assignAtss(grid, [gt([0, 0, 8, 8])], { topk: 0 })).toThrow(/topk/);
  });
});

describe('assignAtss near the image border (64x64 input, strides [8, 16], side 5·s)', () => {
  // Level 0: 8x8, centres 4..60, boxes 40x40 (area 1600). Level 1: 4x4 at offset 64, centres
  // 8, 24, 40, 56, boxes 80x80 (area 6400).
  const grid = makeAnchorGrid(64, [8, 16], 5);

  it('GT in the top-left corner: candidates stay on the grid, anchor boxes reach outside the image', () => {
    // GT [0,0,24,40], centre (12,20), area 960.
    // Level 0 squared distances: (12,20) 0; (4|20,20) and (12,12|28) 64; (4|20,12|28) 128; next 256.
    // → the 3x3 block x ∈ {4,12,20}, y ∈ {12,20,28}: indices 8,9,10,16,17,18,24,25,26.
    //   x-overlap with [0,24] is 24 for all three columns (boxes [-16,24], [-8,32], [0,40]);
    //   y-overlap with [0,40]: 40 for cy = 20 (box [0,40]), 32 for cy = 12 or 28.
    //   IoU cy = 20: 960/1600 = 0.6; cy = 12|28: 768/(1600+960−768) = 0.428571.
    // Level 1: 9 nearest of 16 (9th d² 1184 < 10th 1312); every one of their 80x80 boxes holds the GT
    //   → 960/6400 = 0.15.
    // mean = (3·0.6 + 6·0.428571 + 9·0.15)/18 = 5.721429/18 = 0.317857
    // sample var = (3·0.282143² + 6·0.110714² + 9·0.167857²)/17 = 0.565942/17 = 0.033291, std 0.182458
    // threshold 0.500315 → the three 0.6 anchors (4|12|20, 20) = 16, 17, 18, all inside the GT.
    const a = assignAtss(grid, [gt([0, 0, 24, 40])]);
    const c = Array.from(a.candidates[0]!);
    expect(c.slice(0, 9).sort((x, y) => x - y)).toEqual([8, 9, 10, 16, 17, 18, 24, 25, 26]);
    expect(c.slice(9).every((i) => i >= 64 && i < 80)).toBe(true);
    expect(c.slice(9).map((i) => rowOf(a, 0)[i])).toEqual(Array(9).fill(Math.fround(0.15)));
    expect(a.thresholds[0]).toBeCloseTo(0.500315, 5);
    expect(Array.from(a.positives[0]!)).toEqual([16, 17, 18]);
  });

  it('a candidate whose centre lies on the GT edge is not positive', () => {
    // GT [4,0,20,40] has the same centre (12,20) and candidates. x-overlap is 16 everywhere;
    // IoU cy = 20: 640/1600 = 0.4; cy = 12|28: 512/1728 = 0.296296; level 1: 640/6400 = 0.1.
    // mean = (1.2 + 1.777778 + 0.9)/18 = 0.215432; sample var = 0.261351/17, std 0.123992 → thr 0.339424.
    // The 0.4 anchors are x = 4, 12, 20, but x = 4 and x = 20 sit on the GT's left/right edges
    // (distance 0, not > 0.01): only anchor 17 is positive.
    const a = assignAtss(grid, [gt([4, 0, 20, 40])]);
    expect(a.thresholds[0]).toBeCloseTo(0.339424, 5);
    expect([16, 17, 18].map((i) => rowOf(a, 0)[i])).toEqual([0.4, 0.4, 0.4].map(Math.fround));
    expect(Array.from(a.positives[0]!)).toEqual([17]);
  });
});

describe('assignAtss on the NanoDet grid (416, strides [8, 16, 32], side 5·s)', () => {
  const grid = makeAnchorGrid(416, [8, 16, 32], 5);
  const boxA: Box = [100, 100, 260, 300];
  const boxB: Box = [140, 120, 300, 320];

  function checkGt(a: Assignment, g: number, box: Box, single: Assignment) {
    const cand = Array.from(a.candidates[g]!);
    expect(cand.length).toBe(27);
    // Each level's 9 candidates are its 9 nearest centres: none outside the set is closer.
    const [gx, gy] = [(box[0] + box[2]) / 2, (box[1] + box[3]) / 2];
    const d = (i: number) => Math.hypot(grid.centres[2 * i]! - gx, grid.centres[2 * i + 1]! - gy);
    grid.levels.forEach((level, l) => {
      const mine = cand.slice(9 * l, 9 * l + 9);
      expect(mine.every((i) => i >= level.offset && i < level.offset + level.width * level.height)).toBe(true);
      const farthest = Math.max(...mine.map(d));
      for (let i = level.offset; i < level.offset + level.width * level.height; i++) {
        if (!mine.includes(i)) expect(d(i)).toBeGreaterThanOrEqual(farthest);
      }
    });
    expect(a.thresholds[g]).toBeCloseTo(meanPlusStd(candidateIous(a, g)), 6);
    // The single-GT run decides the rule; the joint run may only move anchors to the other GT.
    for (const i of single.positives[0]!) {
      expect(cand).toContain(i);
      expect(rowOf(a, g)[i]).toBeGreaterThanOrEqual(a.thresholds[g]!);
      const [cx, cy] = [grid.centres[2 * i]!, grid.centres[2 * i + 1]!];
      expect(Math.min(cx - box[0], cy - box[1], box[2] - cx, box[3] - cy)).toBeGreaterThan(0.01);
    }
  }

  it('positives lie inside their box, the threshold is mean + sample std, conflicts go to the higher IoU', () => {
    const aloneA = assignAtss(grid, [gt(boxA)]);
    const aloneB = assignAtss(grid, [gt(boxB, 1)]);
    const both = assignAtss(grid, [gt(boxA), gt(boxB, 1)]);
    checkGt(both, 0, boxA, aloneA);
    checkGt(both, 1, boxB, aloneB);
    expect(both.thresholds[0]).toBe(aloneA.thresholds[0]);

    const claimedA = new Set(aloneA.positives[0]);
    const claimedB = new Set(aloneB.positives[0]);
    const contested = [...claimedA].filter((i) => claimedB.has(i));
    // These two boxes contest two anchors, one won by each (so the test exercises both outcomes).
    expect(contested.length).toBe(2);
    const winners = contested.map((i) => both.assignedGt[i]);
    expect(new Set(winners)).toEqual(new Set([0, 1]));
    for (let i = 0; i < grid.count; i++) {
      const g = both.assignedGt[i]!;
      if (!claimedA.has(i) && !claimedB.has(i)) {
        expect(g).toBe(-1);
        continue;
      }
      const iouA = claimedA.has(i) ? rowOf(both, 0)[i]! : -1;
      const iouB = claimedB.has(i) ? rowOf(both, 1)[i]! : -1;
      expect(g).toBe(iouB > iouA ? 1 : 0);
    }
    // positives[g] is exactly the anchors assigned to g, ascending.
    for (const g of [0, 1]) {
      const expected = Array.from(both.assignedGt).flatMap((v, i) => (v === g ? [i] : []));
      expect(Array.from(both.positives[g]!)).toEqual(expected);
    }
  });

  it('stores, per GT, the IoU of every anchor box as box.ts computes it', () => {
    const a = assignAtss(grid, [gt(boxA), gt(boxB, 1)]);
    expect(a.ious.length).toBe(2 * 3549);
    [boxA, boxB].forEach((box, g) => {
      for (let i = 0; i < grid.count; i += 7) {
        const anchor = Array.from(grid.boxes.subarray(4 * i, 4 * i + 4)) as unknown as Box;
        expect(rowOf(a, g)[i]).toBe(Math.fround(iou(anchor, box)));
      }
    });
  });
});
