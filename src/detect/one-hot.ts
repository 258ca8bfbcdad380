import * as tf from '@tensorflow/tfjs-core';

/**
 * [R, depth] 0/1 float mask with a 1 at column index[r] (a row of zeros where index[r] is −1 or
 * out of range). A constant, written on the host: comparing an index column with a range row on
 * the device (tf.equal, then a cast) costs a broadcast kernel over R·depth values, about 0.1 s
 * per call on wasm for the 14,196 × 80 rows of a batch-4 GFL loss.
 */
export function oneHotRows(index: Int32Array, depth: number): tf.Tensor2D {
  const values = new Float32Array(index.length * depth);
  for (let r = 0; r < index.length; r++) {
    const k = index[r]!;
    if (k >= 0 && k < depth) values[r * depth + k] = 1;
  }
  return tf.tensor2d(values, [index.length, depth]);
}

/** The transpose of `oneHotRows`: [depth, R], column r holding a 1 at row index[r]. Written on the host too. */
export function oneHotColumns(index: Int32Array, depth: number): tf.Tensor2D {
  const rows = index.length;
  const values = new Float32Array(depth * rows);
  for (let r = 0; r < rows; r++) {
    const k = index[r]!;
    if (k >= 0 && k < depth) values[k * rows + r] = 1;
  }
  return tf.tensor2d(values, [depth, rows]);
}
