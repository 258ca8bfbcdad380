import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { deflateSync } from 'node:zlib';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { decodeImageBytes, decodeImageFile, sniffImageFormat } from './decode-node';

const jpegPath = fileURLToPath(new URL('../../../shared/voc-fixture/VOCdevkit/VOC2012/JPEGImages/2007_000027.jpg', import.meta.url));

function crc32(bytes: Uint8Array): number {
  let c = ~0;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  return ~c >>> 0;
}

/** A PNG file assembled chunk by chunk (pngjs cannot write palette images). */
function buildPng(chunks: [string, Uint8Array][]): Uint8Array {
  const parts: Buffer[] = [Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])];
  for (const [type, data] of chunks) {
    const head = Buffer.alloc(8);
    head.writeUInt32BE(data.length, 0);
    head.write(type, 4, 'ascii');
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(Buffer.concat([Buffer.from(type, 'ascii'), data])), 0);
    parts.push(head, Buffer.from(data), crc);
  }
  return new Uint8Array(Buffer.concat(parts));
}

function ihdr(width: number, height: number, bitDepth: number, colorType: number): Uint8Array {
  const b = Buffer.alloc(13);
  b.writeUInt32BE(width, 0);
  b.writeUInt32BE(height, 4);
  b.set([bitDepth, colorType, 0, 0, 0], 8);
  return b;
}

/** Scanlines with filter byte 0 (None) in front of each row, deflated. */
const idat = (rows: number[][]) => new Uint8Array(deflateSync(Buffer.from(rows.flatMap((r) => [0, ...r]))));

describe('sniffImageFormat', () => {
  it('goes by the signature', () => {
    expect(sniffImageFormat(new Uint8Array([0xff, 0xd8, 0xff, 0xe0]))).toBe('jpeg');
    expect(sniffImageFormat(new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0]))).toBe('png');
    expect(sniffImageFormat(new TextEncoder().encode('GIF89a'))).toBeUndefined();
    expect(sniffImageFormat(new Uint8Array([0xff, 0xd8]))).toBeUndefined();
  });
});

describe('decodeImageBytes', () => {
  it('decodes an 8-bit grayscale PNG to RGBA with the gray value in R, G and B', () => {
    // 3x2 gray: rows [0, 128, 255] and [10, 20, 30].
    const bytes = buildPng([
      ['IHDR', ihdr(3, 2, 8, 0)],
      ['IDAT', idat([[0, 128, 255], [10, 20, 30]])],
      ['IEND', new Uint8Array()],
    ]);
    const img = decodeImageBytes(bytes, 'gray.png');
    expect([img.width, img.height, img.channels]).toEqual([3, 2, 4]);
    expect(Array.from(img.data)).toEqual([0, 128, 255, 10, 20, 30].flatMap((v) => [v, v, v, 255]));
  });

  it('decodes a grayscale PNG written by pngjs (input gray, output gray)', () => {
    const png = new PNG({ width: 2, height: 1, colorType: 0, inputColorType: 0, inputHasAlpha: false });
    png.data = Buffer.from([7, 200]);
    const bytes = new Uint8Array(PNG.sync.write(png, { colorType: 0, inputColorType: 0, inputHasAlpha: false }));
    expect(bytes[25]).toBe(0); // IHDR colour type byte: 0 = grayscale
    const img = decodeImageBytes(bytes, 'gray2.png');
    expect(Array.from(img.data)).toEqual([7, 7, 7, 255, 200, 200, 200, 255]);
  });

  it('decodes a palette PNG by looking up each index', () => {
    // Palette: 0 = red, 1 = (10, 20, 30), 2 = white. Image 2x2: [1, 0] / [2, 1].
    const bytes = buildPng([
      ['IHDR', ihdr(2, 2, 8, 3)],
      ['PLTE', new Uint8Array([255, 0, 0, 10, 20, 30, 255, 255, 255])],
      ['IDAT', idat([[1, 0], [2, 1]])],
      ['IEND', new Uint8Array()],
    ]);
    const img = decodeImageBytes(bytes, 'palette.png');
    expect(Array.from(img.data)).toEqual([10, 20, 30, 255, 255, 0, 0, 255, 255, 255, 255, 255, 10, 20, 30, 255]);
  });

  it('decodes an RGB PNG encoded by pngjs, whatever the name says', () => {
    const png = new PNG({ width: 2, height: 1 });
    png.data = Buffer.from([1, 2, 3, 255, 250, 251, 252, 128]);
    const img = decodeImageBytes(new Uint8Array(PNG.sync.write(png)), 'named-like-a.jpg');
    expect(Array.from(img.data)).toEqual([1, 2, 3, 255, 250, 251, 252, 128]);
  });

  it('decodes the fixture JPEG (486x500, as its XML says) exactly as jpeg-js does', () => {
    const bytes = readFileSync(jpegPath);
    const img = decodeImageBytes(bytes, '2007_000027.jpg');
    expect([img.width, img.height, img.channels]).toEqual([486, 500, 4]);
    const ref = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true });
    // Buffer.equals: toEqual walks a million values slowly.
    expect(Buffer.from(img.data).equals(Buffer.from(ref.data))).toBe(true);
    expect(Buffer.from(decodeImageFile(jpegPath).data).equals(Buffer.from(ref.data))).toBe(true);
  });

  it('decodes an RGB JPEG encoded by jpeg-js to nearly its pixels', () => {
    // A flat colour survives JPEG compression within a few levels.
    const data = Buffer.alloc(16 * 16 * 4);
    for (let i = 0; i < data.length; i += 4) data.set([200, 100, 50, 255], i);
    const { data: bytes } = jpeg.encode({ width: 16, height: 16, data }, 95);
    const img = decodeImageBytes(new Uint8Array(bytes), 'flat.jpg');
    expect([img.width, img.height]).toEqual([16, 16]);
    expect(Math.abs(img.data[0]! - 200)).toBeLessThanOrEqual(3);
    expect(Math.abs(img.data[1]! - 100)).toBeLessThanOrEqual(3);
    expect(Math.abs(img.data[2]! - 50)).toBeLessThanOrEqual(3);
  });

  it('names the file and the problem for corrupt, truncated, empty and unsupported files', () => {
    const bytes = new Uint8Array(readFileSync(jpegPath));
    expect(() => decodeImageBytes(bytes.subarray(0, 200), 'cut.jpg')).toThrow(/"cut\.jpg" as JPEG.*corrupt or truncated/);
    const png = buildPng([['IHDR', ihdr(3, 2, 8, 0)], ['IDAT', new Uint8Array([1, 2, 3, 4])], ['IEND', new Uint8Array()]]);
    expect(() => decodeImageBytes(png, 'bad.png')).toThrow(/"bad\.png" as PNG.*incorrect header check/);
    const good = new PNG({ width: 4, height: 4 });
    good.data = Buffer.alloc(64, 90);
    const whole = new Uint8Array(PNG.sync.write(good));
    expect(() => decodeImageBytes(whole.subarray(0, 45), 'cut.png')).toThrow(/"cut\.png" as PNG.*(truncated|end of file)/);
    expect(() => decodeImageBytes(new Uint8Array(), 'empty.jpg')).toThrow(/"empty\.jpg": it is an empty file/);
    expect(() => decodeImageBytes(new TextEncoder().encode('GIF89a....'), 'anim.gif')).toThrow(/"anim\.gif": it is a GIF image.*Convert it to JPEG or PNG/);
    expect(() => decodeImageBytes(new TextEncoder().encode('hello'), 'notes.txt')).toThrow(/"notes\.txt".*neither a JPEG nor a PNG/);
    expect(() => decodeImageFile('/nonexistent/x.jpg')).toThrow(/Could not read image file "\/nonexistent\/x\.jpg"/);
  });
});
