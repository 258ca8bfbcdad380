import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { describe, expect, it } from 'vitest';
import { matMulPlainGrads } from './mat-mul';

describe.each(['cpu', 'wasm'])('matMulPlainGrads (%s)', (backend) => {
  it('gives the product and the gradients of tf.matMul', async () => {
    await tf.setBackend(backend);
    const a = tf.randomNormal([5, 7], 0, 1, 'float32', 1) as tf.Tensor2D;
    const b = tf.randomNormal([7, 3], 0, 1, 'float32', 2) as tf.Tensor2D;
    const w = tf.randomNormal([5, 3], 0, 1, 'float32', 3);
    const before = tf.memory().numTensors;
    const ours = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(matMulPlainGrads(x as tf.Tensor2D, y as tf.Tensor2D), w)))([a, b]);
    const reference = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(tf.matMul(x, y), w)))([a, b]);
    ours.forEach((g, i) => {
      expect(g.shape).toEqual(reference[i]!.shape);
      const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(g, reference[i]!))).dataSync()[0]!);
      expect(diff).toBeLessThan(1e-5);
    });
    const product = matMulPlainGrads(a, b);
    const expected = tf.matMul(a, b);
    expect(Array.from(product.dataSync()).map((v, i) => Math.abs(v - expected.dataSync()[i]!)).every((d) => d < 1e-5)).toBe(true);
    tf.dispose([...ours, ...reference, product, expected]);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([a, b, w]);
    await tf.setBackend('cpu');
  });
});
