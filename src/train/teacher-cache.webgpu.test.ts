/**
 * The teacher cache on WebGPU (Dawn on SwiftShader in Node): rows kept, gathered, concatenated and
 * split into class and box blocks on the GPU give the taps a direct read gives, as on cpu. The
 * "teacher" is a small fixed convolutional read of tiny images (SwiftShader is too slow for the
 * real one); teacher-cache.test.ts runs NanoDet-g on wasm.
 */
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerNodeWebGpu } from '../testing/node-webgpu';
import { disposeTaps, type DetectorTaps } from './detector-taps';
import { TeacherCache } from './teacher-cache';

const CLASSES = 3;

/** Two levels of NHWC taps from an NCHW batch: features by fixed 3x3 convolutions, head outputs with 3 class and 4 box columns. */
function readTiny(input: tf.Tensor4D): DetectorTaps {
  return tf.tidy(() => {
    const x = tf.transpose(input, [0, 2, 3, 1]) as tf.Tensor4D;
    const filter = (cin: number, cout: number, seed: number) => tf.tensor4d(Array.from({ length: 9 * cin * cout }, (_, i) => Math.sin(seed + i * 0.37)), [3, 3, cin, cout]);
    const level0 = tf.relu(tf.conv2d(x, filter(3, 4, 1), 1, 'same')) as tf.Tensor4D;
    const level1 = tf.relu(tf.conv2d(level0, filter(4, 4, 2), 2, 'same')) as tf.Tensor4D;
    const features = [level0, level1];
    const raw = features.map((f, l) => tf.conv2d(f, filter(4, CLASSES + 4, 3 + l), 1, 'same') as tf.Tensor4D);
    return {
      backbone: features.map((f) => tf.mul(f, 2) as tf.Tensor4D),
      neck: features,
      head: features.map((f) => tf.sigmoid(f) as tf.Tensor4D),
      raw,
      cls: raw.map((r) => r.slice([0, 0, 0, 0], [-1, -1, -1, CLASSES]) as tf.Tensor4D),
      box: raw.map((r) => r.slice([0, 0, 0, CLASSES], [-1, -1, -1, -1]) as tf.Tensor4D),
    };
  });
}

const images = (n: number, seed: number) => tf.tensor4d(Array.from({ length: n * 3 * 8 * 8 }, (_, i) => Math.cos(seed + i * 0.11)), [n, 3, 8, 8]);

/** Every tap of every batch read through a cache, as numbers, with the cache's counts. */
async function readThroughCache(backend: string) {
  await tf.setBackend(backend);
  const before = tf.memory().numTensors;
  const cache = new TeacherCache(2 ** 20, ['neck']);
  // Image ids per batch: read whole, in part (c new), wholly from the cache, and a single held image.
  const batches = [['a', 'b'], ['c', 'b', 'a'], ['b', 'c'], ['a']];
  const byId = { a: images(1, 1), b: images(1, 2), c: images(1, 3) };
  const out: { taps: number[][]; direct: number[][] }[] = [];
  for (const ids of batches) {
    const input = tf.concat(ids.map((id) => byId[id as keyof typeof byId])) as tf.Tensor4D;
    const direct = readTiny(input);
    const cached = cache.read(readTiny, input, ids);
    const read = async (t: DetectorTaps) => Promise.all([...t.neck, ...t.cls, ...t.box, ...t.raw].map(async (x) => Array.from(await x.data())));
    out.push({ taps: await read(cached), direct: await read(direct) });
    if (ids.length > 1 && cache.stats().hits > 0) expect(cached.backbone).toEqual([]);
    disposeTaps(direct);
    disposeTaps(cached);
    input.dispose();
  }
  const { hits, misses, entries } = cache.stats();
  cache.dispose();
  tf.dispose(Object.values(byId));
  const leaked = tf.memory().numTensors - before;
  return { out, stats: [hits, misses, entries], leaked };
}

describe('the teacher cache on WebGPU', () => {
  beforeAll(async () => {
    await registerNodeWebGpu();
  });
  afterAll(async () => {
    await tf.setBackend('cpu');
  });

  it('serves kept rows as a direct read gives them, and as the cpu backend does', async () => {
    const cpu = await readThroughCache('cpu');
    const gpu = await readThroughCache('webgpu');
    expect(gpu.stats).toEqual([5, 3, 3]);
    expect(cpu.stats).toEqual(gpu.stats);
    expect(gpu.leaked).toBe(0);
    gpu.out.forEach((batch, b) => {
      batch.taps.forEach((values, k) => {
        values.forEach((v, i) => expect(v, `batch ${b} tap ${k} [${i}]`).toBeCloseTo(batch.direct[k]![i]!, 5));
        values.forEach((v, i) => expect(v, `batch ${b} tap ${k} [${i}] against cpu`).toBeCloseTo(cpu.out[b]!.taps[k]![i]!, 3));
      });
    });
  });
});
