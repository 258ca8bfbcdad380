/**
 * StridedSlice from slice, reverse, pad and reshape, so that it has a gradient (tfjs 4.22 has
 * none: "gradient function not found for StridedSlice") whose backward pass scatters dy into
 * zeros of the input's shape at the positions read, on every backend (wasm lacks the scatter
 * kernels). tfjs's own `sliceInfo` resolves the masks (begin, end, ellipsis, new axis, shrink)
 * into a begin, end and stride per input dimension. Composing the slice also avoids tfjs 4.22's
 * strided kernel, which misreads a shrunk axis next to a stride ≠ 1: x[1, 0:6:2] of a 3x6 range
 * throws on cpu and gives [1, 2, 3] on wasm instead of [6, 8, 10].
 */
import * as tf from '@tensorflow/tfjs-core';

export interface StridedSliceSpec {
  begin: number[];
  end: number[];
  strides: number[];
  beginMask: number;
  endMask: number;
  ellipsisMask: number;
  newAxisMask: number;
  shrinkAxisMask: number;
}

/** `size` entries along `axis` from `start`, other axes whole. */
function sliceAxis(g: tf.Tensor, axis: number, start: number, size: number): tf.Tensor {
  const begin = g.shape.map((_, d) => (d === axis ? start : 0));
  const sizes = g.shape.map((n, d) => (d === axis ? size : n));
  return tf.slice(g, begin, sizes);
}

/** Entries start, start + stride, … (`count` of them; stride may be negative) along `axis`. */
function takeAxis(g: tf.Tensor, axis: number, start: number, stride: number, count: number): tf.Tensor {
  if (count <= 0) return sliceAxis(g, axis, 0, 0);
  const step = Math.abs(stride);
  const span = (count - 1) * step + 1;
  if (step === 1 && stride > 0 && start === 0 && count === g.shape[axis]) return g;
  // The block the slice reads, in the order it reads it.
  let block = sliceAxis(g, axis, stride > 0 ? start : start - (count - 1) * step, span);
  if (stride < 0) block = tf.reverse(block, axis);
  if (step === 1) return block;
  // Every step-th entry: pad to count·step, fold into [count, step] and keep column 0.
  const padded = tf.pad(block, block.shape.map((_, d): [number, number] => (d === axis ? [0, step - 1] : [0, 0])));
  const folded = [...block.shape.slice(0, axis), count, step, ...block.shape.slice(axis + 1)];
  const kept = sliceAxis(padded.reshape(folded), axis + 1, 0, 1);
  return kept.reshape(folded.filter((_, d) => d !== axis + 1));
}

/** tf.stridedSlice with TensorFlow's semantics and a gradient. */
export function stridedSlice(x: tf.Tensor, s: StridedSliceSpec): tf.Tensor {
  const info = tf.slice_util.sliceInfo([...x.shape], s.begin, s.end, s.strides, s.beginMask, s.endMask, s.ellipsisMask, s.newAxisMask, s.shrinkAxisMask);
  const counts = x.shape.map((_, d) => Math.max(0, Math.ceil((info.end[d]! - info.begin[d]!) / info.strides[d]!)));
  let y: tf.Tensor;
  if (info.strides.every((st) => st === 1)) {
    y = tf.slice(x, info.begin, counts); // the common case: one slice
  } else {
    y = x;
    for (let d = 0; d < x.rank; d++) y = takeAxis(y, d, info.begin[d]!, info.strides[d]!, counts[d]!);
  }
  // New axes (size 1) appear and shrunk axes (size 1) disappear.
  return y.reshape(info.finalShape);
}
