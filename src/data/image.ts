/** Decoded pixels, row-major, interleaved channels (RGB or RGBA), 0–255. */
export interface RgbImage {
  width: number;
  height: number;
  channels: 3 | 4;
  data: Uint8Array | Uint8ClampedArray;
}

export function assertImage(img: RgbImage, origin: string): void {
  if (!(img.width > 0 && img.height > 0)) throw new Error(`${origin}: the image has no pixels (${img.width}x${img.height}).`);
  if (img.data.length !== img.width * img.height * img.channels) {
    throw new Error(`${origin}: pixel buffer holds ${img.data.length} values, expected ${img.width}x${img.height}x${img.channels}.`);
  }
}
