/**
 * Joining tensors along a short last axis on wasm. tfjs-wasm's Concat and Pack copy one run of
 * the joined axis per call from JavaScript, which for runs of 16–64 floats costs several times
 * the copy itself: 16 ms to put two [4,105,105,32] stride phases side by side, 6 ms as one
 * leading-axis concat (whole-tensor copies) and one 4-D transpose, XNNPACK's own.
 */
import * as tf from '@tensorflow/tfjs-core';
import { recordingGradients, withLazyGradients } from './tape';

/** Tensors [N,R,C,K] side by side on a new fourth axis: [N,R,C,s,K] (tf.stack(parts, 3)). */
export function sideBySide(parts: tf.Tensor4D[]): tf.Tensor {
  const [n, r, c, k] = parts[0]!.shape;
  const rows = n * r * c;
  // In a tidy so the concat in between is freed at once.
  return tf.tidy(() => tf.transpose(tf.concat(parts.map((p) => p.reshape([1, rows, k, 1]))), [1, 0, 2, 3]).reshape([n, r, c, parts.length, k]));
}

/**
 * tf.concat, except that equal float tensors joined along a last axis of fewer than 128 (channel
 * concats of two branches) go side by side on wasm. On the tape it is one op whose gradient is
 * the inverse transpose and whole-tensor slices, so no intermediate is kept for backprop.
 */
export function concat(parts: tf.Tensor[], axis: number): tf.Tensor {
  const first = parts[0]!;
  const last = first.rank - 1;
  const sideways =
    tf.getBackend() === 'wasm' &&
    parts.length > 1 &&
    first.rank >= 2 &&
    (axis === last || axis === -1) &&
    first.shape[last]! < 128 &&
    parts.every((p) => p.dtype === 'float32' && p.shape.every((d, i) => d === first.shape[i]));
  if (!sideways) return tf.concat(parts, axis);
  const k = first.shape[last]!;
  const rows = first.size / k;
  const outShape = [...first.shape.slice(0, last), parts.length * k];
  const forward = () => tf.tidy(() => sideBySide(parts.map((p) => p.reshape([1, 1, rows, k]) as tf.Tensor4D)).reshape(outShape));
  if (!recordingGradients()) return forward();
  return withLazyGradients(parts, forward, (dy) => {
    // Once for all parts, here rather than in each part's gradient: tfjs runs each of those in a
    // tidy of its own, which would free what they shared. These live until backprop ends.
    const pieces = tf.tidy(() => tf.split(tf.transpose(dy.reshape([rows, parts.length, k, 1]), [1, 0, 2, 3]), parts.length, 0));
    return parts.map((p, i) => () => pieces[i]!.reshape(p.shape));
  });
}
