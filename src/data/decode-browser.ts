import type { RgbImage } from './image';

/**
 * Decodes an image file (JPEG, PNG, WebP, grayscale too) in a window or a worker, with the
 * browser's own decoder. EXIF orientation is applied, as a person sees the photo.
 */
export async function decodeImageBlob(blob: Blob, name = 'image'): Promise<RgbImage> {
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(blob, { imageOrientation: 'from-image' });
  } catch (error) {
    throw new Error(
      `Could not decode "${name}" (${blob.type || 'unknown type'}, ${blob.size} bytes): the file is not an image this browser can read, or it is corrupt. Use a JPEG, PNG or WebP file. (${String(error)})`,
      { cause: error },
    );
  }
  try {
    const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    if (!ctx) throw new Error('OffscreenCanvas 2D context is not available in this browser.');
    ctx.drawImage(bitmap, 0, 0);
    const { data } = ctx.getImageData(0, 0, bitmap.width, bitmap.height);
    return { width: bitmap.width, height: bitmap.height, channels: 4, data };
  } finally {
    bitmap.close();
  }
}
