/**
 * Photos without annotations as training images, shared by the lab and the command line: an id
 * prefix that never collides with VOC ids, and images flagged so their boxes come from the teacher.
 */
import type { AnnotatedImage, ImageLoader } from './pipeline';

export const PHOTO_PREFIX = 'photo:';

/** Training images for photo paths (the first `max` when given). */
export function photoImages(paths: readonly string[], max?: number): AnnotatedImage[] {
  const used = max && max > 0 ? paths.slice(0, max) : paths;
  return used.map((p) => ({ id: `${PHOTO_PREFIX}${p}`, objects: [], unlabeled: true }));
}

/** The photo path of a photo id. */
export const photoPath = (id: string): string => (id.startsWith(PHOTO_PREFIX) ? id.slice(PHOTO_PREFIX.length) : id);

/** A loader that reads photo ids with `photos` and every other id with `labelled`. */
export function combinedLoader(labelled: ImageLoader, photos?: ImageLoader): ImageLoader {
  if (!photos) return labelled;
  return (id) => (id.startsWith(PHOTO_PREFIX) ? photos(id) : labelled(id));
}
