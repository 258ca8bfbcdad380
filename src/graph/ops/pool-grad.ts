/**
 * Max pooling whose gradient is written with forward ops only. tfjs-backend-wasm 4.22's
 * MaxPoolGrad kernel returns wrong values for many shapes (e.g. [1,9,9,32], 3x3 stride 2), and
 * its MaxPoolWithArgmax too, so on wasm the executor routes the gradient through here. Like
 * TensorFlow, each window's gradient goes to its first maximum (row-major), even when several
 * elements tie. Shapes: x [N,H,W,C], explicit pads [top, bottom, left, right] filled with −Infinity.
 *
 * The element every window reads at tap (ky, kx) is a strided slice of the padded input
 * (`tapWindow`, as the convolutions' filter gradients read theirs); the gradient it takes goes back spread by the
 * stride and padded into place. ±Infinity (in the padding, or in the input where the graph padded
 * it so) becomes the largest finite float, so that y − seen is never ∞ − ∞. On wasm, where the
 * channels are a multiple of 4, one SIMD loop does it all (wasm-max-pool-grad.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import { tapWindow, type Pads } from './conv-grad';
import { withLazyGradients } from './tape';
import { sideBySide } from './side-by-side';
import { maxPoolGradientOnWasm } from '../wasm-max-pool-grad';

type Pair = [number, number];
const LOWEST = -3.4028234663852886e38;

export function maxPoolForwardGrad(x: tf.Tensor4D, ksize: Pair, strides: Pair, pads: Pads): tf.Tensor4D {
  return withLazyGradients(
    [x],
    (save) => {
      // Even padding on every side is the pool's own (tfjs pads with −Infinity): no padded copy.
      const even = pads.every((p) => p === pads[0]);
      const value = even ? tf.maxPool(x, ksize, strides, pads[0]) : tf.maxPool(tf.pad(x, [[0, 0], [pads[0], pads[1]], [pads[2], pads[3]], [0, 0]], -Infinity), ksize, strides, 'valid');
      save([x, value]);
      return value;
    },
    (dy, [sx, y]) => [() => maxPoolGrad(sx as tf.Tensor4D, y as tf.Tensor4D, dy as tf.Tensor4D, ksize, strides, pads)],
  ) as tf.Tensor4D;
}

function maxPoolGrad(x: tf.Tensor4D, y: tf.Tensor4D, dy: tf.Tensor4D, [kh, kw]: Pair, [sh, sw]: Pair, pads: Pads): tf.Tensor4D {
  const onWasm = maxPoolGradientOnWasm(x, y, dy, [kh, kw], [sh, sw], [pads[0], pads[2]]);
  if (onWasm) return onWasm;
  const [n, h, w, c] = x.shape;
  const [, oh, ow] = y.shape;
  // The padded frame the taps land in, cut into stride phases: frame row p = o·sh + ky belongs to
  // phase ky mod sh, at phase row o + ⌊ky/sh⌋. Each tap's gradient is placed in its phase (a pad
  // of dy's size) and the phases interleave once at the end, rather than spreading every tap's
  // gradient with zeros to the whole frame.
  const rows = Math.ceil(Math.max(h + pads[0] + pads[1], kh - 1 + oh * sh) / sh);
  const cols = Math.ceil(Math.max(w + pads[2] + pads[3], kw - 1 + ow * sw) / sw);
  // Infinities become the largest finite floats, in x and in y alike (a graph may pad with
  // −Infinity itself before the pool): ∞ − ∞ would be NaN.
  const xp = tf.pad(tf.clipByValue(x, LOWEST, -LOWEST), [[0, 0], [pads[0], pads[1]], [pads[2], pads[3]], [0, 0]], LOWEST);
  const yc = tf.clipByValue(y, LOWEST, -LOWEST);
  const phases: tf.Tensor[][] = Array.from({ length: sh * sw }, () => []);
  let remaining: tf.Tensor = dy;
  for (let ky = 0; ky < kh; ky++) {
    for (let kx = 0; kx < kw; kx++) {
      const last = ky === kh - 1 && kx === kw - 1;
      const seen = tapWindow(xp, ky, kx, [oh, ow], [sh, sw], [1, 1]);
      // The gradient this tap takes where it is the window's first maximum (what an earlier tap
      // took is no longer remaining). seen ≤ y, so step(y − seen) is 0 exactly at a maximum and 1
      // elsewhere: arithmetic kernels, several times cheaper on wasm than Equal and Select.
      let part = remaining;
      if (!last) {
        const kept = tf.mul(remaining, tf.step(tf.sub(yc, seen), 0));
        part = tf.sub(remaining, kept);
        remaining = kept;
      }
      const oy = Math.floor(ky / sh);
      const ox = Math.floor(kx / sw);
      phases[(ky % sh) * sw + (kx % sw)]!.push(tf.pad(part, [[0, 0], [oy, rows - oh - oy], [ox, cols - ow - ox], [0, 0]]));
    }
  }
  const zeros = () => tf.zeros([n, rows, cols, c]);
  const summed = phases.map((taps) => (taps.length === 0 ? zeros() : taps.length === 1 ? taps[0]! : tf.addN(taps)));
  // [N, rows, sh, cols, sw, C] → [N, rows·sh, cols·sw, C]: frame row r·sh + a, column l·sw + b.
  const byRow = Array.from({ length: sh }, (_, a) => (sw === 1 ? summed[a]!.expandDims(3) : sideBySide(summed.slice(a * sw, (a + 1) * sw) as tf.Tensor4D[])));
  const frame = tf.stack(byRow, 2).reshape([n, rows * sh, cols * sw, c]) as tf.Tensor4D;
  return tf.slice(frame, [0, pads[0], pads[2], 0], [n, h, w, c]);
}
