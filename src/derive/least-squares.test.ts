import { describe, expect, it } from 'vitest';
import { MomentAccumulator, choleskyInPlace, choleskySolve, solveRidge } from './least-squares';
import { residual, seededRandom } from './refit';

describe('ridge least squares', () => {
  it('factors a hand-sized matrix: [[4,2],[2,3]] = L Lᵀ with L = [[2,0],[1,√2]]', () => {
    const a = Float64Array.from([4, 2, 2, 3]);
    choleskyInPlace(a, 2);
    expect(a[0]).toBe(2);
    expect(a[2]).toBe(1);
    expect(a[3]).toBeCloseTo(Math.SQRT2, 15);
    // Solve [[4,2],[2,3]] x = [8, 7] → x = [1.25, 1.5].
    const x = choleskySolve(a, 2, Float64Array.from([8, 7]), 1);
    expect(x[0]).toBeCloseTo(1.25, 12);
    expect(x[1]).toBeCloseTo(1.5, 12);
  });

  it('recovers an exact linear map with its intercept, fed in two batches', () => {
    // y = [2 x0 − x1 + 3, x1 + 0.5 x2 − 1] on 40 random rows.
    const random = seededRandom(7);
    const rows = 40;
    const x = Array.from({ length: rows * 3 }, () => random() * 2 - 1);
    const y = Array.from({ length: rows }, (_, r) => [2 * x[r * 3]! - x[r * 3 + 1]! + 3, x[r * 3 + 1]! + 0.5 * x[r * 3 + 2]! - 1]).flat();
    const acc = new MomentAccumulator(3, 2);
    acc.addRows(x.slice(0, 60), y.slice(0, 40));
    acc.addRows(x.slice(60), y.slice(40));
    expect(acc.rows).toBe(40);
    const fit = solveRidge(acc, { ridge: 1e-12 });
    const expected = [2, 0, -1, 1, 0, 0.5];
    fit.weights.forEach((w, i) => expect(w).toBeCloseTo(expected[i]!, 8));
    expect(fit.bias[0]).toBeCloseTo(3, 8);
    expect(fit.bias[1]).toBeCloseTo(-1, 8);
    let sumSq = 0;
    for (const v of y) sumSq += v * v;
    expect(residual(acc, fit, sumSq)).toBeLessThan(1e-10);
  });

  it('the residual from moments equals the direct sum of squared errors', () => {
    const random = seededRandom(3);
    const rows = 25;
    const x = Array.from({ length: rows * 2 }, () => random());
    const y = Array.from({ length: rows }, () => random());
    const acc = new MomentAccumulator(2, 1);
    acc.addRows(x, y);
    const fit = { weights: Float64Array.from([0.3, -0.7]), bias: Float64Array.from([0.1]) };
    let direct = 0;
    let sumSq = 0;
    for (let r = 0; r < rows; r++) {
      const pred = 0.3 * x[r * 2]! - 0.7 * x[r * 2 + 1]! + 0.1;
      direct += (pred - y[r]!) ** 2;
      sumSq += y[r]! ** 2;
    }
    expect(residual(acc, fit, sumSq)).toBeCloseTo(direct, 10);
  });

  it('a ridge shrinks the weights, and a constant column gets weight 0 instead of a singular system', () => {
    const x: number[] = [];
    const y: number[] = [];
    for (let r = 0; r < 10; r++) {
      x.push(r, 5); // second column never varies
      y.push(3 * r);
    }
    const acc = new MomentAccumulator(2, 1);
    acc.addRows(x, y);
    const exact = solveRidge(acc, { ridge: 1e-12 });
    expect(exact.weights[0]).toBeCloseTo(3, 6);
    expect(exact.weights[1]).toBeCloseTo(0, 6);
    const shrunk = solveRidge(acc, { ridge: 1 });
    expect(shrunk.weights[0]).toBeLessThan(2.9);
  });

  it('with a prior, the ridge pulls towards it: (A + λI) w = b + λ w0, by hand', () => {
    const x: number[] = [];
    const y: number[] = [];
    for (let r = 0; r < 10; r++) {
      x.push(r, 5);
      y.push(3 * r);
    }
    const acc = new MomentAccumulator(2, 1);
    acc.addRows(x, y);
    // Centred: var(x0) = 8.25, cov(x0, y) = 24.75, x1 constant; λ = ridge · trace / k = 4.125 at ridge 1.
    const towardZero = solveRidge(acc, { ridge: 1 });
    expect(towardZero.weights[0]).toBeCloseTo(24.75 / 12.375, 10); // 2
    const towardPrior = solveRidge(acc, { ridge: 1, prior: [2, 7] });
    expect(towardPrior.weights[0]).toBeCloseTo((24.75 + 4.125 * 2) / 12.375, 10); // 8/3
    // The constant column carries no information: it keeps its prior weight, and the bias absorbs it.
    expect(towardPrior.weights[1]).toBeCloseTo(7, 10);
    expect(towardPrior.bias[0]).toBeCloseTo(13.5 - 4.5 * (8 / 3) - 5 * 7, 8);
    expect(() => solveRidge(acc, { prior: [1] })).toThrow('The prior has 1 weights; the fit has 2x1.');
  });
});

describe('residual on the backend', () => {
  it('equals the host computation', async () => {
    const tf = await import('@tensorflow/tfjs');
    await import('@tensorflow/tfjs-backend-wasm');
    await tf.setBackend('wasm');
    const { residualOnDevice } = await import('./refit');
    const random = seededRandom(11);
    const x = Array.from({ length: 50 * 4 }, () => random());
    const y = Array.from({ length: 50 * 2 }, () => random());
    const acc = new MomentAccumulator(4, 2);
    acc.addRows(x, y);
    const fit = solveRidge(acc, { ridge: 1e-3 });
    const sumSq = y.reduce((a, v) => a + v * v, 0);
    expect(await residualOnDevice(acc, fit, sumSq)).toBeCloseTo(residual(acc, fit, sumSq), 3);
  });
});

describe('a system float32 cancellation left just short of positive definite', () => {
  it('is solved with a larger ridge instead of failing', () => {
    // Two identical columns and a third whose centred variance came out slightly negative.
    const acc = new MomentAccumulator(3, 1);
    acc.rows = 4;
    const xtx = [4, 4, 0, 4, 4, 0, 0, 0, 4 * 0.25 - 1e-7];
    xtx.forEach((v, i) => (acc.xtx[i] = v));
    acc.sumX.set([0, 0, 2]);
    acc.xty.set([2, 2, 1]);
    acc.sumY.set([1]);
    const fit = solveRidge(acc, { ridge: 1e-12 });
    expect(fit.weights.every(Number.isFinite)).toBe(true);
    // The two identical columns share the weight.
    expect(fit.weights[0]).toBeCloseTo(fit.weights[1]!, 6);
  });
});
