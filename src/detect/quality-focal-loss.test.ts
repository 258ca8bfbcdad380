import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { describe, expect, it } from 'vitest';
import { qualityFocalLoss } from './gfl-loss';
import { qualityFocalLossSum } from './quality-focal-loss';

/** QFL (beta 2) of one element in float64: softplus written as max(x, 0) + log1p(e^−|x|). */
function qfl64(x: number, y: number): number {
  const sigma = 1 / (1 + Math.exp(-x));
  const softplus = Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
  return (softplus - x * y) * (sigma - y) ** 2;
}

/** Its derivative in x by a central difference in float64 (independent of the closed form). */
function qflDerivative64(x: number, y: number): number {
  const h = 1e-5 * Math.max(1, Math.abs(x));
  return (qfl64(x + h, y) - qfl64(x - h, y)) / (2 * h);
}

// Logits from far negative to far positive (where 1 − σ rounds to 0 in float32), targets from the
// background's 0 to a perfect box's 1; every pair, so each target meets each logit.
const LOGITS = [-30, -12, -4, -1.5, -0.3, 0, 0.2, 1, 2.5, 6, 11, 25];
const TARGETS = [0, 0.05, 0.4, 0.83, 1];
const xs = TARGETS.flatMap(() => LOGITS);
const ys = TARGETS.flatMap((y) => LOGITS.map(() => y));
const shape = [TARGETS.length, LOGITS.length];

async function sumAndGradient(backend: string) {
  await tf.setBackend(backend);
  const x = tf.tensor2d(xs, shape as [number, number]);
  const y = tf.tensor2d(ys, shape as [number, number]);
  const before = tf.memory().numTensors;
  // The derivative of the sum in each element is that element's own derivative.
  const g = tf.grad((t: tf.Tensor) => qualityFocalLossSum(t, y))(x);
  const sum = tf.tidy(() => qualityFocalLossSum(x, y));
  const out = { sum: sum.dataSync()[0]!, gradient: Array.from(g.dataSync()) };
  tf.dispose([sum, g]);
  const leaked = tf.memory().numTensors - before;
  tf.dispose([x, y]);
  return { ...out, leaked };
}

describe('qualityFocalLossSum', () => {
  const reference = xs.reduce((s, x, i) => s + qfl64(x, ys[i]!), 0);

  for (const backend of ['cpu', 'wasm']) {
    it(`on ${backend}: the float64 sum and derivatives, from far negative to far positive logits; no tensor left`, async () => {
      const { sum, gradient, leaked } = await sumAndGradient(backend);
      expect(Math.abs(sum - reference)).toBeLessThan(1e-6 * reference);
      gradient.forEach((d, i) => {
        const want = qflDerivative64(xs[i]!, ys[i]!);
        expect(Math.abs(d - want)).toBeLessThan(2e-6 + 1e-5 * Math.abs(want));
      });
      expect(leaked).toBe(0);
    });
  }

  it('on wasm runs as the Sigmoid kernel and one fused loop (no Softplus), with the elementwise QFL\'s values', async () => {
    await tf.setBackend('wasm');
    const x = tf.tensor2d(xs, shape as [number, number]);
    const y = tf.tensor2d(ys, shape as [number, number]);
    const profile = await tf.profile(() => tf.tidy(() => qualityFocalLossSum(x, y)));
    expect(profile.kernelNames).toContain('LabElementwise');
    expect(profile.kernelNames).not.toContain('Softplus');
    const fused = tf.tidy(() => qualityFocalLossSum(x, y).dataSync()[0]!);
    const elementwise = tf.tidy(() => tf.sum(qualityFocalLoss(x, y)).dataSync()[0]!);
    expect(Math.abs(fused - elementwise)).toBeLessThan(1e-6 * elementwise);
    tf.dispose([x, y]);
  });

  it('refuses logits and targets of different shapes', () => {
    const x = tf.zeros([2, 3]);
    const y = tf.zeros([3, 2]);
    expect(() => qualityFocalLossSum(x, y)).toThrow('qualityFocalLossSum needs float32 logits and targets of one shape, got [2,3] and [3,2].');
    tf.dispose([x, y]);
  });
});
