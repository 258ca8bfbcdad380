import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { describe, expect, it } from 'vitest';
import { add, biasAdd, channelSums } from './bias-add';

describe('biasAdd with a 2-D bias gradient', () => {
  it('gives the sums of dy per channel, and dy itself, on cpu and wasm', async () => {
    for (const backend of ['cpu', 'wasm']) {
      await tf.setBackend(backend);
      const { dy, dx, db } = tf.tidy(() => {
        // dy = r: y's gradient is r itself; the bias's is r summed over batch and space.
        const y = tf.tensor4d(Array.from({ length: 2 * 2 * 3 * 2 }, (_, i) => i / 10), [2, 2, 3, 2]);
        const b = tf.tensor1d([0.5, -1]);
        const r = tf.tensor4d(Array.from({ length: 24 }, (_, i) => (i % 5) - 2), [2, 2, 3, 2]);
        const [gy, gb] = tf.grads((a: tf.Tensor, c: tf.Tensor) => biasAdd(a, c).mul(r).sum())([y, b]);
        return { dy: Array.from(r.dataSync()), dx: Array.from(gy!.dataSync()), db: Array.from(gb!.dataSync()) };
      });
      expect(dx).toEqual(dy);
      // Channel 0 takes r at even i, channel 1 at odd i, r = (i % 5) − 2: sums 22 − 24 and 24 − 24.
      const sums = [0, 1].map((c) => dy.filter((_, i) => i % 2 === c).reduce((s, v) => s + v, 0));
      expect(sums).toEqual([-2, 0]);
      expect(db).toEqual(sums);
    }
  });

  it('adds the bias like tf.add, on and off the tape', async () => {
    await tf.setBackend('cpu');
    const y = tf.tensor2d([1, 2, 3, 4], [2, 2]);
    const b = tf.tensor1d([10, 20]);
    expect(Array.from(biasAdd(y, b).dataSync())).toEqual([11, 22, 13, 24]);
    const taped = tf.grad((a: tf.Tensor) => {
      expect(Array.from(biasAdd(a, b).dataSync())).toEqual([11, 22, 13, 24]);
      return biasAdd(a, b).sum();
    })(y);
    expect(Array.from(taped.dataSync())).toEqual([1, 1, 1, 1]);
  });
});

describe('add on the graph', () => {
  it('routes a [1,1,1,C] bias on either side through biasAdd, with its gradient in its own shape', async () => {
    await tf.setBackend('cpu');
    const y = tf.tensor4d([1, 2, 3, 4, 5, 6], [1, 3, 1, 2]);
    const b = tf.tensor4d([10, 20], [1, 1, 1, 2]);
    const r = tf.tensor4d([1, -1, 2, 0, 3, 5], [1, 3, 1, 2]);
    for (const f of [(p: tf.Tensor, q: tf.Tensor) => add(p, q), (p: tf.Tensor, q: tf.Tensor) => add(q, p)]) {
      expect(Array.from(f(y, b).dataSync())).toEqual([11, 22, 13, 24, 15, 26]);
      const [gy, gb] = tf.grads((p: tf.Tensor, q: tf.Tensor) => f(p, q).mul(r).sum())([y, b]);
      expect(gb!.shape).toEqual([1, 1, 1, 2]);
      expect(Array.from(gb!.dataSync())).toEqual([1 + 2 + 3, -1 + 0 + 5]);
      expect(Array.from(gy!.dataSync())).toEqual([1, -1, 2, 0, 3, 5]);
    }
    // Same shapes (a residual) and a bias along another axis keep tf.add's broadcasting and gradient.
    const across = tf.tensor4d([100, 200, 300], [1, 3, 1, 1]);
    const [gy, ga] = tf.grads((p: tf.Tensor, q: tf.Tensor) => add(p, q).mul(r).sum())([y, across]);
    expect(Array.from(ga!.dataSync())).toEqual([0, 2, 8]);
    expect(Array.from(gy!.dataSync())).toEqual([1, -1, 2, 0, 3, 5]);
    expect(Array.from(add(y, y).dataSync())).toEqual([2, 4, 6, 8, 10, 12]);
  });
});

describe('channelSums', () => {
  it('sums every axis but the last, as a float64 sum does, on wasm (an average pool) and cpu (Sum)', async () => {
    for (const backend of ['wasm', 'cpu']) {
      await tf.setBackend(backend);
      // A rank-2 matrix, a rank-5 depthwise product, and NanoDet-g's largest bias gradient at batch 4.
      for (const shape of [[7, 3], [2, 3, 5, 4, 2], [4, 208, 208, 32]]) {
        const x = tf.randomNormal(shape, 0.3, 1, 'float32', 5);
        const values = x.dataSync();
        const channels = shape[shape.length - 1]!;
        const exact = new Float64Array(channels);
        values.forEach((v, i) => (exact[i % channels] = exact[i % channels]! + v));
        const sums = channelSums(x);
        expect(sums.shape).toEqual([channels]);
        const got = sums.dataSync();
        // float32 accumulation: about 1e-5 of the count, which is what tf.sum gets too.
        const tolerance = 1e-5 * (x.size / channels) + 1e-5;
        got.forEach((v, k) => expect(Math.abs(v - exact[k]!)).toBeLessThan(tolerance));
        tf.dispose([x, sums]);
      }
    }
  });
});
