import { clipBox } from './box';
import type { Box, Detection } from './types';

/**
 * One level of a GFL head's raw output for one image, NHWC without the batch axis:
 * `data[(y * width + x) * channels + c]`, channels = numClasses class logits followed by
 * 4 edges x (regMax + 1) distance-bin logits, edge order left, top, right, bottom.
 */
export interface GflLevelOutput {
  data: ArrayLike<number>;
  height: number;
  width: number;
  stride: number;
}

export interface GflDecodeOptions {
  numClasses: number;
  regMax: number;
  /** Side of the square model input; boxes are clipped to it. */
  inputSize: number;
  /** Candidates scoring at or below this (after sigmoid) are skipped. */
  scoreThreshold: number;
}

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

/**
 * Expected value of a discrete distribution given by logits `data[offset .. offset+bins)`:
 * softmax over the bins, then Sum_i i * p_i. Subtracts the max first for numerical safety.
 */
export function expectedBin(data: ArrayLike<number>, offset: number, bins: number): number {
  let max = -Infinity;
  for (let i = 0; i < bins; i++) max = Math.max(max, data[offset + i] as number);
  let sum = 0;
  let weighted = 0;
  for (let i = 0; i < bins; i++) {
    const e = Math.exp((data[offset + i] as number) - max);
    sum += e;
    weighted += i * e;
  }
  return weighted / sum;
}

/** Centre of grid cell (x, y) at this stride, in input pixels: ((x + 0.5)·s, (y + 0.5)·s). */
export function cellCentre(x: number, y: number, stride: number): [number, number] {
  return [(x + 0.5) * stride, (y + 0.5) * stride];
}

/**
 * Decode one level into candidate detections in model-input pixels: every (cell, class) whose
 * sigmoid score passes the threshold, with the box the cell's edge distributions predict.
 */
export function decodeGflLevel(level: GflLevelOutput, options: GflDecodeOptions): Detection[] {
  const { numClasses, regMax, inputSize, scoreThreshold } = options;
  const bins = regMax + 1;
  const channels = numClasses + 4 * bins;
  const expected = level.height * level.width * channels;
  if (level.data.length !== expected) {
    throw new Error(
      `GFL level at stride ${level.stride}: expected ${level.height}x${level.width}x${channels} = ${expected} values, got ${level.data.length}.`,
    );
  }
  // A logit threshold avoids an exp per (cell, class) for the vast majority that fail.
  const logitThreshold = Math.log(scoreThreshold / (1 - scoreThreshold));
  const out: Detection[] = [];
  for (let y = 0; y < level.height; y++) {
    for (let x = 0; x < level.width; x++) {
      const base = (y * level.width + x) * channels;
      let box: Box | undefined;
      for (let c = 0; c < numClasses; c++) {
        const logit = level.data[base + c] as number;
        if (!(logit > logitThreshold)) continue;
        if (!box) {
          const [cx, cy] = cellCentre(x, y, level.stride);
          const d = [0, 1, 2, 3].map((e) => expectedBin(level.data, base + numClasses + e * bins, bins) * level.stride);
          box = clipBox([cx - d[0]!, cy - d[1]!, cx + d[2]!, cy + d[3]!], inputSize, inputSize);
        }
        out.push({ box, classIndex: c, score: sigmoid(logit) });
      }
    }
  }
  return out;
}
