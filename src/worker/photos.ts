/**
 * Photos without annotations for the lab: any folder or archive of JPEG/PNG images. They train
 * beside the VOC split (their boxes are the teacher's detections) and calibrate a derived
 * student. Ids carry a prefix so they never collide with VOC ids.
 */
import type { AnnotatedImage, ImageDecoder, ImageLoader } from '../data/pipeline';
import { photoImages, photoPath } from '../data/photos';
import { isPhotoPath, type VocSource } from '../data/voc/source';

export { combinedLoader } from '../data/photos';

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
    const paths = (await source.list()).filter((p) => isPhotoPath(p) && !p.split('/').some((part) => part.startsWith('.'))).sort();
    if (paths.length === 0) throw new Error(`${source.label} holds no photos (.jpg, .jpeg, .png). Pick a folder or archive of images.`);
    return new LabPhotos(source, paths, decode);
  }

  /** As training images: no objects, flagged so their boxes come from the teacher. */
  images(max?: number): AnnotatedImage[] {
    return photoImages(this.paths, max);
  }

  loader(): ImageLoader {
    return async (id) => {
      const path = photoPath(id);
      return this.decode(await this.source.read(path), path);
    };
  }

  info(): PhotosInfo {
    return { label: this.source.label, count: this.paths.length, examples: this.paths.slice(0, 3) };
  }
}
