/**
 * Rows of a [R, C] tensor picked by index, with a gradient that reaches the picked rows on
 * every backend: tf.gather's own gradient needs UnsortedSegmentSum, which the wasm backend lacks,
 * so the rows' gradients are scattered back (summed where an index repeats) with ScatterNd.
 */
import * as tf from '@tensorflow/tfjs-core';

export function gatherRows(x: tf.Tensor2D, rows: Int32Array): tf.Tensor2D {
  const [r, c] = x.shape;
  for (const i of rows) {
    if (!(i >= 0 && i < r)) throw new Error(`gatherRows: row ${i} is outside a [${r},${c}] tensor.`);
  }
  const indices = tf.tensor2d(rows, [rows.length, 1], 'int32');
  const f = tf.customGrad(((xi: tf.Tensor2D, save: tf.GradSaveFunc) => {
    save([indices]); // save keeps its own handle for backprop; this one is freed below
    return {
      value: tf.gatherND(xi, indices) as tf.Tensor2D,
      gradFunc: (dy: tf.Tensor2D, [saved]: tf.Tensor[]) => tf.scatterND(saved!, dy, [r, c]),
    };
  }) as unknown as Parameters<typeof tf.customGrad<tf.Tensor2D>>[0]);
  try {
    return f(x);
  } finally {
    indices.dispose();
  }
}
