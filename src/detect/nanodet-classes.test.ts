import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { readManifest } from '../models/load-node';
import { EVAL_DETECT_OPTIONS } from '../eval/evaluate-detector';
import { detectGfl } from './nanodet';
import type { GraphRunner } from './runner';

const root = new URL('../../', import.meta.url).pathname;

describe('detectGfl with classIndices', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });

  it('keeps the wanted classes before the 100-box cap, so other classes cannot crowd them out', async () => {
    // NanoDet-g's manifest (80 COCO classes, strides 8/16/32, regMax 10) at a 96x96 input:
    // 12x12 + 6x6 + 3x3 = 189 cells. Every cell scores "traffic light" (9) at logit 5, except the
    // first one, which scores "dog" (16) at logit 3. Every edge is 1 bin (one stride) from the
    // centre, so boxes of one level overlap their neighbours by IoU 1/3 and NMS (0.6) keeps them.
    const { manifest } = readManifest(join(root, 'models/nanodet.manifest.json'));
    const k = manifest.classes.length;
    const bins = manifest.head.regMax + 1;
    const channels = k + 4 * bins;
    const level = (side: number, first: boolean) => {
      const data = new Float32Array(side * side * channels).fill(-10);
      for (let cell = 0; cell < side * side; cell++) {
        const o = cell * channels;
        if (first && cell === 0) data[o + 16] = 3;
        else data[o + 9] = 5;
        for (let e = 0; e < 4; e++) data[o + k + e * bins + 1] = 20;
      }
      return tf.tensor4d(data, [1, side, side, channels]);
    };
    const runner: GraphRunner = { run: () => [level(12, true), level(6, false), level(3, false)] };
    const image = { width: 96, height: 96, channels: 3 as const, data: new Uint8Array(96 * 96 * 3) };
    const options = { ...EVAL_DETECT_OPTIONS, inputSize: 96 };

    const all = (await detectGfl(runner, manifest, image, options)).detections;
    expect(all).toHaveLength(100);
    expect(all.every((d) => d.className === 'traffic light')).toBe(true);

    // The 20 VOC classes of the COCO head (dog among them, traffic light not): the dog survives.
    const voc = ['person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train', 'boat', 'bird', 'cat', 'dog', 'horse', 'sheep', 'cow', 'bottle', 'chair', 'couch', 'potted plant', 'dining table', 'tv'];
    const classIndices = voc.map((c) => manifest.classes.indexOf(c));
    expect(classIndices.every((i) => i >= 0)).toBe(true);
    const kept = (await detectGfl(runner, manifest, image, { ...options, classIndices })).detections;
    expect(kept.map((d) => d.className)).toEqual(['dog']);
    expect(kept[0]!.score).toBeCloseTo(1 / (1 + Math.exp(-3)), 6);
  });
});
