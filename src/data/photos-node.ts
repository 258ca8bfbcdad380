/**
 * A folder of plain photos on disk (no annotations): calibration images for deriving a student,
 * or unlabelled training images. Every JPEG/PNG under the folder is found (in sorted order, so a
 * run sees the same photos every time); files that do not decode are reported, not fatal.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { decodeImageBytes } from './decode-node';
import type { RgbImage } from './image';
import { isPhotoPath } from './voc/source';


/** Image files under `dir` (up to `depth` folders down), as paths relative to it, sorted. */
export function listPhotoFiles(dir: string, depth = 4): string[] {
  try {
    if (!statSync(dir).isDirectory()) throw new Error('not a folder');
  } catch (error) {
    throw new Error(`Cannot read the photo folder ${dir}: ${(error as Error).message}.`, { cause: error });
  }
  const found: string[] = [];
  const walk = (at: string, left: number) => {
    for (const name of readdirSync(at).sort()) {
      if (name.startsWith('.')) continue;
      const path = join(at, name);
      const s = statSync(path);
      if (s.isDirectory()) {
        if (left > 0) walk(path, left - 1);
      } else if (isPhotoPath(name)) found.push(relative(dir, path));
    }
  };
  walk(dir, depth);
  return found.sort();
}

export interface LoadedPhotos {
  images: RgbImage[];
  files: string[];
  skipped: { file: string; reason: string }[];
  /** sha256 of the loaded file names and bytes: identifies the calibration set in a manifest. */
  hash: string;
}

/** Decodes the first `limit` photos that decode (in sorted order). */
export function loadPhotos(dir: string, limit = Infinity): LoadedPhotos {
  const files = listPhotoFiles(dir);
  if (files.length === 0) throw new Error(`No photos (.jpg, .jpeg, .png) in ${dir}.`);
  const images: RgbImage[] = [];
  const used: string[] = [];
  const skipped: { file: string; reason: string }[] = [];
  const hash = createHash('sha256');
  for (const file of files) {
    if (images.length >= limit) break;
    try {
      const bytes = new Uint8Array(readFileSync(join(dir, file)));
      images.push(decodeImageBytes(bytes, file));
      used.push(file);
      hash.update(file).update(bytes);
    } catch (error) {
      skipped.push({ file, reason: (error as Error).message });
    }
  }
  if (images.length === 0) throw new Error(`None of the ${files.length} image files in ${dir} could be decoded (first: ${skipped[0]?.file}: ${skipped[0]?.reason}).`);
  return { images, files: used, skipped, hash: hash.digest('hex') };
}
