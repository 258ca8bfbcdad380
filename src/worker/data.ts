/**
 * The lab's VOC data: a source (a picked folder, or a dropped .zip / .tar / .tar.gz), two splits
 * of it loaded in the student's label space (one to train on, one to evaluate on), and the plain
 * summary the UI shows (images, objects per class, difficult, skipped with reasons).
 */
import type { ImageDecoder, ImageLoader } from '../data/pipeline';
import { createImageLoader } from '../data/pipeline';
import { loadVocDataset, listVocSplits, type VocDataset, type VocSummary } from '../data/voc/dataset';
import { fromFiles, fromTar, fromZip, isVocPath, type VocSource } from '../data/voc/source';

/** Files of a picked folder (with their relative paths: a File's own path does not cross to a worker), or an archive. */
export type DataInput = { kind: 'files'; files: File[]; paths: string[] } | { kind: 'archive'; name: string; bytes: Uint8Array };

export interface SplitImage {
  id: string;
  objects: number;
  /** Class names of its objects, as annotated. */
  classes: string[];
}

export interface SplitInfo {
  split: string;
  summary: VocSummary;
  images: SplitImage[];
}

export interface DataInfo {
  label: string;
  year: string;
  availableSplits: string[];
  train: SplitInfo;
  val: SplitInfo;
}

/** A source over what a person picked or dropped; archives keep only the files `keep` accepts (VOC folders by default). */
export async function openSource(input: DataInput, keep: (path: string) => boolean = isVocPath): Promise<VocSource> {
  if (input.kind === 'files') {
    const pathOf = new Map(input.files.map((f, i) => [f, input.paths[i] || f.name]));
    return fromFiles(input.files, (f) => pathOf.get(f) ?? f.name);
  }
  if (/\.zip$/i.test(input.name)) return fromZip(input.bytes, input.name, keep);
  if (/\.(tar|tar\.gz|tgz)$/i.test(input.name)) return fromTar(input.bytes, input.name, keep);
  throw new Error(`${input.name}: drop a .zip, .tar or .tar.gz archive of a VOC folder, or pick the folder itself.`);
}

export class LabData {
  constructor(
    readonly source: VocSource,
    readonly train: VocDataset,
    readonly val: VocDataset,
    private readonly decode: ImageDecoder,
  ) {}

  static async load(source: VocSource, splits: { train: string; val: string }, classNames: readonly string[], decode: ImageDecoder): Promise<LabData> {
    const available = await listVocSplits(source);
    if (available.length === 0) throw new Error(`${source.label}: ImageSets/Main holds no split files (train.txt, val.txt, ...).`);
    const pick = (wanted: string, fallback: string[]) => (available.includes(wanted) ? wanted : (fallback.find((s) => available.includes(s)) ?? available[0]!));
    const trainSplit = pick(splits.train, ['train', 'trainval']);
    const valSplit = pick(splits.val, ['val', 'test', 'trainval']);
    const [train, val] = await Promise.all([
      loadVocDataset(source, { split: trainSplit, classNames }),
      loadVocDataset(source, { split: valSplit, classNames }),
    ]);
    return new LabData(source, train, val, decode);
  }

  /** The same source in another label space or with other splits. */
  reload(splits: { train: string; val: string }, classNames: readonly string[]): Promise<LabData> {
    return LabData.load(this.source, splits, classNames, this.decode);
  }

  split(which: 'train' | 'val'): VocDataset {
    return which === 'train' ? this.train : this.val;
  }

  loader(which: 'train' | 'val'): ImageLoader {
    const d = this.split(which);
    return createImageLoader((id) => d.readImage(id), this.decode);
  }

  info(): DataInfo {
    const split = (d: VocDataset): SplitInfo => ({
      split: d.split,
      summary: d.summary,
      images: d.images.map((i) => ({ id: i.id, objects: i.objects.length, classes: i.objects.map((o) => o.vocName) })),
    });
    return { label: this.source.label, year: this.train.year, availableSplits: this.train.availableSplits, train: split(this.train), val: split(this.val) };
  }
}

/** The first `max` entries (all when max is 0 or absent). */
export function limit<T>(items: readonly T[], max?: number): T[] {
  return max && max > 0 ? items.slice(0, max) : [...items];
}
