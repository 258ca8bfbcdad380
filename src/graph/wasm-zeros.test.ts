import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { describe, expect, it } from 'vitest';
import { zerosOnHeapOnWasm } from './wasm-zeros';

describe('ZerosLike on wasm', () => {
  it('zeroes float32 and int32 outputs of any size over memory that held other values, and keeps bool', async () => {
    await tf.setBackend('wasm');
    zerosOnHeapOnWasm();
    for (const size of [1, 3, 4, 7, 1029]) {
      for (const dtype of ['float32', 'int32'] as const) {
        // Freed memory full of other values is what a new output is likely to get.
        tf.dispose(tf.fill([size], 7, dtype));
        const x = tf.fill([size], -3, dtype);
        const z = tf.zerosLike(x);
        expect(z.dtype).toBe(dtype);
        expect(z.shape).toEqual([size]);
        expect(Array.from(z.dataSync()).every((v) => Object.is(v, 0))).toBe(true);
        tf.dispose([x, z]);
      }
    }
    const b = tf.zerosLike(tf.tensor1d([true, false, true], 'bool'));
    expect(Array.from(b.dataSync())).toEqual([0, 0, 0]);
    expect(b.dtype).toBe('bool');
    b.dispose();
    await tf.setBackend('cpu');
  });
});
