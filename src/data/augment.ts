/**
 * Horizontal flip of an image and of boxes, consistently. Boxes are in continuous coordinates
 * (see ./voc-box.ts): the continuous point x in a W-wide image goes to W − x, so a box
 * [x1, y1, x2, y2] becomes [W − x2, y1, W − x1, y2]. Pixel column i (spanning [i, i + 1)) goes
 * to column W − 1 − i (spanning [W − i − 1, W − i]), which is the same map.
 */
import type { Box } from '../detect/types';
import type { RgbImage } from './image';

/** A new image, mirrored left–right; the input is left untouched. */
export function flipImageHorizontal(image: RgbImage): RgbImage {
  const { width, height, channels, data } = image;
  const out = new Uint8Array(data.length);
  const row = width * channels;
  for (let y = 0; y < height; y++) {
    const base = y * row;
    for (let x = 0; x < width; x++) {
      const from = base + x * channels;
      const to = base + (width - 1 - x) * channels;
      for (let c = 0; c < channels; c++) out[to + c] = data[from + c]!;
    }
  }
  return { width, height, channels, data: out };
}

/** A continuous box in a `width`-wide image, mirrored left–right. */
export function flipBoxHorizontal(box: Box, width: number): Box {
  return [width - box[2], box[1], width - box[0], box[3]];
}
