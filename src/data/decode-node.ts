import { readFileSync } from 'node:fs';
import jpeg from 'jpeg-js';
import type { RgbImage } from './image';

/** Decodes a JPEG file from disk in Node (no browser decoder there). */
export function decodeJpegFile(path: string): RgbImage {
  const bytes = readFileSync(path);
  try {
    const { width, height, data } = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true, maxMemoryUsageInMB: 1024 });
    return { width, height, channels: 4, data };
  } catch (error) {
    throw new Error(`Could not decode JPEG "${path}": ${(error as Error).message}. The file may be corrupt or not a JPEG.`, { cause: error });
  }
}
