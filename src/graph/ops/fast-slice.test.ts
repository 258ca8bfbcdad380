import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { describe, expect, it } from 'vitest';
import { sliceRows } from './fast-slice';

describe('sliceRows', () => {
  const cases: [number[], number[], number[]][] = [
    [[2, 6, 7, 3], [0, 1, 2, 0], [2, 4, 3, 3]],
    [[2, 6, 7, 3], [1, 0, 0, 0], [1, 6, 7, 3]],
    [[2, 6, 7, 3], [0, 0, 0, 1], [2, 6, 7, 2]],
    [[4, 5, 6], [0, 2, 0], [4, 3, 6]],
    [[9, 12], [3, 0], [2, 12]],
    [[2, 6, 7, 3], [0, 2, 1, 0], [-1, -1, -1, -1]],
    [[2, 6, 7, 3], [0, 0, 0, 0], [2, 6, 7, 3]],
  ];
  for (const backend of ['cpu', 'wasm']) {
    for (const [shape, begin, size] of cases) {
      it(`${backend}: [${shape}] from [${begin}] size [${size}] equals tf.slice, with its gradient`, async () => {
        await tf.setBackend(backend);
        const x = tf.randomNormal(shape, 0, 1, 'float32', 3);
        const ref = tf.slice(x, begin, size);
        const mine = sliceRows(x, begin, size);
        expect(mine.shape).toEqual(ref.shape);
        expect(Array.from(mine.dataSync())).toEqual(Array.from(ref.dataSync()));
        const r = tf.randomNormal(ref.shape, 0, 1, 'float32', 4);
        const g1 = tf.grad((a: tf.Tensor) => tf.slice(a, begin, size).mul(r).sum())(x);
        const g2 = tf.grad((a: tf.Tensor) => sliceRows(a, begin, size).mul(r).sum())(x);
        expect(Array.from(g2.dataSync())).toEqual(Array.from(g1.dataSync()));
        tf.dispose([x, ref, mine, r, g1, g2]);
      });
    }
  }
});
