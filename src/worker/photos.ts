/**
 * Photos without annotations for the lab: any folder or archive of JPEG/PNG images. They train
 * beside the VOC split (their boxes are the teacher's detections) and calibrate a derived
 * student. Ids carry a prefix so they never collide with VOC ids.
 */
import type { AnnotatedImage, ImageDecoder, ImageLoader } from '../data/pipeline';
import type { VocSource } from '../data/voc/source';

export const PHOTO_PREFIX = 'photo:';
const PHOTO = /\.(jpe?g|png)$/i;

export interface PhotosInfo {
  label: string;
  count: number;
  /** A few names, for the UI. */
  examples: string[];
}

export class LabPhotos {
  private constructor(
    readonly source: VocSource,
    readonly paths: readonly string[],
    private readonly decode: ImageDecoder,
  ) {}

  static async open(source: VocSource, decode: ImageDecoder): Promise<LabPhotos> {
    const paths = (await source.list()).filter((p) => PHOTO.test(p) && !p.split('/').some((part) => part.startsWith('.'))).sort();
    if (paths.length === 0) throw new Error(`${source.label} holds no photos (.jpg, .jpeg, .png). Pick a folder or archive of images.`);
    return new LabPhotos(source, paths, decode);
  }

  /** As training images: no objects, flagged so their boxes come from the teacher. */
  images(max?: number): AnnotatedImage[] {
    const used = max && max > 0 ? this.paths.slice(0, max) : this.paths;
    return used.map((p) => ({ id: `${PHOTO_PREFIX}${p}`, objects: [], unlabeled: true }));
  }

  loader(): ImageLoader {
    return async (id) => {
      const path = id.startsWith(PHOTO_PREFIX) ? id.slice(PHOTO_PREFIX.length) : id;
      return this.decode(await this.source.read(path), path);
    };
  }

  info(): PhotosInfo {
    return { label: this.source.label, count: this.paths.length, examples: this.paths.slice(0, 3) };
  }
}

/** A loader that reads photos by their prefix and everything else from `labelled`. */
export function combinedLoader(labelled: ImageLoader, photos?: LabPhotos): ImageLoader {
  if (!photos) return labelled;
  const fromPhotos = photos.loader();
  return (id) => (id.startsWith(PHOTO_PREFIX) ? fromPhotos(id) : labelled(id));
}
