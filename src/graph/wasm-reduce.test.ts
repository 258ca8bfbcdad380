import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { beforeAll, describe, expect, it } from 'vitest';
import { stockWasmKernel } from './wasm-kernels';
import { innermostRows, reduceOnHeap, reduceWithoutTransposeOnWasm, reductionBlock, sumBlock } from './wasm-reduce';

beforeAll(async () => {
  await tf.setBackend('wasm');
  reduceWithoutTransposeOnWasm();
});

/** The stock wasm kernel's result (it transposes the reduced axes last, then sums rows). */
function stock(kind: 'Sum' | 'Mean', x: tf.Tensor, axis: number[], keepDims = false): tf.Tensor {
  const info = stockWasmKernel(kind)!({ inputs: { x }, attrs: { axis, keepDims }, backend: tf.backend() }) as tf.TensorInfo;
  return tf.engine().makeTensorFromTensorInfo(info);
}

describe('Sum and Mean over leading axes on wasm, without the transpose', () => {
  it('finds the reduced block (innermost axes are rows, below; scattered ones stay with the stock kernel)', () => {
    expect(reductionBlock([2, 4, 4, 8], [0, 1, 2])).toEqual({ outer: 1, reduced: 32, inner: 8 });
    expect(reductionBlock([2, 4, 4, 8], [1, 2])).toEqual({ outer: 2, reduced: 16, inner: 8 });
    expect(reductionBlock([2, 4, 4, 8], [3])).toBeNull();
    expect(reductionBlock([2, 4, 4, 1], [1, 2])).toBeNull(); // only a size-1 axis after: rows end to end
    expect(reductionBlock([2, 4, 4, 8], [0, 2])).toBeNull();
    const out = new Float32Array(2 * 2);
    // [2,3,2]: sums over the middle axis, by hand.
    sumBlock(Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]), { outer: 2, reduced: 3, inner: 2 }, out);
    expect([...out]).toEqual([9, 12, 27, 30]);
  });

  it('gives the stock kernel’s values bit for bit, keepDims and negative axes included', async () => {
    const x = tf.randomNormal([3, 17, 9, 40], 0, 3, 'float32', 5);
    for (const [axis, keepDims] of [[[0, 1, 2], false], [[1, 2], true], [[0], false], [[1], false], [[-3, -2], false], [[0, 1], true]] as [number[], boolean][]) {
      for (const kind of ['Sum', 'Mean'] as const) {
        const args = { inputs: { x }, attrs: { axis, keepDims }, backend: tf.backend() } as unknown as Parameters<tf.KernelFunc>[0];
        const info = reduceOnHeap(kind, x, args);
        expect(info, `${kind} ${axis} runs on the heap`).not.toBeNull();
        const ours = tf.engine().makeTensorFromTensorInfo(info!);
        const theirs = stock(kind, x, axis, keepDims);
        // And the registered kernel is this one.
        const registered = kind === 'Sum' ? tf.sum(x, axis, keepDims) : tf.mean(x, axis, keepDims);
        expect([...(await registered.data())]).toEqual([...(await ours.data())]);
        registered.dispose();
        expect(ours.shape, `${kind} ${axis}`).toEqual(theirs.shape);
        expect([...(await ours.data())], `${kind} ${axis}`).toEqual([...(await theirs.data())]);
        tf.dispose([ours, theirs]);
      }
    }
    x.dispose();
  });

  it('matches the cpu backend, keeps the stock path for int32, and leaks nothing', async () => {
    const values = Array.from({ length: 2 * 5 * 3 * 4 }, (_, i) => ((i * 37) % 23) - 11);
    const run = () =>
      tf.tidy(() => {
        const x = tf.tensor4d(values, [2, 5, 3, 4]);
        return [tf.sum(x, [0, 1, 2]), tf.mean(x, [1, 2]), tf.sum(x, 3), tf.sum(tf.cast(x, 'int32'), [0, 1])].map((t) => [...t.shape, ...t.dataSync()]);
      });
    const before = tf.memory().numTensors;
    const wasm = run();
    expect(tf.memory().numTensors).toBe(before);
    await tf.setBackend('cpu');
    const cpu = run();
    await tf.setBackend('wasm');
    for (const [i, w] of wasm.entries()) w.forEach((v, j) => expect(v).toBeCloseTo(cpu[i]![j]!, 4));
    // Per channel over the batch and positions, by hand for channel 0.
    const channel0 = values.filter((_, i) => i % 4 === 0).reduce((a, b) => a + b, 0);
    expect(wasm[0]![1]).toBe(channel0);
  });

  it('keeps the gradients: a mean over positions differentiates to 1 / count everywhere', () => {
    const x = tf.randomNormal([2, 3, 3, 4]);
    const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.mean(t, [1, 2]), tf.tensor1d([1, 2, 3, 4]))))(x);
    const expected = tf.tile(tf.tensor1d([1, 2, 3, 4]).div(9).reshape([1, 1, 1, 4]), [2, 3, 3, 1]);
    expect(tf.max(tf.abs(tf.sub(g, expected))).dataSync()[0]).toBeLessThan(1e-7);
    tf.dispose([x, g, expected]);
  });
});

/** Row sums as the SIMD loop adds them, in float32: lanes of running sums, (a0 + a2) + (a1 + a3), then the tail in order. */
function rowSum32(row: Float32Array): number {
  const f = Math.fround;
  const quads = row.length >> 2;
  const lanes = [0, 0, 0, 0];
  for (let q = 0; q < quads; q++) for (let l = 0; l < 4; l++) lanes[l] = f(lanes[l]! + row[4 * q + l]!);
  let s = f(f(lanes[0]! + lanes[2]!) + f(lanes[1]! + lanes[3]!));
  for (let i = 4 * quads; i < row.length; i++) s = f(s + row[i]!);
  return s;
}

describe('Sum and Mean over innermost axes on wasm, four lanes at a time', () => {
  it('takes the trailing axes (and size-1 axes after them) as rows', () => {
    expect(innermostRows([2, 4, 4, 8], [3])).toEqual({ rows: 32, len: 8 });
    expect(innermostRows([2, 4, 4, 8], [-2, -1].map((a) => a + 4))).toEqual({ rows: 8, len: 32 });
    expect(innermostRows([2, 4, 4, 1], [1, 2])).toEqual({ rows: 2, len: 16 });
    expect(innermostRows([2, 4, 4, 8], [1, 2])).toBeNull();
    expect(innermostRows([2, 4, 4, 8], [0, 3])).toBeNull();
  });

  it('adds each row in the loop\'s order, bit for bit, for every tail length, and Mean divides once', async () => {
    for (const len of [1, 2, 3, 4, 5, 7, 8, 13, 20, 128, 1001]) {
      const rows = 6;
      const values = Float32Array.from({ length: rows * len }, (_, i) => Math.sin(i * 0.731) * 10 ** ((i % 5) - 2));
      const x = tf.tensor2d(values, [rows, len]);
      const [sum, mean] = [tf.sum(x, 1), tf.mean(x, -1, true)];
      const want = Array.from({ length: rows }, (_, r) => rowSum32(values.subarray(r * len, (r + 1) * len)));
      expect([...(await sum.data())], `sum, rows of ${len}`).toEqual(want);
      expect(mean.shape).toEqual([rows, 1]);
      expect([...(await mean.data())], `mean, rows of ${len}`).toEqual(want.map((s) => Math.fround(s / len)));
      // Within float32 rounding of the float64 sums (a different order than the stock kernel's).
      for (let r = 0; r < rows; r++) {
        const row = values.subarray(r * len, (r + 1) * len);
        const exact = row.reduce((a, b) => a + b, 0);
        const size = row.reduce((a, b) => a + Math.abs(b), 0);
        expect(Math.abs(want[r]! - exact)).toBeLessThanOrEqual(1e-6 * size);
      }
      tf.dispose([x, sum, mean]);
    }
  });
});
