/**
 * Loads one split of a PASCAL VOC year folder: ImageSets/Main/<split>.txt, then each listed
 * image's annotation, with class names mapped onto a model's label space.
 *
 * Images are not decoded here: `readImage(id)` returns the file's bytes when they are needed
 * (JPEG, PNG and grayscale images are all accepted; the decoders in src/data handle them).
 *
 * Boxes stay in the XML's 1-based inclusive pixel coordinates (see ./xml.ts). Bad input is
 * reported per file and the rest still loads:
 * - malformed or incomplete XML, a missing annotation or image, an id with no files: the image
 *   is skipped;
 * - xmax <= xmin or ymax <= ymin: the object is skipped (no area to learn from);
 * - a box reaching outside [0, width] x [0, height]: clipped to it when it overlaps the image,
 *   else skipped (0 is allowed as a lower bound because many VOC-style tools write 0-based boxes);
 * - a class name the model has no class for: the object is skipped and counted.
 */
import type { Box } from '../../detect/types';
import { VOC_CLASSES, createClassMapper, isVocClass, mapVocClasses } from './classes';
import { parseFoldSplit, selectFold } from './folds';
import { findVocRoots, joinPath, type VocRoot, type VocSource } from './source';
import { parseVocXml } from './xml';

export interface VocInstance {
  /** [xmin, ymin, xmax, ymax] as in the XML (1-based inclusive), clipped to the image. */
  box: Box;
  /** Index into the model's class names. */
  classIndex: number;
  /** Class name as written in the XML. */
  vocName: string;
  difficult: boolean;
  truncated: boolean;
}

export interface VocImage {
  id: string;
  /** Path of the image file inside the source. */
  imagePath: string;
  /** Size from the annotation's <size>; the image file is not opened to check it. */
  width: number;
  height: number;
  objects: VocInstance[];
}

export type VocProblemKind = 'image-skipped' | 'object-skipped' | 'box-clipped';

export interface VocProblem {
  /** Path inside the source of the file at fault. */
  file: string;
  reason: string;
  kind: VocProblemKind;
}

export interface VocSummary {
  imageCount: number;
  /** Objects kept, difficult ones included. */
  objectCount: number;
  difficultCount: number;
  /** Objects kept per class name as written in the XML. */
  objectsPerClass: Record<string, number>;
  /** Every skipped image or object, with its file and the reason. */
  skipped: VocProblem[];
  /** Objects skipped because the model has no class of their name, per name. */
  unknownClassObjects: Record<string, number>;
  /** VOC classes with no counterpart among the model's classes. */
  unmappedClasses: string[];
}

export interface VocDataset {
  /** The year folder's name, e.g. "VOC2012". */
  year: string;
  split: string;
  /** Path of the year folder inside the source ('' for the source's root). */
  root: string;
  /** The split names found in ImageSets/Main. */
  availableSplits: string[];
  /** The model's class names that `classIndex` refers to. */
  classNames: readonly string[];
  images: VocImage[];
  summary: VocSummary;
  /** Every problem: skipped images and objects, and clipped boxes. */
  problems: VocProblem[];
  /** The image file's bytes, undecoded. */
  readImage(id: string): Promise<Uint8Array>;
}

export interface LoadVocOptions {
  /** Split name: ImageSets/Main/<split>.txt, e.g. "train", "val", "trainval". */
  split: string;
  /** The model's class names; defaults to the 20 VOC classes in their official order. */
  classNames?: readonly string[];
  /** Which year folder, when the source holds several (matched against the folder name). */
  year?: string;
  signal?: AbortSignal;
  /** Called after each batch of annotations with the number read so far and the total. */
  onProgress?: (done: number, total: number) => void;
}

/** Image extensions looked for, in order of preference, for JPEGImages/<id>.<ext>. */
const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png'];
const READ_BATCH = 32;

/** The VOC year folder to load, and the source's file list. */
export async function resolveVocRoot(source: VocSource, year?: string): Promise<{ root: VocRoot; paths: readonly string[] }> {
  const paths = await source.list();
  const roots = findVocRoots(paths, source.label);
  if (roots.length === 0) {
    throw new Error(
      `${source.label}: no VOC folder found (a folder holding both Annotations/ and JPEGImages/). Pick the VOCdevkit folder, a VOC20xx folder inside it, or an archive of one.`,
    );
  }
  const names = roots.map((r) => r.year || '(root)').join(', ');
  if (year !== undefined) {
    const root = roots.find((r) => r.year === year);
    if (!root) throw new Error(`${source.label}: no VOC folder named "${year}"; found ${names}.`);
    return { root, paths };
  }
  if (roots.length > 1) throw new Error(`${source.label}: several VOC folders found (${names}); choose one with the "year" option.`);
  return { root: roots[0]!, paths };
}

/** Split names in <root>/ImageSets/Main, leaving out the per-class files (<class>_<split>.txt). */
export function splitsIn(paths: readonly string[], rootDir: string): string[] {
  const prefix = joinPath(rootDir, 'ImageSets/Main/');
  const splits: string[] = [];
  for (const p of paths) {
    if (!p.startsWith(prefix)) continue;
    const name = p.slice(prefix.length);
    if (name.includes('/') || !name.endsWith('.txt')) continue;
    const stem = name.slice(0, -4);
    if (VOC_CLASSES.some((c) => stem.startsWith(`${c}_`))) continue;
    splits.push(stem);
  }
  return splits.sort();
}

/** The split names of a source's VOC folder. */
export async function listVocSplits(source: VocSource, year?: string): Promise<string[]> {
  const { root, paths } = await resolveVocRoot(source, year);
  return splitsIn(paths, root.dir);
}

/** Image ids of a split file: the first token of each non-empty line. */
export function parseSplitFile(textContent: string): string[] {
  const ids: string[] = [];
  for (const line of textContent.split(/\r?\n/)) {
    const id = line.trim().split(/\s+/)[0];
    if (id) ids.push(id);
  }
  return ids;
}

/** Maps each image stem in JPEGImages/ to its file, preferring .jpg over .jpeg over .png. */
function indexImages(paths: readonly string[], rootDir: string): { byStem: Map<string, string>; all: Set<string> } {
  const prefix = joinPath(rootDir, 'JPEGImages/');
  const byStem = new Map<string, string>();
  const rank = new Map<string, number>();
  const all = new Set<string>();
  for (const p of paths) {
    if (!p.startsWith(prefix)) continue;
    const name = p.slice(prefix.length);
    if (name.includes('/')) continue;
    all.add(p);
    const dot = name.lastIndexOf('.');
    if (dot <= 0) continue;
    const r = IMAGE_EXTENSIONS.indexOf(name.slice(dot).toLowerCase());
    if (r < 0) continue;
    const stem = name.slice(0, dot);
    if (r < (rank.get(stem) ?? Infinity)) {
      byStem.set(stem, p);
      rank.set(stem, r);
    }
  }
  return { byStem, all };
}

const decoder = new TextDecoder();

/** Loads one split; see the module comment for what is checked and how problems are reported. */
export async function loadVocDataset(source: VocSource, options: LoadVocOptions): Promise<VocDataset> {
  const { split, signal, onProgress } = options;
  const classNames = options.classNames ?? VOC_CLASSES;
  const { root, paths } = await resolveVocRoot(source, options.year);
  const availableSplits = splitsIn(paths, root.dir);
  // A cross-validation fold ("trainval/fold-1-of-3", ./folds.ts) reads its base split's file.
  const fold = parseFoldSplit(split);
  const fileSplit = fold?.base ?? split;
  const splitPath = joinPath(root.dir, `ImageSets/Main/${fileSplit}.txt`);
  const pathSet = new Set(paths);
  if (!pathSet.has(splitPath)) {
    const have = availableSplits.length > 0 ? `the splits there are: ${availableSplits.join(', ')}` : 'ImageSets/Main holds no split files';
    throw new Error(`${source.label}: split "${fileSplit}" not found (no ${splitPath}); ${have}.`);
  }
  const listed = parseSplitFile(decoder.decode(await source.read(splitPath)));
  const ids = fold ? selectFold(listed, fold) : listed;
  const { byStem, all: imageFiles } = indexImages(paths, root.dir);
  const toModel = createClassMapper(classNames);

  const problems: VocProblem[] = [];
  const images: VocImage[] = [];
  const objectsPerClass: Record<string, number> = {};
  const unknownClassObjects: Record<string, number> = {};
  let objectCount = 0;
  let difficultCount = 0;

  const seen = new Set<string>();
  const unique = ids.filter((id) => {
    if (seen.has(id)) {
      problems.push({ file: splitPath, reason: `image id "${id}" is listed twice; it is loaded once.`, kind: 'image-skipped' });
      return false;
    }
    seen.add(id);
    return true;
  });

  // Each image's problems are kept apart and merged in split order, so reports are deterministic.
  const loadOne = async (id: string, problems: VocProblem[]): Promise<VocImage | undefined> => {
    const annPath = joinPath(root.dir, `Annotations/${id}.xml`);
    const hasAnn = pathSet.has(annPath);
    let imagePath = byStem.get(id);
    if (!hasAnn) {
      const reason = imagePath ? 'annotation file is missing' : 'listed in the split but neither its annotation nor its image exists';
      problems.push({ file: imagePath ? annPath : `${splitPath}: ${id}`, reason, kind: 'image-skipped' });
      return undefined;
    }
    let ann;
    try {
      ann = parseVocXml(decoder.decode(await source.read(annPath)), annPath);
    } catch (error) {
      problems.push({ file: annPath, reason: (error as Error).message.replace(`${annPath}: `, ''), kind: 'image-skipped' });
      return undefined;
    }
    // Some datasets name the image differently from the id; the XML's <filename> says how.
    if (!imagePath && ann.filename) {
      const named = joinPath(root.dir, `JPEGImages/${ann.filename}`);
      if (imageFiles.has(named)) imagePath = named;
    }
    if (!imagePath) {
      problems.push({
        file: joinPath(root.dir, `JPEGImages/${id}`),
        reason: `image file is missing (looked for ${IMAGE_EXTENSIONS.map((e) => id + e).join(', ')})`,
        kind: 'image-skipped',
      });
      return undefined;
    }
    const { width, height } = ann;
    const objects: VocInstance[] = [];
    ann.objects.forEach((o, i) => {
      const what = `object #${i + 1} ("${o.name}")`;
      const classIndex = toModel(o.name);
      if (classIndex === undefined) {
        unknownClassObjects[o.name] = (unknownClassObjects[o.name] ?? 0) + 1;
        const why = isVocClass(o.name.toLowerCase()) ? 'the model has no class for this VOC class' : 'unknown class, not among the model\'s classes';
        problems.push({ file: annPath, reason: `${what}: ${why}; object skipped`, kind: 'object-skipped' });
        return;
      }
      const [x1, y1, x2, y2] = o.bbox;
      if (!(x2 > x1 && y2 > y1)) {
        problems.push({ file: annPath, reason: `${what}: box [${o.bbox.join(', ')}] has zero or negative area; object skipped`, kind: 'object-skipped' });
        return;
      }
      const box: Box = [Math.max(x1, 0), Math.max(y1, 0), Math.min(x2, width), Math.min(y2, height)];
      if (!(box[2] > box[0] && box[3] > box[1])) {
        problems.push({ file: annPath, reason: `${what}: box [${o.bbox.join(', ')}] lies outside the ${width}x${height} image; object skipped`, kind: 'object-skipped' });
        return;
      }
      if (box.some((v, k) => v !== o.bbox[k])) {
        problems.push({ file: annPath, reason: `${what}: box [${o.bbox.join(', ')}] reaches outside the ${width}x${height} image; clipped to [${box.join(', ')}]`, kind: 'box-clipped' });
      }
      objects.push({ box, classIndex, vocName: o.name, difficult: o.difficult, truncated: o.truncated });
    });
    return { id, imagePath, width, height, objects };
  };

  for (let start = 0; start < unique.length; start += READ_BATCH) {
    signal?.throwIfAborted();
    const batch = await Promise.all(
      unique.slice(start, start + READ_BATCH).map(async (id) => {
        const own: VocProblem[] = [];
        return { image: await loadOne(id, own), own };
      }),
    );
    for (const { image, own } of batch) {
      problems.push(...own);
      if (!image) continue;
      images.push(image);
      for (const o of image.objects) {
        objectsPerClass[o.vocName] = (objectsPerClass[o.vocName] ?? 0) + 1;
        if (o.difficult) difficultCount += 1;
      }
      objectCount += image.objects.length;
    }
    onProgress?.(Math.min(start + READ_BATCH, unique.length), unique.length);
  }

  const byId = new Map(images.map((img) => [img.id, img]));
  return {
    year: root.year,
    split,
    root: root.dir,
    availableSplits,
    classNames,
    images,
    problems,
    summary: {
      imageCount: images.length,
      objectCount,
      difficultCount,
      objectsPerClass,
      skipped: problems.filter((p) => p.kind !== 'box-clipped'),
      unknownClassObjects,
      unmappedClasses: mapVocClasses(classNames).unmapped,
    },
    readImage: (id) => {
      const img = byId.get(id);
      if (!img) return Promise.reject(new Error(`${source.label}: image "${id}" is not in the loaded ${root.year} ${split} split.`));
      return source.read(img.imagePath);
    },
  };
}
