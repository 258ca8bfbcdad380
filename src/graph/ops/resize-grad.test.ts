import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { resizeMatrix, resizeWithGrad, type ResizeMode } from './resize-grad';

/** The resize written as the matrix product the gradient assumes: y = A_h · x · A_wᵀ. */
function byMatrices(x: tf.Tensor4D, size: [number, number], align: boolean, half: boolean, mode: ResizeMode) {
  const [n, h, w, c] = x.shape;
  const ah = tf.tensor2d(resizeMatrix(size[0], h, align, half, mode), [size[0], h]);
  const aw = tf.tensor2d(resizeMatrix(size[1], w, align, half, mode), [size[1], w]);
  const alongW = tf.matMul(x.transpose([0, 1, 3, 2]).reshape([n * h * c, w]), aw, false, true).reshape([n, h, c, size[1]]);
  const alongH = tf.matMul(alongW.transpose([0, 2, 3, 1]).reshape([n * c * size[1], h]), ah, false, true);
  return alongH.reshape([n, c, size[1], size[0]]).transpose([0, 3, 2, 1]);
}

describe('resize with a correct gradient', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });

  it('half-pixel bilinear weights match a hand computation (4 → 8)', () => {
    // scale 0.5: output 0 samples −0.25 → clamped to input 0; output 1 samples 0.25 → 0.75·x0 + 0.25·x1
    const m = resizeMatrix(8, 4, false, true, 'bilinear');
    expect(Array.from(m.slice(0, 4))).toEqual([1, 0, 0, 0]);
    expect(Array.from(m.slice(4, 8))).toEqual([0.75, 0.25, 0, 0]);
    expect(Array.from(m.slice(28, 32))).toEqual([0, 0, 0, 1]);
  });

  const settings: [string, boolean, boolean, ResizeMode, [number, number]][] = [
    ['bilinear half-pixel x2', false, true, 'bilinear', [8, 10]],
    ['bilinear half-pixel x0.5', false, true, 'bilinear', [2, 3]],
    ['bilinear legacy', false, false, 'bilinear', [7, 9]],
    ['bilinear align-corners', true, false, 'bilinear', [7, 9]],
    ['nearest half-pixel', false, true, 'nearest', [8, 10]],
    ['nearest legacy', false, false, 'nearest', [7, 3]],
  ];
  for (const [name, align, half, mode, size] of settings) {
    it(`${name}: the matrices reproduce tfjs's forward, and the gradient matches finite differences`, () => {
      const x = tf.randomNormal([2, 4, 5, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
      const forward = mode === 'bilinear' ? tf.image.resizeBilinear(x, size, align, half) : tf.image.resizeNearestNeighbor(x, size, align, half);
      const viaMatrices = byMatrices(x, size, align, half, mode);
      const f1 = forward.dataSync();
      const f2 = viaMatrices.dataSync();
      f1.forEach((v, i) => expect(Math.abs(v - f2[i]!)).toBeLessThan(1e-5));

      const r = tf.randomNormal(forward.shape, 0, 1, 'float32', 2);
      const loss = (a: tf.Tensor) => resizeWithGrad(a as tf.Tensor4D, size, align, half, mode).mul(r).sum();
      const g = tf.grad(loss)(x).dataSync();
      // The function is linear in x, so central differences are exact up to rounding.
      const xv = x.dataSync();
      for (const i of [0, 7, 19, 58, 119]) {
        const plus = xv.slice();
        plus[i]! += 0.5;
        const minus = xv.slice();
        minus[i]! -= 0.5;
        const fd = loss(tf.tensor(plus, x.shape)).dataSync()[0]! - loss(tf.tensor(minus, x.shape)).dataSync()[0]!;
        expect(Math.abs(fd - g[i]!)).toBeLessThan(1e-4);
      }
    });
  }
});
