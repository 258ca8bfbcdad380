/**
 * Gathers with a gradient on every backend. tfjs's GatherNd has no gradient, and tf.gather's
 * needs UnsortedSegmentSum, which the wasm backend lacks: here the gathered slices' gradients are
 * scattered back (summed where an index repeats) with ScatterNd.
 */
import * as tf from '@tensorflow/tfjs-core';

/** tf.gatherND whose gradient reaches `x` (the int32 indices get none). */
export function gatherNd(x: tf.Tensor, indices: tf.Tensor): tf.Tensor {
  const shape = [...x.shape];
  const f = tf.customGrad(((xi: tf.Tensor, save: tf.GradSaveFunc) => {
    save([indices]); // kept for backprop: the caller's handle is freed with its scope
    return { value: tf.gatherND(xi, indices), gradFunc: (dy: tf.Tensor, [saved]: tf.Tensor[]) => tf.scatterND(saved!, dy, shape) };
  }) as unknown as Parameters<typeof tf.customGrad<tf.Tensor>>[0]);
  return f(x);
}

/** Rows of a [R, C] tensor picked by index (repeats allowed), with `gatherNd`'s gradient. */
export function gatherRows(x: tf.Tensor2D, rows: Int32Array): tf.Tensor2D {
  const [r, c] = x.shape;
  for (const i of rows) {
    if (!(i >= 0 && i < r)) throw new Error(`gatherRows: row ${i} is outside a [${r},${c}] tensor.`);
  }
  const indices = tf.tensor2d(rows, [rows.length, 1], 'int32');
  try {
    return gatherNd(x, indices) as tf.Tensor2D;
  } finally {
    indices.dispose();
  }
}
