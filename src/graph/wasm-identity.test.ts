import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { describe, expect, it } from 'vitest';
import { shareDataInWasmIdentity } from './wasm-identity';

describe('Identity (and a Cast to the same dtype) on wasm shares its input’s data', () => {
  it('clones without a copy, frees only when both are gone, and keeps gradients exact', async () => {
    await tf.setBackend('wasm');
    shareDataInWasmIdentity();
    const backend = tf.backend() as unknown as { numDataIds(): number };
    const x = tf.tensor2d([[1, -2], [3, 4]]);
    const ids = backend.numDataIds();
    const y = x.clone();
    expect(backend.numDataIds()).toBe(ids); // no new buffer
    x.dispose();
    expect(Array.from(await y.data())).toEqual([1, -2, 3, 4]); // still alive through y
    y.dispose();
    expect(backend.numDataIds()).toBe(ids - 1);

    // The engine clones what a gradient saves: d/da sum(a² · b) = 2ab, d/db = a².
    const a = tf.tensor1d([1.5, -2]);
    const b = tf.tensor1d([3, 0.5]);
    const before = tf.memory().numTensors;
    const [ga, gb] = tf.grads((p: tf.Tensor, q: tf.Tensor) => tf.sum(tf.mul(tf.square(p), q)))([a, b]);
    expect(Array.from(await ga!.data())).toEqual([9, -2]);
    expect(Array.from(await gb!.data())).toEqual([2.25, 4]);
    tf.dispose([ga!, gb!]);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([a, b]);
  });

  it('casts to the dtype a tensor has without a copy, converts between dtypes, and to bool gives 0 or 1', async () => {
    await tf.setBackend('wasm');
    shareDataInWasmIdentity();
    const backend = tf.backend() as unknown as { numDataIds(): number };
    const x = tf.tensor1d([1.75, -2.5, 0]);
    const ids = backend.numDataIds();
    const same = tf.cast(x, 'float32');
    expect(backend.numDataIds()).toBe(ids);
    x.dispose();
    expect(Array.from(await same.data())).toEqual([1.75, -2.5, 0]);
    const ints = tf.cast(same, 'int32');
    expect(backend.numDataIds()).toBe(ids + 1);
    expect(ints.dtype).toBe('int32');
    expect(Array.from(await ints.data())).toEqual([1, -2, 0]);
    // To bool: 1 for any value that is not zero (the stock kernel copied the numbers).
    const flags = tf.cast(tf.tensor1d([0, 3, -1], 'int32'), 'bool');
    expect(Array.from(await flags.data())).toEqual([0, 1, 1]);
    const fromFloat = tf.cast(tf.tensor1d([0, 0.25, NaN, -0]), 'bool');
    expect(Array.from(await fromFloat.data())).toEqual([0, 1, 1, 0]);
    fromFloat.dispose();
    tf.dispose([same, ints, flags]);
  });

  it('leaves string tensors to the stock kernel', async () => {
    await tf.setBackend('wasm');
    shareDataInWasmIdentity();
    const s = tf.tensor1d(['a', 'bc'], 'string');
    const c = s.clone();
    expect(await c.data()).toEqual(['a', 'bc']);
    tf.dispose([s, c]);
  });
});
