/**
 * Box coordinate conventions, and the one place where VOC boxes enter continuous coordinates.
 *
 * - VOC annotations (and VocInstance.box) are 1-based inclusive pixel indices: a box
 *   [x1, y1, x2, y2] covers pixel columns x1..x2 (1 = the leftmost column), so it is
 *   x2 − x1 + 1 pixels wide.
 * - Everything the lab computes with (letterbox, flip, GT in model-input pixels, detector
 *   output) uses continuous coordinates: pixel column i (0-based) spans [i, i + 1), the image
 *   spans [0, W] x [0, H], and a box is x2 − x1 wide.
 *
 * Column x (1-based) is the continuous span [x − 1, x], so a VOC box becomes
 * [x1 − 1, y1 − 1, x2, y2]. The inverse, for handing detections to the VOC evaluator, is
 * `continuousToVocPixels` in src/eval/voc-map.ts: [x1 + 1, y1 + 1, x2, y2].
 */
import type { Box } from '../detect/types';

export { continuousToVocPixels } from '../eval/voc-map';

/** A VOC box (1-based inclusive pixels) → continuous coordinates [x1 − 1, y1 − 1, x2, y2]. */
export function vocPixelsToContinuous(box: Box): Box {
  return [box[0] - 1, box[1] - 1, box[2], box[3]];
}

/** Clips a continuous box to the image [0, width] x [0, height]. */
export function clipBox(box: Box, width: number, height: number): Box {
  const cx = (v: number) => Math.min(Math.max(v, 0), width);
  const cy = (v: number) => Math.min(Math.max(v, 0), height);
  return [cx(box[0]), cy(box[1]), cx(box[2]), cy(box[3])];
}
