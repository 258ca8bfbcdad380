import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { describe, expect, it } from 'vitest';
import { repeatEachModule, tileByCopiesOnWasm } from './wasm-tile';

const CASES: [number[], number[]][] = [
  [[], []], [[3], [1]], [[3], [4]], [[1], [5]], [[2, 3], [1, 1]], [[2, 3], [3, 2]], [[2, 1], [1, 64]], [[1, 1, 1, 1], [2, 40, 40, 128]],
  [[2, 40, 40, 1], [1, 1, 1, 128]], [[2, 1, 1, 128], [1, 40, 40, 1]], [[5, 4, 1], [1, 1, 11]], [[6, 2, 3], [1, 2, 1]], [[2, 3, 4], [2, 1, 1]], [[3, 2, 2], [1, 1, 3]], [[3, 1, 5], [2, 4, 3]], [[2, 3, 1, 2, 1], [2, 1, 3, 2, 5]], [[4, 0], [2, 3]], [[2, 3], [0, 1]],
];

async function tiled(backend: string, shape: number[], reps: number[], dtype: 'float32' | 'int32' | 'bool') {
  await tf.setBackend(backend);
  if (backend === 'wasm') tileByCopiesOnWasm();
  const n = shape.reduce((a, b) => a * b, 1);
  const x = tf.tensor(Array.from({ length: n }, (_, i) => (dtype === 'bool' ? Number(i % 3 === 0) : i * 1.5 - 7)), shape, dtype);
  const before = tf.memory().numTensors;
  const y = tf.tile(x, reps);
  expect(tf.memory().numTensors).toBe(before + 1);
  const out = { shape: y.shape, dtype: y.dtype, values: Array.from(y.dataSync() as ArrayLike<number>) };
  tf.dispose([x, y]);
  return out;
}

describe('Tile on wasm by copies', () => {
  it('matches the cpu backend for every rank, repeated and single axes, empty tensors and every dtype', async () => {
    for (const [shape, reps] of CASES) {
      for (const dtype of ['float32', 'int32', 'bool'] as const) {
        const want = await tiled('cpu', shape, reps, dtype);
        const got = await tiled('wasm', shape, reps, dtype);
        expect(got, `${dtype} [${shape}] × [${reps}]`).toEqual(want);
      }
    }
    await tf.setBackend('cpu');
  });

  it('writes each value a number of times in a row (repeatEach), on a shared and an unshared memory', () => {
    for (const shared of [false, true]) {
      expect(WebAssembly.validate(repeatEachModule(shared))).toBe(true);
      const memory = new WebAssembly.Memory(shared ? { initial: 1, maximum: 2, shared: true } : { initial: 1 });
      const repeat = new WebAssembly.Instance(new WebAssembly.Module(repeatEachModule(shared)), { env: { memory } }).exports['repeatEach'] as (...a: number[]) => void;
      const ints = new Int32Array(memory.buffer);
      ints.set([7, -1, 9], 0);
      repeat(400, 0, 3, 2);
      expect(Array.from(ints.subarray(100, 107))).toEqual([7, 7, -1, -1, 9, 9, 0]);
      repeat(800, 0, 0, 5);
      expect(ints[200]).toBe(0);
    }
  });

  it('is what tf.broadcastTo and tf.where broadcast with', async () => {
    await tf.setBackend('wasm');
    tileByCopiesOnWasm();
    const b = tf.broadcastTo(tf.tensor2d([[1], [2]]), [2, 3]);
    expect(Array.from(b.dataSync())).toEqual([1, 1, 1, 2, 2, 2]);
    const w = tf.where(tf.tensor1d([true, false, true], 'bool'), tf.scalar(5) as tf.Tensor, tf.tensor2d([[1, 2, 3], [4, 5, 6]]) as tf.Tensor);
    expect(Array.from(w.dataSync())).toEqual([5, 2, 5, 5, 5, 5]);
    tf.dispose([b, w]);
    await tf.setBackend('cpu');
  });
});
