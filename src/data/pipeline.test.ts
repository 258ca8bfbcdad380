import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Box } from '../detect/types';
import type { ModelManifest } from '../models/manifest';
import { cropBox, cropImage, cropWindow, flipBoxHorizontal, flipImageHorizontal } from './augment';
import type { RgbImage } from './image';
import { createImageLoader, epochOrder, inputBoxToSource, iterateBatches, mixedEpochOrder, prepareSample, type AnnotatedImage, type TrainingBatch } from './pipeline';
import { createRng, shuffledIndices } from './shuffle';
import { continuousToVocPixels, vocPixelsToContinuous } from './voc-box';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** NanoDet-g's preprocessing (models/nanodet.manifest.json), with a small input. */
const MEAN = [103.53, 116.28, 123.675] as const;
const STD = [57.375, 57.12, 58.395] as const;
const manifest = (size: number, layout: 'NCHW' | 'NHWC' = 'NCHW'): Pick<ModelManifest, 'preprocess' | 'input'> => ({
  input: { name: 'input_1', size, layout },
  preprocess: { resize: 'letterbox', channelOrder: 'BGR', mean: [...MEAN], std: [...STD], padValue: 0 },
});

/** An RGB image whose pixel (x, y) is (x·7 + y·3, x + 100, 200 − y) mod 256: every value differs. */
function patterned(width: number, height: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) data.set([(x * 7 + y * 3) % 256, (x + 100) % 256, (200 - y + 256) % 256], (y * width + x) * 3);
  }
  return { width, height, channels: 3, data };
}

const pixel = (img: RgbImage, x: number, y: number) => Array.from(img.data.subarray((y * img.width + x) * img.channels, (y * img.width + x + 1) * img.channels));

async function collect(gen: AsyncGenerator<TrainingBatch>): Promise<Omit<TrainingBatch, 'input'>[]> {
  const out: Omit<TrainingBatch, 'input'>[] = [];
  for await (const { input, ...rest } of gen) {
    input.dispose();
    out.push(rest);
  }
  return out;
}

describe('box conventions', () => {
  it('turns a VOC box into continuous coordinates and back', () => {
    // VOC [1, 1, 2, 2] covers pixels (1..2) x (1..2) 1-based = [0, 2) x [0, 2) continuous.
    expect(vocPixelsToContinuous([1, 1, 2, 2])).toEqual([0, 0, 2, 2]);
    expect(continuousToVocPixels(vocPixelsToContinuous([48, 240, 195, 371]))).toEqual([48, 240, 195, 371]);
  });
});

describe('horizontal flip', () => {
  it('flips a 4x2 image and one box as computed by hand', () => {
    // Row 0: pixels a b c d → d c b a; row 1: e f g h → h g f e (one gray value per pixel here).
    const img: RgbImage = { width: 4, height: 2, channels: 3, data: new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8].flatMap((v) => [v, v * 10, v * 20])) };
    const flipped = flipImageHorizontal(img);
    expect(Array.from(flipped.data)).toEqual([4, 3, 2, 1, 8, 7, 6, 5].flatMap((v) => [v, v * 10, v * 20]));
    // VOC box [1, 1, 2, 2] (the two left columns) → continuous [0, 0, 2, 2] → W − x: [4 − 2, 0, 4 − 0, 2] = [2, 0, 4, 2],
    // i.e. the two right columns, VOC [3, 1, 4, 2], where pixels a, b, e, f went.
    const box = flipBoxHorizontal(vocPixelsToContinuous([1, 1, 2, 2]), 4);
    expect(box).toEqual([2, 0, 4, 2]);
    expect(continuousToVocPixels(box)).toEqual([3, 1, 4, 2]);
    expect(pixel(flipped, 3, 0)).toEqual(pixel(img, 0, 0));
    expect(pixel(flipped, 2, 1)).toEqual(pixel(img, 1, 1));
  });

  it('is the identity when applied twice, on pixels (RGBA too) and boxes', () => {
    const img = patterned(7, 5);
    expect(flipImageHorizontal(flipImageHorizontal(img)).data).toEqual(img.data);
    const rgba: RgbImage = { width: 3, height: 2, channels: 4, data: Uint8Array.from({ length: 24 }, (_, i) => i * 9) };
    expect(Array.from(flipImageHorizontal(rgba).data.subarray(0, 4))).toEqual([8, 9, 10, 11].map((i) => i * 9));
    expect(flipImageHorizontal(flipImageHorizontal(rgba)).data).toEqual(rgba.data);
    const b: Box = [12.5, 3, 100.25, 40];
    expect(flipBoxHorizontal(flipBoxHorizontal(b, 333), 333)).toEqual(b);
    expect(img.data).toEqual(patterned(7, 5).data); // the input is not modified
  });
});

describe('random crop', () => {
  it('draws a window of the asked scale inside the image', () => {
    // 0.5 of 32x16 is 16x8; the room left is 16 by 8: u = 0.5 → x = floor(0.5 · 17) = 8, v = 0.99 → y = floor(0.99 · 9) = 8.
    expect(cropWindow(32, 16, 0.5, 0.5, 0.99)).toEqual({ x: 8, y: 8, width: 16, height: 8 });
    expect(cropWindow(32, 16, 1, 0.7, 0.7)).toEqual({ x: 0, y: 0, width: 32, height: 16 });
    expect(cropWindow(3, 3, 0.01, 0.999, 0)).toEqual({ x: 2, y: 0, width: 1, height: 1 });
  });

  it('copies the window\'s pixels and moves, clips or leaves out boxes by their centre', () => {
    const img = patterned(6, 4);
    const win = { x: 2, y: 1, width: 3, height: 2 };
    const out = cropImage(img, win);
    expect([out.width, out.height]).toEqual([3, 2]);
    expect(pixel(out, 0, 0)).toEqual(pixel(img, 2, 1));
    expect(pixel(out, 2, 1)).toEqual(pixel(img, 4, 2));
    expect(() => cropImage(img, { x: 4, y: 0, width: 3, height: 2 })).toThrow('does not lie inside the 6x4 image');
    // Centre (3, 2) inside: moved by (−2, −1) and clipped to [0, 3] x [0, 2].
    expect(cropBox([1, 1, 5, 3], win)).toEqual([0, 0, 3, 2]);
    // Centre (1, 2) outside (x < 2): left out.
    expect(cropBox([0, 1, 2, 3], win)).toBeNull();
  });

  it('crops in iterateBatches only when asked, from the seed, with boxes that follow the pixels', async () => {
    const img = patterned(32, 16);
    const images: AnnotatedImage[] = [{ id: 'a', width: 32, height: 16, objects: [{ box: [9, 5, 24, 12], classIndex: 3, difficult: false }] }];
    const run = async (cropScale?: number, seed = 2) => {
      const out: { gts: TrainingBatch['gts']; input: number[][][][] }[] = [];
      for await (const b of iterateBatches(images, async () => img, manifest(32, 'NHWC'), { batchSize: 1, seed, ...(cropScale !== undefined ? { cropScale } : {}) })) {
        out.push({ gts: b.gts, input: b.input.arraySync() as number[][][][] });
        b.input.dispose();
      }
      return out[0]!;
    };
    const plain = await run();
    expect(await run(1)).toEqual(plain);
    const cropped = await run(0.5);
    expect(await run(0.5)).toEqual(cropped);
    expect(cropped.input).not.toEqual(plain.input);
    // A crop of sides s ∈ [0.5, 1] is letterboxed back to the input: the box (kept: its centre is
    // inside every such window of this image) grows by 1/s ∈ [1, 2].
    const [box] = cropped.gts[0]!;
    expect(box!.classIndex).toBe(3);
    const grow = (box!.box[2] - box!.box[0]) / (plain.gts[0]![0]!.box[2] - plain.gts[0]![0]!.box[0]);
    expect(grow).toBeGreaterThanOrEqual(1);
    expect(grow).toBeLessThanOrEqual(2);
    await expect(run(0)).rejects.toThrow('cropScale must lie in (0, 1]');
  });
});

describe('prepareSample', () => {
  const objects = [
    { box: [48, 240, 195, 371] as Box, classIndex: 3, difficult: false },
    { box: [8, 12, 352, 370] as Box, classIndex: 14, difficult: true },
    { box: [1, 1, 500, 375] as Box, classIndex: 0, difficult: false },
  ];
  const img = patterned(500, 375);

  it('maps GT into the input so that inputToSource gives back the continuous box, flipped or not', () => {
    for (const flip of [false, true]) {
      const s = prepareSample(img, objects, { inputSize: 416, flip, keepDifficult: true });
      // 500x375 into 416: 416x312, pad top 52 (see letterbox.test.ts).
      expect(s.letterbox).toMatchObject({ resizedWidth: 416, resizedHeight: 312, padLeft: 0, padTop: 52 });
      expect(s.gts.map((g) => g.classIndex)).toEqual([3, 14, 0]);
      s.gts.forEach((g, i) => {
        const back = inputBoxToSource(s.letterbox, g.box, flip);
        vocPixelsToContinuous(objects[i]!.box).forEach((v, k) => expect(back[k]).toBeCloseTo(v, 9));
      });
      // The whole-image box covers the whole resized area: [0, 52, 416, 364].
      s.gts[2]!.box.forEach((v, k) => expect(v).toBeCloseTo([0, 52, 416, 364][k]!, 9));
    }
    // First box, no flip, by hand: continuous [47, 239, 195, 371] · 0.832 + [0, 52, 0, 52]
    // = [39.104, 250.848, 162.24, 360.672].
    const s = prepareSample(img, objects, { inputSize: 416, flip: false });
    s.gts[0]!.box.forEach((v, k) => expect(v).toBeCloseTo([39.104, 250.848, 162.24, 360.672][k]!, 9));
    // Flipped: [500 − 195, 239, 500 − 47, 371] = [305, 239, 453, 371] → · 0.832 = [253.76, 250.848, 376.896, 360.672].
    const f = prepareSample(img, objects, { inputSize: 416, flip: true });
    f.gts[0]!.box.forEach((v, k) => expect(v).toBeCloseTo([253.76, 250.848, 376.896, 360.672][k]!, 9));
  });

  it('cuts to a crop window first: boxes in the window\'s letterbox, flipped within the window', () => {
    // Window 16x8 at (8, 4) of a 32x16 image into a 32 input: scale 2, resized 32x16, pad top 8.
    // VOC [9, 5, 20, 11] → continuous [8, 4, 20, 11] → in the window [0, 0, 12, 7] → input [0, 8, 24, 22].
    const img = patterned(32, 16);
    const objects = [
      { box: [9, 5, 20, 11] as Box, classIndex: 1, difficult: false },
      // Centre (2.5, 2.5): outside the window, left out.
      { box: [1, 1, 4, 4] as Box, classIndex: 2, difficult: false },
    ];
    const crop = { x: 8, y: 4, width: 16, height: 8 };
    const s = prepareSample(img, objects, { inputSize: 32, flip: false, crop });
    expect(s.gts).toEqual([{ box: [0, 8, 24, 22], classIndex: 1 }]);
    expect([s.image.width, s.image.height]).toEqual([16, 8]);
    expect(pixel(s.image, 0, 0)).toEqual(pixel(img, 8, 4));
    // Flipped within the window: [0, 0, 12, 7] → [16 − 12, 0, 16, 7] = [4, 0, 16, 7] → input [8, 8, 32, 22].
    const f = prepareSample(img, objects, { inputSize: 32, flip: true, crop });
    expect(f.gts).toEqual([{ box: [8, 8, 32, 22], classIndex: 1 }]);
    expect(pixel(f.image, 15, 0)).toEqual(pixel(img, 8, 4));
  });

  it('leaves difficult objects out by default and keeps them on request', () => {
    expect(prepareSample(img, objects, { inputSize: 416, flip: false }).gts.map((g) => g.classIndex)).toEqual([3, 0]);
    expect(prepareSample(img, objects, { inputSize: 416, flip: false, keepDifficult: true }).gts).toHaveLength(3);
  });

  it('clips a 0-based box (x1 = 0) to the image', () => {
    const s = prepareSample(patterned(32, 16), [{ box: [0, 0, 4, 4], classIndex: 1, difficult: false }], { inputSize: 32, flip: false });
    // Continuous [−1, −1, 4, 4] → clipped [0, 0, 4, 4]; + pad top 8.
    expect(s.gts[0]!.box).toEqual([0, 8, 4, 12]);
  });
});

describe('iterateBatches', () => {
  // 32x16 into a 32 input: scale min(32/32, 32/16) = 1, so no resize; pad top (32 − 16) / 2 = 8.
  const small = patterned(32, 16);
  const images: AnnotatedImage[] = ['a', 'b', 'c', 'd', 'e'].map((id, i) => ({
    id,
    width: 32,
    height: 16,
    objects: [{ box: [i + 1, 2, i + 10, 12] as Box, classIndex: i, difficult: false }],
  }));
  const load = async () => small;

  it('fills the input with normalised BGR source pixels and the padding with the normalised pad value', async () => {
    const before = tf.memory().numTensors;
    const gen = iterateBatches(images, load, manifest(32), { batchSize: 2, seed: 1, shuffle: false });
    const first = await gen.next();
    if (first.done) throw new Error('no batch');
    const { input, gts, letterboxes, ids, flipped } = first.value;
    expect(input.shape).toEqual([2, 3, 32, 32]);
    expect(ids).toEqual(['a', 'b']);
    expect(flipped).toEqual([false, false]);
    expect(letterboxes[0]).toMatchObject({ resizedWidth: 32, resizedHeight: 16, padLeft: 0, padTop: 8 });
    // Image 'b': VOC [2, 2, 11, 12] → continuous [1, 1, 11, 12] → + pad top 8 = [1, 9, 11, 20].
    expect(gts[1]).toEqual([{ box: [1, 9, 11, 20], classIndex: 1 }]);
    const v = input.arraySync();
    // NCHW, BGR: channel 0 = blue = source channel 2. Input row y + 8 holds source row y.
    for (const [x, y] of [[0, 0], [5, 3], [31, 15], [17, 9]] as const) {
      const [r, g, b] = pixel(small, x, y) as [number, number, number];
      const want = [(b - MEAN[0]) / STD[0], (g - MEAN[1]) / STD[1], (r - MEAN[2]) / STD[2]];
      for (let c = 0; c < 3; c++) {
        expect(v[0]![c]![y + 8]![x]).toBeCloseTo(want[c]!, 5);
        expect(v[1]![c]![y + 8]![x]).toBeCloseTo(want[c]!, 5);
      }
    }
    // e.g. pixel (5, 3) = (5·7 + 3·3, 105, 197) = (44, 105, 197): blue → (197 − 103.53) / 57.375 = 1.62910...
    expect(v[0]![0]![11]![5]).toBeCloseTo((197 - 103.53) / 57.375, 5);
    // Rows 0..7 and 24..31 are padding: (0 − mean) / std per channel.
    for (const y of [0, 7, 24, 31]) {
      for (let c = 0; c < 3; c++) expect(v[0]![c]![y]![13]).toBeCloseTo(-MEAN[c]! / STD[c]!, 5);
    }
    input.dispose();
    await gen.return(undefined);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('mirrors the pixels and the GT of flipped images', async () => {
    const [batch] = await (async () => {
      const out: TrainingBatch[] = [];
      for await (const b of iterateBatches(images.slice(0, 1), load, manifest(32, 'NHWC'), { batchSize: 1, seed: 3, flipProbability: 1 })) out.push(b);
      return out;
    })();
    expect(batch!.flipped).toEqual([true]);
    expect(batch!.input.shape).toEqual([1, 32, 32, 3]);
    const v = batch!.input.arraySync();
    batch!.input.dispose();
    // Input column x shows source column 31 − x.
    const [r, g, b] = pixel(small, 31 - 4, 6) as [number, number, number];
    expect(v[0]![6 + 8]![4]).toEqual([(b - MEAN[0]) / STD[0], (g - MEAN[1]) / STD[1], (r - MEAN[2]) / STD[2]].map((e) => expect.closeTo(e, 5)));
    // VOC [1, 2, 10, 12] → continuous [0, 1, 10, 12] → flipped [22, 1, 32, 12] → + pad top 8.
    expect(batch!.gts[0]).toEqual([{ box: [22, 9, 32, 20], classIndex: 0 }]);
    expect(inputBoxToSource(batch!.letterboxes[0]!, batch!.gts[0]![0]!.box, true)).toEqual([0, 1, 10, 12]);
  });

  it('visits every image once per epoch, in an order fixed by (seed, epoch)', async () => {
    const ids = async (seed: number, epoch: number, extra: object = {}) =>
      (await collect(iterateBatches(images, load, manifest(32), { batchSize: 2, seed, epoch, ...extra }))).flatMap((b) => b.ids);
    const a = await ids(7, 0);
    expect([...a].sort()).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(await ids(7, 0)).toEqual(a);
    // 5! = 120 orders; these seeds and epochs were checked to give different ones.
    expect(await ids(8, 0)).not.toEqual(a);
    expect(await ids(7, 1)).not.toEqual(a);
    // Flip draws do not move the order.
    expect(await ids(7, 0, { flipProbability: 0.5 })).toEqual(a);
    expect(epochOrder(5, 7, 0)).toEqual(a.map((id) => 'abcde'.indexOf(id)));
    expect(await ids(7, 0, { shuffle: false })).toEqual(['a', 'b', 'c', 'd', 'e']);
  });

  it('puts the asked number of annotated images in every batch, each photo once per epoch', async () => {
    // 3 annotated images (0..2) among 10 photos (3..12), batch 4 with 1 annotated per batch.
    const unlabeled = Array.from({ length: 13 }, (_, i) => i >= 3);
    const order = mixedEpochOrder(unlabeled, 4, 1, 5, 0);
    // ceil(10 photos / 3 per batch) = 4 batches; the last holds 1 annotated image and 1 photo.
    expect(order).toHaveLength(3 * 4 + 2);
    for (let b = 0; b < 4; b++) {
      const batch = order.slice(b * 4, b * 4 + 4);
      expect(batch.filter((i) => i < 3)).toHaveLength(1);
      expect(batch[0]).toBeLessThan(3);
    }
    const photos = order.filter((i) => i >= 3);
    expect([...photos].sort((a, b) => a - b)).toEqual([3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    // The annotated images cycle: the first three batches use each of them once.
    expect(new Set(order.filter((_, k) => k % 4 === 0).slice(0, 3))).toEqual(new Set([0, 1, 2]));
    expect(mixedEpochOrder(unlabeled, 4, 1, 5, 0)).toEqual(order);
    expect(mixedEpochOrder(unlabeled, 4, 1, 5, 1)).not.toEqual(order);
    // Nothing to mix: the plain shuffled order.
    expect(mixedEpochOrder(unlabeled.map(() => true), 4, 1, 5, 0)).toEqual(epochOrder(13, 5, 0));
    expect(mixedEpochOrder(unlabeled, 4, 0, 5, 0)).toEqual(epochOrder(13, 5, 0));
    expect(() => mixedEpochOrder(unlabeled, 4, 4, 5, 0)).toThrow(/below the batch size \(4\)/);
    // iterateBatches walks it.
    const images: AnnotatedImage[] = unlabeled.map((u, i) => ({ id: `i${i}`, objects: [], ...(u ? { unlabeled: true } : {}) }));
    const tiny = patterned(2, 1);
    const batches = await collect(iterateBatches(images, async () => tiny, manifest(32), { batchSize: 4, seed: 5, annotatedPerBatch: 1, dropLast: true }));
    expect(batches).toHaveLength(3);
    for (const b of batches) expect(b.unlabeled).toEqual([false, true, true, true]);
  });

  it('draws flips from the seed, about as often as asked', async () => {
    const many: AnnotatedImage[] = Array.from({ length: 200 }, (_, i) => ({ id: `i${i}`, objects: [] }));
    const tiny = patterned(2, 1);
    const run = async (seed: number) => (await collect(iterateBatches(many, async () => tiny, manifest(32), { batchSize: 50, seed, flipProbability: 0.5 }))).flatMap((b) => b.flipped);
    const f = await run(1);
    expect(await run(1)).toEqual(f);
    const count = f.filter(Boolean).length;
    // Binomial(200, 0.5): mean 100, sd ≈ 7.1; this bound is > 4 sd wide.
    expect(count).toBeGreaterThan(70);
    expect(count).toBeLessThan(130);
  });

  it('keeps or drops the short last batch and leaves no tensor behind', async () => {
    const before = tf.memory().numTensors;
    const sizes = async (dropLast: boolean) => (await collect(iterateBatches(images, load, manifest(32), { batchSize: 2, seed: 1, dropLast }))).map((b) => b.ids.length);
    expect(await sizes(false)).toEqual([2, 2, 1]);
    expect(await sizes(true)).toEqual([2, 2]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('decodes through the injected decoder', async () => {
    const seen: string[] = [];
    const loader = createImageLoader(
      async (id) => new TextEncoder().encode(id),
      (bytes, name) => {
        seen.push(`${name}:${new TextDecoder().decode(bytes)}`);
        return small;
      },
    );
    const batches = await collect(iterateBatches(images.slice(0, 2), loader, manifest(32), { batchSize: 2, seed: 0, shuffle: false }));
    expect(batches[0]!.ids).toEqual(['a', 'b']);
    expect(seen.sort()).toEqual(['a:a', 'b:b']);
  });

  it('rejects bad options, a size that disagrees with the annotation, and stops when aborted', async () => {
    const run = (opts: object, imgs = images) => collect(iterateBatches(imgs, load, manifest(32), { batchSize: 2, seed: 1, ...opts }));
    await expect(run({ batchSize: 0 })).rejects.toThrow(/batchSize must be a positive integer/);
    await expect(run({ flipProbability: 2 })).rejects.toThrow(/flipProbability must lie in \[0, 1\]/);
    await expect(run({}, [{ id: 'z', width: 40, height: 16, objects: [] }])).rejects.toThrow(/"z" decodes to 32x16 but its annotation says 40x16/);
    const controller = new AbortController();
    controller.abort();
    await expect(run({ signal: controller.signal })).rejects.toThrow(/abort/i);
  });
});

describe('seeded shuffle', () => {
  it('gives a permutation that depends on the seed only', () => {
    const a = shuffledIndices(50, createRng(42));
    expect([...a].sort((x, y) => x - y)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(shuffledIndices(50, createRng(42))).toEqual(a);
    expect(shuffledIndices(50, createRng(43))).not.toEqual(a);
    const rng = createRng(5);
    const draws = Array.from({ length: 1000 }, rng);
    expect(draws.every((d) => d >= 0 && d < 1)).toBe(true);
    // Mean of 1000 uniforms: 0.5 ± 0.009 (sd); allow 5 sd.
    expect(Math.abs(draws.reduce((s, d) => s + d, 0) / 1000 - 0.5)).toBeLessThan(0.046);
  });
});
