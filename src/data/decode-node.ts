/**
 * Image decoding in Node, where there is no browser decoder: JPEG (jpeg-js) and PNG (pngjs).
 * The format is chosen from the file's first bytes (its signature), never from its name, so a
 * PNG saved as ".jpg" still decodes. Output is always RGBA, 8 bits per channel:
 * grayscale, grayscale+alpha, palette and 16-bit PNGs are expanded (16-bit values rescaled to
 * 0–255); grayscale and CMYK JPEGs are converted by jpeg-js.
 */
import { readFileSync } from 'node:fs';
import { inflateSync } from 'node:zlib';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import type { RgbImage } from './image';

export type ImageFormat = 'jpeg' | 'png';

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

const startsWith = (bytes: Uint8Array, sig: readonly number[]) => bytes.length >= sig.length && sig.every((b, i) => bytes[i] === b);

/** Formats recognised only to say so in the error message. */
function otherFormat(bytes: Uint8Array): string | undefined {
  const ascii = (from: number, to: number) => String.fromCharCode(...bytes.subarray(from, to));
  if (ascii(0, 4) === 'GIF8') return 'GIF';
  if (ascii(0, 4) === 'RIFF' && ascii(8, 12) === 'WEBP') return 'WebP';
  if (ascii(0, 2) === 'BM') return 'BMP';
  if (ascii(4, 8) === 'ftyp') return 'HEIF/AVIF';
  if (startsWith(bytes, [0x49, 0x49, 0x2a, 0x00]) || startsWith(bytes, [0x4d, 0x4d, 0x00, 0x2a])) return 'TIFF';
  return undefined;
}

/** The image format from the file's signature: JPEG starts FF D8 FF, PNG with its 8-byte signature. */
export function sniffImageFormat(bytes: Uint8Array): ImageFormat | undefined {
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return 'jpeg';
  if (startsWith(bytes, PNG_SIGNATURE)) return 'png';
  return undefined;
}

/** Decodes JPEG or PNG bytes to RGBA; `name` (a file name or id) is only used in error messages. */
export function decodeImageBytes(bytes: Uint8Array, name: string): RgbImage {
  const format = sniffImageFormat(bytes);
  if (format === undefined) {
    const other = otherFormat(bytes);
    const what = other ? `a ${other} image, which is not supported in Node` : bytes.length === 0 ? 'an empty file' : 'neither a JPEG nor a PNG (unknown signature)';
    throw new Error(`Could not decode "${name}": it is ${what}. Convert it to JPEG or PNG.`);
  }
  try {
    if (format === 'jpeg') {
      const { width, height, data } = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true, maxMemoryUsageInMB: 1024 });
      return checked({ width, height, channels: 4, data }, name);
    }
    // pngjs wants a Buffer; this one shares the caller's memory.
    const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    checkPngPixelData(buffer);
    const png = PNG.sync.read(buffer);
    const data = new Uint8Array(png.data.buffer, png.data.byteOffset, png.data.byteLength);
    return checked({ width: png.width, height: png.height, channels: 4, data }, name);
  } catch (error) {
    const kind = format === 'jpeg' ? 'JPEG' : 'PNG';
    throw new Error(`Could not decode "${name}" as ${kind} (its signature says ${kind}): ${(error as Error).message}. The file is probably corrupt or truncated.`, {
      cause: error,
    });
  }
}

/** Channels per PNG colour type: gray, -, RGB, palette, gray+alpha, -, RGBA. */
const PNG_CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

/**
 * Inflates the PNG's pixel data once to check it: pngjs's synchronous reader returns black
 * pixels, without an error, when the compressed data is garbage.
 */
function checkPngPixelData(buf: Buffer): void {
  const idat: Buffer[] = [];
  let header: { width: number; height: number; depth: number; colorType: number; interlaced: boolean } | undefined;
  for (let at = 8; at + 8 <= buf.length; ) {
    const length = buf.readUInt32BE(at);
    const type = buf.toString('latin1', at + 4, at + 8);
    const data = buf.subarray(at + 8, at + 8 + length);
    if (data.length < length) throw new Error(`the ${type} chunk is cut short (file truncated)`);
    if (type === 'IHDR' && length >= 13) {
      header = { width: data.readUInt32BE(0), height: data.readUInt32BE(4), depth: data[8]!, colorType: data[9]!, interlaced: data[12] === 1 };
    }
    if (type === 'IDAT') idat.push(data);
    if (type === 'IEND') break;
    at += 12 + length;
  }
  if (!header) throw new Error('no IHDR chunk');
  if (idat.length === 0) throw new Error('no image data (IDAT chunk)');
  const raw = inflateSync(Buffer.concat(idat));
  const channels = PNG_CHANNELS[header.colorType];
  if (channels === undefined) throw new Error(`unknown colour type ${header.colorType}`);
  // One filter byte per row, then the packed samples; interlaced images hold more, never less.
  const expected = header.height * (1 + Math.ceil((header.width * channels * header.depth) / 8));
  if (!header.interlaced && raw.length < expected) throw new Error(`image data holds ${raw.length} bytes, expected ${expected} (file truncated)`);
}

/** Guards against a decoder that returns a short buffer instead of failing. */
function checked(img: RgbImage, name: string): RgbImage {
  if (!(img.width > 0 && img.height > 0) || img.data.length !== img.width * img.height * 4) {
    throw new Error(`decoder returned ${img.data.length} bytes for ${img.width}x${img.height} pixels of "${name}"`);
  }
  return img;
}

/** Reads and decodes a JPEG or PNG file from disk. */
export function decodeImageFile(path: string): RgbImage {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    throw new Error(`Could not read image file "${path}": ${(error as Error).message}.`, { cause: error });
  }
  return decodeImageBytes(bytes, path);
}

/** Kept for existing callers: any JPEG or PNG file decodes, whatever its name. */
export const decodeJpegFile = decodeImageFile;
