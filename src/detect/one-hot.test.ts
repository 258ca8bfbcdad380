import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { describe, expect, it } from 'vitest';
import { oneHotColumns, oneHotRows } from './one-hot';

describe('oneHotRows', () => {
  it('puts a 1 at each row index and leaves rows of −1 or out of range empty', () => {
    const mask = oneHotRows(new Int32Array([2, -1, 0, 3]), 3);
    expect(mask.shape).toEqual([4, 3]);
    expect(mask.dtype).toBe('float32');
    expect(Array.from(mask.dataSync())).toEqual([0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0]);
    mask.dispose();
  });

  it('matches the device comparison it replaces', () => {
    const index = new Int32Array([4, 0, -1, 1, 4, 2]);
    const reference = tf.tidy(() => tf.cast(tf.equal(tf.tensor2d(index, [6, 1], 'int32'), tf.reshape(tf.range(0, 5, 1, 'int32'), [1, 5])), 'float32'));
    const mask = oneHotRows(index, 5);
    expect(Array.from(mask.dataSync())).toEqual(Array.from(reference.dataSync()));
    tf.dispose([mask, reference]);
  });
});

describe('oneHotColumns', () => {
  it('is the transpose of oneHotRows: the device comparison of a range column with an index row', () => {
    const index = new Int32Array([1, -1, 0, 2, 1, 7]);
    const reference = tf.tidy(() => tf.cast(tf.equal(tf.tensor2d(index, [1, 6], 'int32'), tf.reshape(tf.range(0, 3, 1, 'int32'), [3, 1])), 'float32'));
    const mask = oneHotColumns(index, 3);
    expect(mask.shape).toEqual([3, 6]);
    expect(Array.from(mask.dataSync())).toEqual([0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0]);
    expect(Array.from(mask.dataSync())).toEqual(Array.from(reference.dataSync()));
    tf.dispose([mask, reference]);
  });
});
