/**
 * Training samples and batches from an annotated dataset (VOC or alike).
 *
 * One sample: the decoded image, optionally mirrored left–right, letterboxed to the model's
 * square input with the manifest's preprocessing (see src/detect/preprocess.ts), and its
 * ground truth mapped into model-input pixels as GtObject[].
 *
 * Coordinates: annotation boxes are VOC 1-based inclusive pixels; they are converted to
 * continuous coordinates once, in `prepareSample` (see ./voc-box.ts), clipped to the image, then
 * flipped and letterboxed. `inputBoxToSource` maps a model-input box back to the original,
 * unflipped image in continuous coordinates; `continuousToVocPixels` goes on to VOC pixels.
 *
 * Batches: `iterateBatches` yields { input [N,3,S,S] (NCHW) or [N,S,S,3] (NHWC), gts, letterboxes,
 * ids, flipped }. The input tensor is created inside the iteration step that yields it and
 * belongs to the caller, who must dispose it. Order and flips are drawn from a seeded generator:
 * (seed, epoch) fixes them. Defaults: shuffle on, no flip (set `flipProbability`, commonly 0.5,
 * for training), difficult objects left out of the GT, every image kept (`dropLast` off).
 *
 * No DOM here: images are read and decoded by an injected loader (the Node decoder in tests and
 * the CLI, the browser's in the worker), so the same code runs everywhere.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { GtObject } from '../detect/assignment';
import { computeLetterbox, inputToSource, sourceToInput, type Letterbox } from '../detect/letterbox';
import { preprocessImage } from '../detect/preprocess';
import type { Box } from '../detect/types';
import type { ModelManifest } from '../models/manifest';
import { cropBox, cropImage, cropWindow, flipBoxHorizontal, flipImageHorizontal, type CropWindow } from './augment';
import { assertImage, type RgbImage } from './image';
import { createRng, mixSeed, shuffledIndices } from './shuffle';
import { clipBox, vocPixelsToContinuous } from './voc-box';

/** An annotated object as the dataset gives it (VocInstance fits). */
export interface AnnotatedObject {
  /** VOC 1-based inclusive pixel box in the source image. */
  box: Box;
  /** Index into the model's class names. */
  classIndex: number;
  difficult: boolean;
}

/** One dataset image before decoding (VocImage fits). */
export interface AnnotatedImage {
  id: string;
  objects: readonly AnnotatedObject[];
  /** Size from the annotation, when known: checked against the decoded image. */
  width?: number;
  height?: number;
  /** A plain photo without annotations: its boxes come from the teacher at training time. */
  unlabeled?: boolean;
}

/** Decodes an image file's bytes; `name` is for error messages. */
export type ImageDecoder = (bytes: Uint8Array, name: string) => RgbImage | Promise<RgbImage>;

/** Reads and decodes the image of a dataset id. */
export type ImageLoader = (id: string) => Promise<RgbImage>;

/** An ImageLoader from a byte reader (e.g. VocDataset.readImage) and a decoder. */
export function createImageLoader(read: (id: string) => Promise<Uint8Array>, decode: ImageDecoder): ImageLoader {
  return async (id) => decode(await read(id), id);
}

export interface SampleOptions {
  /** Side of the square model input. */
  inputSize: number;
  /** Mirror the image and its boxes left–right. */
  flip: boolean;
  /** Keep difficult objects in the GT; default false, as is usual for VOC training. */
  keepDifficult?: boolean;
  /**
   * Cut the image to this window first (before the flip and the letterbox); objects whose centre
   * falls outside it are left out, the rest clipped to it (./augment.ts).
   */
  crop?: CropWindow;
}

/** A sample's geometry and GT; the pixels become a tensor only when a batch is built. */
export interface PreparedSample {
  /** The image as it goes into the letterbox (cropped, and mirrored when `flipped`). */
  image: RgbImage;
  /** The letterbox of the image as it goes in: of the crop when cropped. */
  letterbox: Letterbox;
  /** GT boxes in model-input pixels (continuous), in the model's label space. */
  gts: GtObject[];
  flipped: boolean;
}

/** One image and its objects → a sample; see the module comment for the coordinate steps. */
export function prepareSample(image: RgbImage, objects: readonly AnnotatedObject[], options: SampleOptions): PreparedSample {
  const { inputSize, flip, keepDifficult = false, crop } = options;
  const cropped = crop ? cropImage(image, crop) : image;
  const { width, height } = cropped;
  const letterbox = computeLetterbox(width, height, inputSize);
  const gts: GtObject[] = [];
  for (const o of objects) {
    if (o.difficult && !keepDifficult) continue;
    // Clipping matters only for 0-based boxes (x1 = 0), which the dataset loader lets through.
    const whole = clipBox(vocPixelsToContinuous(o.box), image.width, image.height);
    const continuous = crop ? cropBox(whole, crop) : whole;
    if (!continuous) continue;
    const source = flip ? flipBoxHorizontal(continuous, width) : continuous;
    gts.push({ box: sourceToInput(letterbox, source), classIndex: o.classIndex });
  }
  return { image: flip ? flipImageHorizontal(cropped) : cropped, letterbox, gts, flipped: flip };
}

/** A box in model-input pixels → the original (unflipped) image, continuous coordinates, clipped. */
export function inputBoxToSource(letterbox: Letterbox, box: Box, flipped: boolean): Box {
  const source = inputToSource(letterbox, box);
  return flipped ? flipBoxHorizontal(source, letterbox.sourceWidth) : source;
}

/** Preprocessed samples stacked into one tensor [N,...]; the caller owns (and disposes) it. */
export function samplesToTensor(samples: readonly PreparedSample[], manifest: Pick<ModelManifest, 'preprocess' | 'input'>): tf.Tensor4D {
  if (samples.length === 0) throw new Error('Cannot build a batch of zero samples.');
  const size = samples[0]!.letterbox.inputSize;
  if (samples.some((s) => s.letterbox.inputSize !== size)) throw new Error('All samples of a batch must share one input size.');
  return tf.tidy(() => tf.concat(samples.map((s) => preprocessImage(s.image, s.letterbox, manifest)), 0));
}

export interface TrainingBatch {
  /** [N,3,S,S] or [N,S,S,3] per the manifest's layout, normalised. Owned by the caller: dispose it. */
  input: tf.Tensor4D;
  /** Per image: GT in model-input pixels. */
  gts: GtObject[][];
  letterboxes: Letterbox[];
  ids: string[];
  flipped: boolean[];
  /** Per image: true for a photo without annotations (its `gts` are empty until pseudo-labelled). */
  unlabeled?: boolean[];
}

export interface BatchOptions {
  batchSize: number;
  /** Seed of the shuffle and of the flip draws. */
  seed: number;
  /** Epoch number, mixed into the seed so that each epoch has its own order. Default 0. */
  epoch?: number;
  /** Default true; false keeps the dataset's order. */
  shuffle?: boolean;
  /** Chance that an image is mirrored left–right. Default 0 (no augmentation). */
  flipProbability?: number;
  /**
   * Random crops: each image is cut to a window whose sides are a uniform fraction in
   * [cropScale, 1] of the image's, at a uniform place (1 or absent: no crop). Objects whose centre
   * falls outside are left out.
   */
  cropScale?: number;
  /** Keep difficult objects in the GT. Default false. */
  keepDifficult?: boolean;
  /** Side of the square input; defaults to the manifest's. */
  inputSize?: number;
  /** Leave out a last batch smaller than `batchSize`. Default false. */
  dropLast?: boolean;
  /**
   * When the images mix annotated ones and photos without annotations: put this many annotated
   * images in every batch (see `mixedEpochOrder`). 0 or absent: all images drawn alike.
   */
  annotatedPerBatch?: number;
  signal?: AbortSignal;
}

/** The image order of one epoch: shuffled from (seed, epoch) unless `shuffle` is false. */
export function epochOrder(count: number, seed: number, epoch = 0, shuffle = true): number[] {
  return shuffle ? shuffledIndices(count, createRng(mixSeed(seed, epoch, 0))) : Array.from({ length: count }, (_, i) => i);
}

/**
 * An epoch's order in which every batch holds `perBatch` annotated images and fills the rest with
 * photos without annotations. The epoch is one pass over the photos (each once, shuffled); the
 * annotated images repeat as often as needed, each pass over them shuffled anew, so that a few
 * annotated images beside many photos still reach the detection loss at every step. When either
 * kind is missing, or perBatch is 0, it is `epochOrder`.
 */
export function mixedEpochOrder(unlabeled: readonly boolean[], batchSize: number, perBatch: number, seed: number, epoch = 0): number[] {
  const annotated = unlabeled.flatMap((u, i) => (u ? [] : [i]));
  const photos = unlabeled.flatMap((u, i) => (u ? [i] : []));
  if (!(perBatch > 0) || !annotated.length || !photos.length) return epochOrder(unlabeled.length, seed, epoch);
  if (!(Number.isInteger(perBatch) && perBatch < batchSize)) {
    throw new Error(`annotatedPerBatch must be an integer below the batch size (${batchSize}) so that photos fit beside it, got ${perBatch}.`);
  }
  const rng = createRng(mixSeed(seed, epoch, 2));
  const shuffled = (list: number[]) => shuffledIndices(list.length, rng).map((k) => list[k]!);
  const photoOrder = shuffled(photos);
  const perPhotos = batchSize - perBatch;
  const batches = Math.ceil(photoOrder.length / perPhotos);
  let pool: number[] = [];
  const order: number[] = [];
  for (let b = 0; b < batches; b++) {
    for (let k = 0; k < perBatch; k++) {
      if (!pool.length) pool = shuffled(annotated);
      order.push(pool.shift()!);
    }
    order.push(...photoOrder.slice(b * perPhotos, (b + 1) * perPhotos));
  }
  return order;
}

/** The order `iterateBatches` walks for these images and options. */
export function batchOrder(images: readonly AnnotatedImage[], o: Pick<BatchOptions, 'batchSize' | 'seed' | 'epoch' | 'shuffle' | 'annotatedPerBatch'>): number[] {
  if (o.annotatedPerBatch && o.shuffle !== false) return mixedEpochOrder(images.map((i) => i.unlabeled === true), o.batchSize, o.annotatedPerBatch, o.seed, o.epoch ?? 0);
  return epochOrder(images.length, o.seed, o.epoch ?? 0, o.shuffle ?? true);
}

function checkBatchOptions(o: BatchOptions, inputSize: number): void {
  if (!(Number.isInteger(o.batchSize) && o.batchSize > 0)) throw new Error(`batchSize must be a positive integer, got ${o.batchSize}.`);
  if (!Number.isFinite(o.seed)) throw new Error(`seed must be a finite number, got ${o.seed}.`);
  const p = o.flipProbability ?? 0;
  if (!(p >= 0 && p <= 1)) throw new Error(`flipProbability must lie in [0, 1], got ${p}.`);
  const c = o.cropScale ?? 1;
  if (!(c > 0 && c <= 1)) throw new Error(`cropScale must lie in (0, 1], got ${c}.`);
  if (!(Number.isInteger(inputSize) && inputSize > 0)) throw new Error(`inputSize must be a positive integer, got ${inputSize}.`);
}

/**
 * One epoch of batches. Each batch's images are loaded and decoded together (concurrently), then
 * turned into one input tensor. Stopping the iteration early leaks nothing: a tensor exists only
 * once its batch is yielded.
 */
export async function* iterateBatches(
  images: readonly AnnotatedImage[],
  loadImage: ImageLoader,
  manifest: Pick<ModelManifest, 'preprocess' | 'input'>,
  options: BatchOptions,
): AsyncGenerator<TrainingBatch, void, undefined> {
  const inputSize = options.inputSize ?? manifest.input.size;
  checkBatchOptions(options, inputSize);
  const { batchSize, seed, epoch = 0, flipProbability = 0, keepDifficult = false, dropLast = false, signal } = options;
  const order = batchOrder(images, options);
  // Flips come from their own stream, so changing the flip probability keeps the order.
  const flipRng = createRng(mixSeed(seed, epoch, 1));
  const flips = order.map(() => flipRng() < flipProbability);
  // Crops too (scale, left, top per image), drawn only when asked: without them nothing changes.
  const cropScale = options.cropScale ?? 1;
  const cropRng = createRng(mixSeed(seed, epoch, 3));
  const crops = cropScale < 1 ? order.map(() => [cropScale + (1 - cropScale) * cropRng(), cropRng(), cropRng()] as const) : undefined;

  for (let start = 0; start < order.length; start += batchSize) {
    const picked = order.slice(start, start + batchSize);
    if (dropLast && picked.length < batchSize) break;
    signal?.throwIfAborted();
    const samples = await Promise.all(
      picked.map(async (index, k) => {
        const entry = images[index]!;
        const image = await loadImage(entry.id);
        assertImage(image, `image "${entry.id}"`);
        const known = entry.width !== undefined && entry.height !== undefined;
        if (known && (entry.width !== image.width || entry.height !== image.height)) {
          throw new Error(
            `image "${entry.id}" decodes to ${image.width}x${image.height} but its annotation says ${entry.width}x${entry.height}: the boxes would not fit it. Fix the annotation's <size> or the image file.`,
          );
        }
        const draw = crops?.[start + k];
        const crop = draw && cropWindow(image.width, image.height, draw[0], draw[1], draw[2]);
        return prepareSample(image, entry.objects, { inputSize, flip: flips[start + k]!, keepDifficult, ...(crop ? { crop } : {}) });
      }),
    );
    signal?.throwIfAborted();
    yield {
      input: samplesToTensor(samples, manifest),
      gts: samples.map((s) => s.gts),
      letterboxes: samples.map((s) => s.letterbox),
      ids: picked.map((i) => images[i]!.id),
      flipped: samples.map((s) => s.flipped),
      unlabeled: picked.map((i) => images[i]!.unlabeled === true),
    };
  }
}
