/**
 * y + bias along the last axis, whose bias gradient is dy summed per channel by channelSums.
 * tfjs's Add gradient reduces dy over its leading axes with Sum, which tfjs-wasm does by
 * transposing the whole tensor first: 34 ms for NanoDet-g's first bias at batch 4
 * ([4,208,208,32]), against 3 ms for the average pool below. Off the tape, the stock add.
 */
import * as tf from '@tensorflow/tfjs-core';
import { recordingGradients, withLazyGradients } from './tape';

/**
 * Per-channel sums of x over every axis but the last ([..., C] → [C]). On wasm, an average pool
 * over the whole tensor viewed as one NHWC image, times the count: XNNPACK pools along the
 * channels-last layout without the transpose its Sum needs (10x faster at [4,208,208,32], and as
 * close to a float64 sum as Sum is). Elsewhere Sum, a proper reduction on the GPU backends, where
 * one pooling thread per channel would walk the whole tensor.
 */
export function channelSums(x: tf.Tensor): tf.Tensor1D {
  const channels = x.shape[x.rank - 1]!;
  const rows = x.size / channels;
  if (tf.getBackend() !== 'wasm' || x.rank < 2 || rows === 0) return tf.sum(tf.reshape(x, [-1, channels]), 0);
  // Rows as an image of height × width: the tensor's own last spatial axis as the width keeps the window near square.
  const width = x.rank >= 3 ? x.shape[x.rank - 2]! : 1;
  const height = rows / width;
  return tf.tidy(() => tf.mul(tf.avgPool(tf.reshape(x, [1, height, width, channels]) as tf.Tensor4D, [height, width], [height, width], 'valid'), rows).reshape([channels]));
}

/** True when `bias` broadcasts along y's last axis only: shape [C], [1,C], [1,1,1,C], ... */
function isBiasOf(bias: tf.Tensor, y: tf.Tensor): boolean {
  const channels = y.shape[y.rank - 1];
  return y.rank >= 2 && bias.rank >= 1 && bias.rank <= y.rank && bias.shape[bias.rank - 1] === channels && bias.size === channels && bias.dtype === 'float32' && y.dtype === 'float32';
}

export function biasAdd(y: tf.Tensor, bias: tf.Tensor): tf.Tensor {
  if (!recordingGradients() || !isBiasOf(bias, y)) return tf.add(y, bias);
  return withLazyGradients(
    [y, bias],
    () => tf.add(y, bias),
    (dy) => [() => tf.reshape(dy, y.shape), () => tf.reshape(channelSums(dy), bias.shape)],
  );
}

/** a + b for the graph's Add ops: a bias (either operand) takes biasAdd, anything else tf.add. */
export function add(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  if (a.rank > b.rank || (a.rank === b.rank && a.size > b.size)) return biasAdd(a, b);
  if (b.rank > a.rank || b.size > a.size) return biasAdd(b, a);
  return tf.add(a, b);
}
