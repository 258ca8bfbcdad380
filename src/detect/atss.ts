import type { AnchorGrid } from './anchors';
import type { Assignment, GtObject } from './assignment';
import type { Box } from './types';

/**
 * ATSS label assignment (Zhang et al., CVPR 2020; as mmdet's / NanoDet's ATSSAssigner), plain
 * arrays, no tensors. Inputs: an AnchorGrid (its square anchor boxes of side octaveBaseScale·s)
 * and GT boxes in model-input pixels. Per GT:
 * 1. candidates: on every level, the `topk` (default 9) anchors whose centres are closest (L2)
 *    to the GT centre (all of the level's anchors when it has fewer); equal distances keep the
 *    lower anchor index first, so the result is deterministic;
 * 2. threshold = mean + std of the candidates' IoUs, std being the SAMPLE std (divides by n − 1)
 *    like torch.std in mmdet; with a single candidate the std is taken as 0 (torch would give
 *    NaN and no positive);
 * 3. positives: candidates with IoU >= threshold whose centre lies strictly inside the GT (the
 *    smallest distance from the centre to the four edges > 0.01 px, as mmdet).
 * An anchor claimed by several GTs goes to the one with the highest IoU (the lowest GT index on
 * a tie). IoUs and thresholds are rounded to float32 before they are compared, so the stored
 * `ious` and `thresholds` reproduce every decision exactly.
 */
export interface AtssOptions {
  /** Candidates per level per GT; 9 in ATSS and NanoDet. */
  topk?: number;
}

/** mmdet's margin: an anchor centre must be this far inside the GT box to count as inside. */
const INSIDE_EPS = 0.01;

export function assignAtss(grid: AnchorGrid, gts: readonly GtObject[], { topk = 9 }: AtssOptions = {}): Assignment {
  if (!Number.isInteger(topk) || topk < 1) {
    throw new Error(`ATSS topk must be a positive integer, got ${topk}.`);
  }
  gts.forEach((gt, g) => checkGt(gt, g));

  const numGt = gts.length;
  const { count, centres } = grid;
  const ious = new Float32Array(numGt * count);
  const thresholds = new Float32Array(numGt);
  const candidates: Int32Array[] = [];
  // Per anchor: the best claiming GT so far and its IoU.
  const assignedGt = new Int32Array(count).fill(-1);
  const bestIou = new Float32Array(count).fill(-Infinity);

  for (let g = 0; g < numGt; g++) {
    const box = gts[g]!.box;
    const row = ious.subarray(g * count, (g + 1) * count);
    for (let i = 0; i < count; i++) row[i] = anchorIou(grid.boxes, i, box);

    const gx = (box[0] + box[2]) / 2;
    const gy = (box[1] + box[3]) / 2;
    const cand = new Int32Array(grid.levels.reduce((n, l) => n + Math.min(topk, l.height * l.width), 0));
    let filled = 0;
    for (const level of grid.levels) {
      const picked = nearestInRange(centres, level.offset, level.offset + level.height * level.width, gx, gy, topk);
      cand.set(picked, filled);
      filled += picked.length;
    }
    candidates.push(cand);

    const threshold = Math.fround(meanPlusSampleStd(cand, row));
    thresholds[g] = threshold;
    for (const i of cand) {
      const v = row[i]!;
      if (!(v >= threshold)) continue;
      const cx = centres[2 * i]!;
      const cy = centres[2 * i + 1]!;
      const inside = Math.min(cx - box[0], cy - box[1], box[2] - cx, box[3] - cy) > INSIDE_EPS;
      // Strict > keeps the lower GT index on equal IoU (GTs are visited in order).
      if (inside && v > bestIou[i]!) {
        bestIou[i] = v;
        assignedGt[i] = g;
      }
    }
  }

  const positiveLists: number[][] = Array.from({ length: numGt }, () => []);
  for (let i = 0; i < count; i++) {
    const g = assignedGt[i]!;
    if (g >= 0) positiveLists[g]!.push(i);
  }
  return { grid, gts: [...gts], assignedGt, ious, thresholds, candidates, positives: positiveLists.map((p) => Int32Array.from(p)) };
}

function checkGt(gt: GtObject, g: number): void {
  const b = gt.box;
  if (b.length !== 4 || !b.every(Number.isFinite)) {
    throw new Error(`GT ${g} has box [${b.join(', ')}]: expected 4 finite numbers [x1, y1, x2, y2] in input pixels.`);
  }
  if (!(b[2] > b[0] && b[3] > b[1])) {
    throw new Error(`GT ${g} has an empty box [${b.join(', ')}] (needs x2 > x1 and y2 > y1): drop degenerate boxes before assignment.`);
  }
  if (!Number.isInteger(gt.classIndex) || gt.classIndex < 0) {
    throw new Error(`GT ${g} has class index ${gt.classIndex}: expected a non-negative integer in the model's label space.`);
  }
}

/** IoU of anchor i's box (from the grid's flat [count*4] array) with `b`, rounded to float32. */
function anchorIou(boxes: Float32Array, i: number, b: Box): number {
  const x1 = boxes[4 * i]!;
  const y1 = boxes[4 * i + 1]!;
  const x2 = boxes[4 * i + 2]!;
  const y2 = boxes[4 * i + 3]!;
  const iw = Math.min(x2, b[2]) - Math.max(x1, b[0]);
  const ih = Math.min(y2, b[3]) - Math.max(y1, b[1]);
  if (iw <= 0 || ih <= 0) return 0;
  const inter = iw * ih;
  const union = (x2 - x1) * (y2 - y1) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
  return Math.fround(inter / union);
}

/**
 * The k anchors in [start, end) whose centres are closest to (gx, gy), closest first; equal
 * distances keep ascending index order. O(n·k) insertion into a small sorted buffer.
 */
function nearestInRange(centres: Float32Array, start: number, end: number, gx: number, gy: number, k: number): Int32Array {
  const n = Math.min(k, end - start);
  const idx = new Int32Array(n);
  const dist = new Float64Array(n).fill(Infinity);
  let size = 0;
  for (let i = start; i < end; i++) {
    const dx = centres[2 * i]! - gx;
    const dy = centres[2 * i + 1]! - gy;
    const d = dx * dx + dy * dy;
    if (size === n && !(d < dist[n - 1]!)) continue;
    let j = size < n ? size++ : n - 1;
    // Shift strictly farther entries right; an equal distance stays ahead (lower index).
    while (j > 0 && dist[j - 1]! > d) {
      dist[j] = dist[j - 1]!;
      idx[j] = idx[j - 1]!;
      j--;
    }
    dist[j] = d;
    idx[j] = i;
  }
  return idx;
}

/** mean + sample std (n − 1) of values[indices]; the std is 0 for a single value. */
function meanPlusSampleStd(indices: Int32Array, values: Float32Array): number {
  const n = indices.length;
  let sum = 0;
  for (const i of indices) sum += values[i]!;
  const mean = sum / n;
  if (n < 2) return mean;
  let sq = 0;
  for (const i of indices) sq += (values[i]! - mean) ** 2;
  return mean + Math.sqrt(sq / (n - 1));
}
