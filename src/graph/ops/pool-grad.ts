/**
 * Max pooling whose gradient is written with forward ops only. tfjs-backend-wasm 4.22's
 * MaxPoolGrad kernel returns wrong values for many shapes (e.g. [1,9,9,32], 3x3 stride 2), and
 * its MaxPoolWithArgmax too, so on wasm the executor routes the gradient through here. Like
 * TensorFlow, each window's gradient goes to its first maximum (row-major), even when several
 * elements tie. Shapes: x [N,H,W,C], explicit pads [top, bottom, left, right] filled with −Infinity.
 *
 * The element every window reads at tap (ky, kx) is a one-tap depthwise convolution of the
 * padded input (strided on the backend; tfjs-wasm's StridedSlice is slow); the gradient it takes
 * goes back spread by the stride and padded into place. For the taps, ±Infinity (in the padding,
 * or in the input where the graph padded it so) becomes the largest finite float, since 0·∞ is
 * NaN in the convolution.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Pads } from './conv-grad';
import { sliceRows } from './fast-slice';
import { withLazyGradients } from './tape';

type Pair = [number, number];
const LOWEST = -3.4028234663852886e38;

export function maxPoolForwardGrad(x: tf.Tensor4D, ksize: Pair, strides: Pair, pads: Pads): tf.Tensor4D {
  return withLazyGradients(
    [x],
    (save) => {
      const xp = tf.pad(x, [[0, 0], [pads[0], pads[1]], [pads[2], pads[3]], [0, 0]], -Infinity);
      const value = tf.maxPool(xp, ksize, strides, 'valid');
      save([x, value]);
      return value;
    },
    (dy, [sx, y]) => [() => maxPoolGrad(sx as tf.Tensor4D, y as tf.Tensor4D, dy as tf.Tensor4D, ksize, strides, pads)],
  ) as tf.Tensor4D;
}

function maxPoolGrad(x: tf.Tensor4D, y: tf.Tensor4D, dy: tf.Tensor4D, [kh, kw]: Pair, [sh, sw]: Pair, pads: Pads): tf.Tensor4D {
  const [n, h, w, c] = x.shape;
  const [, oh, ow] = y.shape;
  const hp = h + pads[0] + pads[1];
  const wp = w + pads[2] + pads[3];
  // The frame the spread taps land in: the padded input, or more where the stride overhangs.
  const hx = Math.max(hp, kh - 1 + oh * sh);
  const wx = Math.max(wp, kw - 1 + ow * sw);
  // Infinities become the largest finite floats, in x and in y alike (a graph may pad with
  // −Infinity itself before the pool): a convolution would turn 0·∞ into NaN.
  const xp = tf.pad(tf.clipByValue(x, LOWEST, -LOWEST), [[0, 0], [pads[0], pads[1]], [pads[2], pads[3]], [0, 0]], LOWEST);
  const yc = tf.clipByValue(y, LOWEST, -LOWEST);
  const zeros = tf.zerosLike(dy);
  let remaining: tf.Tensor = dy;
  let dxp: tf.Tensor | undefined;
  for (let ky = 0; ky < kh; ky++) {
    for (let kx = 0; kx < kw; kx++) {
      const tap = new Float32Array(kh * kw * c);
      tap.fill(1, (ky * kw + kx) * c, (ky * kw + kx + 1) * c);
      const seen = tf.depthwiseConv2d(xp, tf.tensor4d(tap, [kh, kw, c, 1]), [sh, sw], 'valid');
      // The gradient this tap takes where it is the window's first maximum (what an earlier tap
      // took is no longer remaining).
      const first = tf.equal(seen, yc);
      const part = tf.where(first, remaining, zeros);
      remaining = tf.where(first, zeros, remaining);
      const spread = sh === 1 && sw === 1
        ? part
        : tf.pad(part.reshape([n, oh, 1, ow, 1, c]), [[0, 0], [0, 0], [0, sh - 1], [0, 0], [0, sw - 1], [0, 0]]).reshape([n, oh * sh, ow * sw, c]);
      const placed = tf.pad(spread, [[0, 0], [ky, hx - ky - spread.shape[1]!], [kx, wx - kx - spread.shape[2]!], [0, 0]]);
      dxp = dxp ? tf.add(dxp, placed) : placed;
    }
  }
  return sliceRows(dxp as tf.Tensor4D, [0, pads[0], pads[2], 0], [n, h, w, c]);
}
