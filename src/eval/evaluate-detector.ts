/**
 * Runs a detector over a split and scores it: VOC mAP (11-point and all-point, IoU > 0.5) and
 * COCO AP@[.5:.95] / AP50 / AP75, overall and per class, in one plain JSON-serialisable report
 * that also keeps every image's detections for display.
 *
 * Coordinates: `detect` returns boxes in the source image's continuous pixel coordinates (as
 * detectGfl does); ground truth comes in VOC 1-based inclusive pixels (as the dataset gives it).
 * VOC scoring converts the detections with `continuousToVocPixels` and measures with the
 * devkit's +1 convention; COCO scoring converts the ground truth with `vocPixelsToContinuous` and
 * measures continuously. Difficult objects are ignored by both (neither hit nor miss).
 *
 * Detection settings for evaluation: a low score threshold and up to 100 boxes per image
 * (NanoDet's test settings; EVAL_DETECT_OPTIONS). The report caps each image at
 * `maxDetectionsPerImage` (highest scores kept) whatever `detect` returns.
 */
import { DEFAULT_DETECT_OPTIONS, detectGfl, type DetectOptions } from '../detect/nanodet';
import type { GraphRunner } from '../detect/runner';
import type { Box, LabeledDetection } from '../detect/types';
import type { RgbImage } from '../data/image';
import type { AnnotatedObject, ImageLoader } from '../data/pipeline';
import { vocPixelsToContinuous } from '../data/voc-box';
import type { ModelManifest } from '../models/manifest';
import { evaluateCoco } from './coco-ap';
import type { EvalDetection, EvalGroundTruth } from './types';
import { continuousToVocPixels, evaluateVoc } from './voc-map';

/** Score threshold 0.05, NMS IoU 0.6, at most 100 detections per image. */
export const EVAL_DETECT_OPTIONS: DetectOptions = { ...DEFAULT_DETECT_OPTIONS, scoreThreshold: 0.05, iouThreshold: 0.6, maxDetections: 100 };

/** One image to evaluate on: its annotation, and its pixels unless `loadImage` provides them. */
export interface EvalImage {
  id: string;
  /** VOC 1-based inclusive boxes, in the model's label space. */
  objects: readonly AnnotatedObject[];
  image?: RgbImage;
}

/** A detector: boxes in the image's continuous pixel coordinates. */
export type DetectFn = (image: RgbImage, id: string) => Promise<readonly LabeledDetection[]> | readonly LabeledDetection[];

export interface EvaluateDetectorOptions {
  /** The model's class names, which class indices refer to. */
  classNames: readonly string[];
  /** Evaluate only these classes (e.g. the 20 VOC classes of a COCO model); default: all. */
  classIndices?: readonly number[];
  /** Provides the pixels of images given without `image`. */
  loadImage?: ImageLoader;
  /** Detections kept per image, highest scores first. Default 100. */
  maxDetectionsPerImage?: number;
  signal?: AbortSignal;
  onProgress?: (progress: { done: number; total: number; imageId: string }) => void;
}

export interface ReportDetection {
  /** Source-image continuous pixel coordinates [x1, y1, x2, y2]. */
  box: [number, number, number, number];
  classIndex: number;
  className: string;
  score: number;
}

export interface ReportGroundTruth {
  /** VOC 1-based inclusive pixel box, as annotated. */
  box: [number, number, number, number];
  classIndex: number;
  className: string;
  difficult: boolean;
}

export interface ReportImage {
  id: string;
  width: number;
  height: number;
  detections: ReportDetection[];
  groundTruth: ReportGroundTruth[];
}

export interface ReportClass {
  classIndex: number;
  className: string;
  /** Non-difficult ground-truth objects (the recall denominator). */
  numGt: number;
  numDifficult: number;
  numDetections: number;
  /** null when the class has no non-difficult object. */
  ap11: number | null;
  apAll: number | null;
  cocoAp: number | null;
  cocoAp50: number | null;
  cocoAp75: number | null;
}

export interface DetectorEvalReport {
  /** VOC mAP, 11-point (VOC2007) and all-point (VOC2010+), over classes with a non-difficult object. */
  map11: number | null;
  mapAll: number | null;
  /** COCO-style AP@[.5:.95], AP50, AP75 (difficult objects ignored). */
  coco: { ap: number | null; ap50: number | null; ap75: number | null };
  /** Classes that have ground truth or detections, by class index. */
  perClass: ReportClass[];
  /** How many classes the means average over. */
  classesInMap: number;
  counts: {
    images: number;
    groundTruth: number;
    difficult: number;
    /** Detections scored (after the class filter and the per-image cap). */
    detections: number;
    /** Detections dropped because their class is not evaluated. */
    otherClassDetections: number;
    /** Detections dropped by the per-image cap. */
    cappedDetections: number;
  };
  settings: { vocIouThreshold: number; maxDetectionsPerImage: number; classIndices: number[] | null };
  images: ReportImage[];
  elapsedMs: number;
}

const asTuple = (b: Box): [number, number, number, number] => [b[0], b[1], b[2], b[3]];

/** A DetectFn for a GFL detector (NanoDet family) with the evaluation settings. */
export function createGflDetector(runner: GraphRunner, manifest: ModelManifest, options: DetectOptions = EVAL_DETECT_OPTIONS): DetectFn {
  return async (image) => (await detectGfl(runner, manifest, image, options)).detections;
}

/** Detects on every image in turn, then scores; see the module comment. */
export async function evaluateDetector(images: readonly EvalImage[], detect: DetectFn, options: EvaluateDetectorOptions): Promise<DetectorEvalReport> {
  const { classNames, classIndices, loadImage, maxDetectionsPerImage = 100, signal, onProgress } = options;
  if (!(Number.isInteger(maxDetectionsPerImage) && maxDetectionsPerImage > 0)) {
    throw new Error(`maxDetectionsPerImage must be a positive integer, got ${maxDetectionsPerImage}.`);
  }
  const nameOf = (c: number, what: string) => {
    const name = classNames[c];
    if (!Number.isInteger(c) || name === undefined) throw new Error(`${what} has class index ${c}, outside the ${classNames.length} class names given.`);
    return name;
  };
  const evaluated = classIndices ? new Set(classIndices) : undefined;
  classIndices?.forEach((c) => nameOf(c, 'classIndices'));
  const started = performance.now();

  const reportImages: ReportImage[] = [];
  let otherClassDetections = 0;
  let cappedDetections = 0;

  for (const [done, entry] of images.entries()) {
    signal?.throwIfAborted();
    let image = entry.image;
    if (!image) {
      if (!loadImage) throw new Error(`Image "${entry.id}" has no pixels and no loadImage was given to evaluateDetector.`);
      image = await loadImage(entry.id);
    }
    const raw = await detect(image, entry.id);
    signal?.throwIfAborted();

    const groundTruth: ReportGroundTruth[] = [];
    for (const o of entry.objects) {
      if (evaluated && !evaluated.has(o.classIndex)) continue;
      const className = nameOf(o.classIndex, `A ground-truth object of image "${entry.id}"`);
      groundTruth.push({ box: asTuple(o.box), classIndex: o.classIndex, className, difficult: o.difficult });
    }

    const kept = raw.filter((d) => !evaluated || evaluated.has(d.classIndex));
    otherClassDetections += raw.length - kept.length;
    // Stable sort: equal scores keep the detector's order.
    const ranked = [...kept].sort((a, b) => b.score - a.score).slice(0, maxDetectionsPerImage);
    cappedDetections += kept.length - ranked.length;
    const reported = ranked.map((d): ReportDetection => {
      if (!Number.isFinite(d.score) || !d.box.every(Number.isFinite)) {
        throw new Error(`The detector returned a non-finite score or box for image "${entry.id}" (${d.score}, [${d.box.join(', ')}]).`);
      }
      const className = nameOf(d.classIndex, `A detection on image "${entry.id}"`);
      return { box: asTuple(d.box), classIndex: d.classIndex, className, score: d.score };
    });
    reportImages.push({ id: entry.id, width: image.width, height: image.height, detections: reported, groundTruth });
    onProgress?.({ done: done + 1, total: images.length, imageId: entry.id });
  }

  return scoreImages(reportImages, {
    classNames,
    classIndices: classIndices ? [...classIndices] : null,
    maxDetectionsPerImage,
    otherClassDetections,
    cappedDetections,
    elapsedMs: performance.now() - started,
  });
}

interface ScoreSettings {
  classNames: readonly string[];
  classIndices: number[] | null;
  maxDetectionsPerImage: number;
  otherClassDetections: number;
  cappedDetections: number;
  elapsedMs: number;
}

/** VOC and COCO scores of images already detected (their detections filtered and capped). */
function scoreImages(reportImages: ReportImage[], settings: ScoreSettings): DetectorEvalReport {
  const { classNames, classIndices, maxDetectionsPerImage } = settings;
  const detections: EvalDetection[] = [];
  const vocGt: EvalGroundTruth[] = [];
  const cocoGt: EvalGroundTruth[] = [];
  for (const image of reportImages) {
    for (const g of image.groundTruth) {
      vocGt.push({ imageId: image.id, classIndex: g.classIndex, box: g.box, difficult: g.difficult });
      cocoGt.push({ imageId: image.id, classIndex: g.classIndex, box: vocPixelsToContinuous(g.box), difficult: g.difficult });
    }
    for (const d of image.detections) detections.push({ imageId: image.id, classIndex: d.classIndex, score: d.score, box: d.box });
  }
  const nameOf = (c: number) => classNames[c] ?? String(c);
  const vocIouThreshold = 0.5;
  const voc = evaluateVoc(
    detections.map((d) => ({ ...d, box: continuousToVocPixels(d.box) })),
    vocGt,
    { iouThreshold: vocIouThreshold, pixelInclusive: true },
  );
  const coco = evaluateCoco(detections, cocoGt, { maxDets: maxDetectionsPerImage });
  const cocoByClass = new Map(coco.perClass.map((c) => [c.classIndex, c]));
  const perClass = voc.perClass.map((v): ReportClass => {
    const c = cocoByClass.get(v.classIndex);
    return {
      classIndex: v.classIndex,
      className: nameOf(v.classIndex),
      numGt: v.numGt,
      numDifficult: v.numDifficult,
      numDetections: v.numDetections,
      ap11: v.ap11,
      apAll: v.apAll,
      cocoAp: c?.ap ?? null,
      cocoAp50: c?.ap50 ?? null,
      cocoAp75: c?.ap75 ?? null,
    };
  });

  return {
    map11: voc.map11,
    mapAll: voc.mapAll,
    coco: { ap: coco.ap, ap50: coco.ap50, ap75: coco.ap75 },
    perClass,
    classesInMap: voc.classesInMap,
    counts: {
      images: reportImages.length,
      groundTruth: vocGt.filter((g) => !g.difficult).length,
      difficult: vocGt.filter((g) => g.difficult).length,
      detections: detections.length,
      otherClassDetections: settings.otherClassDetections,
      cappedDetections: settings.cappedDetections,
    },
    settings: { vocIouThreshold, maxDetectionsPerImage, classIndices },
    images: reportImages,
    elapsedMs: settings.elapsedMs,
  };
}

/** Class names by index, as the reports and their images name them (for scoring them again). */
function classNamesOf(reports: readonly DetectorEvalReport[], images: readonly ReportImage[]): string[] {
  const names: string[] = [];
  for (const r of reports) for (const c of r.perClass) names[c.classIndex] = c.className;
  for (const i of images) for (const d of [...i.detections, ...i.groundTruth]) names[d.classIndex] = d.className;
  return names;
}

/** The report's scores over some of its images only (e.g. one cross-validation fold of them). */
export function reportOnImages(report: DetectorEvalReport, ids: readonly string[]): DetectorEvalReport {
  const keep = new Set(ids);
  const images = report.images.filter((i) => keep.has(i.id));
  const missing = ids.filter((id) => !report.images.some((i) => i.id === id));
  if (missing.length) throw new Error(`reportOnImages: the report has no image ${missing.map((id) => `"${id}"`).join(', ')}.`);
  return scoreImages(images, {
    classNames: classNamesOf([report], images),
    classIndices: report.settings.classIndices,
    maxDetectionsPerImage: report.settings.maxDetectionsPerImage,
    otherClassDetections: 0,
    cappedDetections: 0,
    elapsedMs: 0,
  });
}

/**
 * One report over the images of several (cross-validation: each fold's detections, made by the
 * model that did not train on that fold): the images' detections scored together, as if one
 * evaluation had run over all of them. The reports must share their settings and hold distinct images.
 */
export function poolReports(reports: readonly DetectorEvalReport[]): DetectorEvalReport {
  const first = reports[0];
  if (!first) throw new Error('poolReports: no report to pool.');
  const key = (r: DetectorEvalReport) => JSON.stringify(r.settings);
  if (reports.some((r) => key(r) !== key(first))) throw new Error('poolReports: the reports were made with different evaluation settings.');
  const images = reports.flatMap((r) => r.images);
  const ids = new Set(images.map((i) => i.id));
  if (ids.size !== images.length) throw new Error('poolReports: an image appears in more than one report.');
  const sum = (f: (r: DetectorEvalReport) => number) => reports.reduce((n, r) => n + f(r), 0);
  return scoreImages(images, {
    classNames: classNamesOf(reports, images),
    classIndices: first.settings.classIndices,
    maxDetectionsPerImage: first.settings.maxDetectionsPerImage,
    otherClassDetections: sum((r) => r.counts.otherClassDetections),
    cappedDetections: sum((r) => r.counts.cappedDetections),
    elapsedMs: sum((r) => r.elapsedMs),
  });
}
