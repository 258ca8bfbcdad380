import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { describe, expect, it } from 'vitest';
import { bceWithLogits } from './bce-with-logits';

/** softplus(x) − x·y in float64, softplus written as max(x, 0) + log1p(e^−|x|). */
const bce64 = (x: number, y: number) => Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x))) - x * y;
const sigmoid64 = (x: number) => 1 / (1 + Math.exp(-x));

// Logits from far negative to far positive (1 − σ rounds to 0 in float32 there), soft targets.
const LOGITS = [-30, -12, -4, -1.5, -0.3, 0, 0.2, 1, 2.5, 6, 11, 25];
const TARGETS = [0, 0.05, 0.4, 0.83, 1];
const xs = TARGETS.flatMap(() => LOGITS);
const ys = TARGETS.flatMap((y) => LOGITS.map(() => y));
const shape: [number, number] = [TARGETS.length, LOGITS.length];

describe('bceWithLogits', () => {
  for (const backend of ['cpu', 'wasm']) {
    it(`on ${backend}: float64 values and gradient (σ(x) − y)·dy per element; no tensor left`, async () => {
      await tf.setBackend(backend);
      const x = tf.tensor2d(xs, shape);
      const y = tf.tensor2d(ys, shape);
      // Weights per element, so each element's gradient carries its own dy.
      const w = tf.tensor2d(xs.map((_, i) => 0.5 + (i % 7)), shape);
      const before = tf.memory().numTensors;
      const loss = bceWithLogits(x, y);
      const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(bceWithLogits(t, y), w)))(x);
      const values = loss.dataSync();
      const grads = g.dataSync();
      const weights = w.dataSync();
      tf.dispose([loss, g]);
      expect(tf.memory().numTensors).toBe(before);
      xs.forEach((xv, i) => {
        const want = bce64(xv, ys[i]!);
        expect(Math.abs(values[i]! - want), `loss at x ${xv}, y ${ys[i]}`).toBeLessThan(2e-6 * Math.max(1, Math.abs(want)));
        const wantGrad = (sigmoid64(xv) - ys[i]!) * weights[i]!;
        expect(Math.abs(grads[i]! - wantGrad), `gradient at x ${xv}, y ${ys[i]}`).toBeLessThan(1e-6 * Math.max(1, Math.abs(wantGrad)));
      });
      tf.dispose([x, y, w]);
    });
  }

  it('on wasm runs the Sigmoid kernel and one fused loop, no Softplus', async () => {
    await tf.setBackend('wasm');
    const x = tf.tensor2d(xs, shape);
    const y = tf.tensor2d(ys, shape);
    const { kernels } = await tf.profile(() => bceWithLogits(x, y).dispose());
    // (The op itself is an unnamed scope around them.)
    expect(kernels.map((k) => k.name).filter(Boolean).sort()).toEqual(['LabElementwise', 'Sigmoid']);
    tf.dispose([x, y]);
  });

  it('says which shapes it was given when x and y differ', () => {
    expect(() => bceWithLogits(tf.zeros([2, 3]), tf.zeros([3, 2]))).toThrow('[2,3] and [3,2]');
  });
});
