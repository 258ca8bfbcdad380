/**
 * Training augmentations of an image and its boxes, consistently.
 *
 * Horizontal flip: Boxes are in continuous coordinates
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

/** A window of an image in whole pixels: left, top, width, height. */
export interface CropWindow {
  x: number;
  y: number;
  width: number;
  height: number;
}

/**
 * A window of `width` x `height` scaled by `scale` (each side), placed at (u, v) ∈ [0, 1) of the room
 * left: the draw of a random crop, given its three uniform numbers.
 */
export function cropWindow(width: number, height: number, scale: number, u: number, v: number): CropWindow {
  const w = Math.max(1, Math.min(width, Math.round(width * scale)));
  const h = Math.max(1, Math.min(height, Math.round(height * scale)));
  return { x: Math.floor(u * (width - w + 1)), y: Math.floor(v * (height - h + 1)), width: w, height: h };
}

/** A new image holding the window's pixels. */
export function cropImage(image: RgbImage, win: CropWindow): RgbImage {
  const { width, channels, data } = image;
  if (!(win.x >= 0 && win.y >= 0 && win.width >= 1 && win.height >= 1 && win.x + win.width <= width && win.y + win.height <= image.height)) {
    throw new Error(`Crop window ${win.width}x${win.height} at (${win.x}, ${win.y}) does not lie inside the ${width}x${image.height} image.`);
  }
  const out = new Uint8Array(win.width * win.height * channels);
  const row = win.width * channels;
  for (let y = 0; y < win.height; y++) {
    const from = ((win.y + y) * width + win.x) * channels;
    out.set(data.subarray(from, from + row), y * row);
  }
  return { width: win.width, height: win.height, channels, data: out };
}

/**
 * A continuous box of the image in the window's coordinates, clipped to it; null when the box's
 * centre lies outside the window (the object is left out, as SSD's crops do: what is left of it
 * is mostly cut away).
 */
export function cropBox(box: Box, win: CropWindow): Box | null {
  const cx = (box[0] + box[2]) / 2 - win.x;
  const cy = (box[1] + box[3]) / 2 - win.y;
  if (!(cx >= 0 && cx <= win.width && cy >= 0 && cy <= win.height)) return null;
  const clip = (v: number, max: number) => Math.min(Math.max(v, 0), max);
  return [clip(box[0] - win.x, win.width), clip(box[1] - win.y, win.height), clip(box[2] - win.x, win.width), clip(box[3] - win.y, win.height)];
}
