import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { describe, expect, it } from 'vitest';
import { concat, sideBySide } from './side-by-side';

describe('side by side on a new axis, and channel concats through it', () => {
  it('puts [N,R,C,K] tensors side by side as tf.stack on axis 3 does (hand-sized)', async () => {
    await tf.setBackend('wasm');
    const a = tf.tensor4d([1, 2, 3, 4, 5, 6, 7, 8], [1, 2, 2, 2]);
    const b = tf.tensor4d([11, 12, 13, 14, 15, 16, 17, 18], [1, 2, 2, 2]);
    const out = sideBySide([a, b]);
    expect(out.shape).toEqual([1, 2, 2, 2, 2]);
    expect(Array.from(out.dataSync())).toEqual([1, 2, 11, 12, 3, 4, 13, 14, 5, 6, 15, 16, 7, 8, 17, 18]);
  });

  it('concats equal tensors on the last axis as tf.concat does, gradients included, on wasm', async () => {
    const run = async (backend: string) => {
      await tf.setBackend(backend);
      const parts = [0, 1, 2].map((s) => tf.tensor4d(Array.from({ length: 2 * 3 * 2 * 5 }, (_, i) => ((i * 37 + s * 11) % 17) - 8), [2, 3, 2, 5]));
      const w = tf.tensor4d(Array.from({ length: 2 * 3 * 2 * 15 }, (_, i) => (i % 7) - 3), [2, 3, 2, 15]);
      const y = concat(parts, 3);
      const grads = tf.grads((p: tf.Tensor, q: tf.Tensor, r: tf.Tensor) => concat([p, q, r], -1).mul(w).sum())(parts);
      return { shape: y.shape, y: Array.from(await y.data()), g: await Promise.all(grads.map(async (g) => Array.from(await g.data()))) };
    };
    const wasm = await run('wasm');
    const cpu = await run('cpu');
    expect(wasm.shape).toEqual([2, 3, 2, 15]);
    expect(wasm).toEqual(cpu);
    // Unequal parts and other axes keep tf.concat.
    await tf.setBackend('wasm');
    expect(Array.from(concat([tf.tensor2d([1, 2], [1, 2]), tf.tensor2d([3], [1, 1])], 1).dataSync())).toEqual([1, 2, 3]);
    expect(Array.from(concat([tf.tensor2d([1, 2], [1, 2]), tf.tensor2d([3, 4], [1, 2])], 0).dataSync())).toEqual([1, 2, 3, 4]);
  });
});
