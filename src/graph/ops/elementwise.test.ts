import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { describe, expect, it } from 'vitest';
import { elementwiseOps } from './elementwise';

const ctx = { node: { name: 'd', op: 'DivNoNan' }, values: () => [] };
const divNoNan = (a: tf.Tensor, b: tf.Tensor) => elementwiseOps.DivNoNan!.kernel([a, b], ctx) as tf.Tensor;

describe('DivNoNan', () => {
  it('a / b with 0 where b = 0, and finite gradients in both inputs (tf.divNoNan has none in b)', async () => {
    await tf.setBackend('wasm');
    const a = tf.tensor1d([1, 2, 3]);
    const b = tf.tensor1d([2, 0, -1]);
    expect(Array.from(divNoNan(a, b).dataSync())).toEqual([0.5, 0, -3]);
    const [da, db] = tf.grads((x: tf.Tensor, y: tf.Tensor) => divNoNan(x, y).sum())([a, b]);
    // d/da = 1/b and d/db = −a/b², both 0 where b = 0.
    expect(Array.from(da!.dataSync())).toEqual([0.5, 0, -1]);
    expect(Array.from(db!.dataSync())).toEqual([-0.25, 0, -3]);
    expect(() => tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.divNoNan(x, y).sum())([a, b])).toThrow(/gradient function not found for Equal/);
    tf.dispose([a, b, da!, db!]);
  });
});
