import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { describe, expect, it } from 'vitest';
import { maxPoolForwardGrad } from './pool-grad';

async function gradOf(backend: string, shape: number[], k: number, s: number, pads: [number, number, number, number], mine: boolean, ties = false) {
  await tf.setBackend(backend);
  return tf.tidy(() => {
    const x0 = tf.randomNormal(shape, 0, 1, 'float32', 1);
    const x = (ties ? x0.mul(2).round() : x0) as tf.Tensor4D; // rounding makes equal maxima common
    const pool = (a: tf.Tensor4D) =>
      mine ? maxPoolForwardGrad(a, [k, k], [s, s], pads) : tf.maxPool(tf.pad(a, [[0, 0], [pads[0], pads[1]], [pads[2], pads[3]], [0, 0]], -Infinity), k, s, 'valid');
    const y = pool(x);
    const r = tf.randomNormal(y.shape, 0, 1, 'float32', 2);
    const g = tf.grad((a: tf.Tensor) => pool(a as tf.Tensor4D).mul(r).sum())(x);
    return { y: Array.from(y.dataSync()), g: Array.from(g.dataSync()) };
  });
}

describe('max pooling gradient through forward ops', () => {
  const cases: [number[], number, number, [number, number, number, number]][] = [
    [[1, 9, 9, 32], 3, 2, [0, 0, 0, 0]],
    [[2, 34, 34, 8], 3, 2, [1, 1, 1, 1]],
    [[1, 8, 7, 5], 2, 2, [0, 0, 0, 1]],
    [[1, 6, 6, 3], 3, 1, [1, 1, 1, 1]],
    [[1, 11, 10, 4], 2, 3, [0, 1, 1, 0]], // stride above the kernel: phases no tap reaches
  ];
  for (const [shape, k, s, pads] of cases) {
    it(`${k}x${k}/${s} on [${shape}] matches the cpu backend's native gradient, on cpu and wasm`, async () => {
      const ref = await gradOf('cpu', shape, k, s, pads, false);
      for (const backend of ['cpu', 'wasm']) {
        const mine = await gradOf(backend, shape, k, s, pads, true);
        expect(mine.y).toEqual(ref.y);
        mine.g.forEach((v, i) => expect(Math.abs(v - ref.g[i]!)).toBeLessThan(1e-6));
      }
    });
  }
  it('gives a tied window its gradient once, at the first maximum, like TensorFlow', async () => {
    const ref = await gradOf('cpu', [1, 7, 7, 4], 3, 2, [0, 0, 0, 0], false, true);
    const mine = await gradOf('wasm', [1, 7, 7, 4], 3, 2, [0, 0, 0, 0], true, true);
    mine.g.forEach((v, i) => expect(Math.abs(v - ref.g[i]!)).toBeLessThan(1e-6));
  });
});

describe('max pooling gradient with infinities in the input', () => {
  // 3 channels take the forward kernels on wasm, 4 the SIMD loop.
  for (const channels of [3, 4]) it(`matches the cpu backend where the graph padded with −Infinity itself (${channels} channels)`, async () => {
    const run = async (backend: string, mine: boolean) => {
      await tf.setBackend(backend);
      return tf.tidy(() => {
        const x0 = tf.randomNormal([1, 6, 6, channels], 0, 1, 'float32', 5);
        const x = tf.pad(x0, [[0, 0], [2, 1], [1, 1], [0, 0]], -Infinity) as tf.Tensor4D;
        const pool = (a: tf.Tensor4D) => (mine ? maxPoolForwardGrad(a, [3, 3], [2, 2], [0, 0, 0, 0]) : tf.maxPool(a, 3, 2, 'valid'));
        const r = tf.randomNormal(pool(x).shape, 0, 1, 'float32', 6);
        const g = tf.grad((a: tf.Tensor) => pool(a as tf.Tensor4D).mul(r).sum())(x);
        return Array.from(g.dataSync());
      });
    };
    const ref = await run('cpu', false);
    for (const backend of ['cpu', 'wasm']) {
      const mine = await run(backend, true);
      mine.forEach((v, i) => expect(Math.abs(v - ref[i]!)).toBeLessThan(1e-6));
    }
  });
});

describe('max pooling gradient on wasm', () => {
  it('is one kernel where the channels are a multiple of 4, and leaves no tensor behind', async () => {
    await tf.setBackend('wasm');
    const x = tf.randomNormal([2, 9, 9, 8], 0, 1, 'float32', 7) as tf.Tensor4D;
    const before = tf.memory().numTensors;
    const profiled = await tf.profile(() => tf.grad((a: tf.Tensor) => maxPoolForwardGrad(a as tf.Tensor4D, [3, 3], [2, 2], [1, 1, 1, 1]).sum())(x));
    (profiled.result as tf.Tensor).dispose();
    expect(profiled.kernelNames).toContain('LabMaxPoolGrad');
    expect(profiled.kernelNames.filter((k) => k === 'StridedSlice')).toEqual([]);
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
  });
});
