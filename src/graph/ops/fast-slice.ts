/**
 * Slices that copy whole rows. tfjs-backend-wasm 4.22 slices a rank-4 tensor one innermost row at
 * a time from JavaScript (for NHWC, one pixel's channels per copy) and has no fast strided slice;
 * merging every fully taken axis into the one before it gives the same values with one copy per
 * row of H (an [N,H,W,C] window: [N,H,W·C] with a column offset), several times faster.
 */
import * as tf from '@tensorflow/tfjs-core';

/** tf.slice(x, begin, size) with fully taken trailing axes merged into the axis before them. */
export function sliceRows<T extends tf.Tensor>(x: T, begin: readonly number[], size: readonly number[]): T {
  const shape = x.shape;
  const sz = size.map((s, i) => (s < 0 ? shape[i]! - begin[i]! : s));
  if (sz.every((s, i) => s === shape[i])) return x.clone();
  const mShape: number[] = [];
  const mBegin: number[] = [];
  const mSize: number[] = [];
  for (let i = 0; i < shape.length; i++) {
    const full = begin[i] === 0 && sz[i] === shape[i];
    if (full && mShape.length > 0) {
      const j = mShape.length - 1;
      mShape[j]! *= shape[i]!;
      mBegin[j]! *= shape[i]!;
      mSize[j]! *= shape[i]!;
    } else {
      mShape.push(shape[i]!);
      mBegin.push(begin[i]!);
      mSize.push(sz[i]!);
    }
  }
  return tf.slice(x.reshape(mShape), mBegin, mSize).reshape(sz) as T;
}
