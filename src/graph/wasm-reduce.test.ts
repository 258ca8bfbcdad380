import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { beforeAll, describe, expect, it } from 'vitest';
import { stockWasmKernel } from './wasm-kernels';
import { reduceOnHeap, reduceWithoutTransposeOnWasm, reductionBlock, sumBlock } from './wasm-reduce';

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
  it('finds the reduced block, and leaves innermost or scattered axes to the stock kernel', () => {
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

  it('matches the cpu backend, keeps the stock path for int32 and innermost axes, and leaks nothing', async () => {
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
