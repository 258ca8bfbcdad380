/**
 * Max pooling whose gradient is written with forward ops only. tfjs-backend-wasm 4.22's
 * MaxPoolGrad kernel returns wrong values for many shapes (e.g. [1,9,9,32], 3x3 stride 2), so on
 * wasm the executor routes the gradient through here. Like TensorFlow, each window's gradient
 * goes to its first maximum (row-major), even when several elements tie.
 * Shapes: x [N,H,W,C], explicit pads [top, bottom, left, right] filled with −Infinity.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Pads } from './conv-grad';

type Pair = [number, number];

export function maxPoolForwardGrad(x: tf.Tensor4D, ksize: Pair, strides: Pair, pads: Pads): tf.Tensor4D {
  const f = tf.customGrad(((xi: tf.Tensor, save: tf.GradSaveFunc) => {
    const xx = xi as tf.Tensor4D;
    const xp = tf.pad(xx, [[0, 0], [pads[0], pads[1]], [pads[2], pads[3]], [0, 0]], -Infinity);
    const value = tf.maxPool(xp, ksize, strides, 'valid');
    save([xp, value]);
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [sp, sy] = saved as [tf.Tensor4D, tf.Tensor4D];
      const [n, hp, wp, c] = sp.shape;
      const [, oh, ow] = sy.shape;
      let taken = tf.zerosLike(sy).cast('bool');
      let dxp = tf.zeros([n, hp, wp, c]) as tf.Tensor4D;
      for (let ky = 0; ky < ksize[0]; ky++) {
        for (let kx = 0; kx < ksize[1]; kx++) {
          // The element each window reads at offset (ky, kx): a strided view of the padded input.
          const seen = tf.stridedSlice(sp, [0, ky, kx, 0], [n, ky + (oh - 1) * strides[0] + 1, kx + (ow - 1) * strides[1] + 1, c], [1, strides[0], strides[1], 1]) as tf.Tensor4D;
          const first = tf.logicalAnd(tf.equal(seen, sy), tf.logicalNot(taken));
          taken = tf.logicalOr(taken, first);
          const part = tf.where(first, dy as tf.Tensor4D, tf.zerosLike(dy));
          // Scatter back: spread by the stride, then shift by the offset into the padded frame.
          const spread = strides[0] === 1 && strides[1] === 1
            ? part
            : tf.pad(part.reshape([n, oh, 1, ow, 1, c]), [[0, 0], [0, 0], [0, strides[0] - 1], [0, 0], [0, strides[1] - 1], [0, 0]])
                .reshape([n, oh * strides[0], ow * strides[1], c])
                .slice([0, 0, 0, 0], [n, (oh - 1) * strides[0] + 1, (ow - 1) * strides[1] + 1, c]);
          const sh = spread.shape as number[];
          const placed = tf.pad(spread, [[0, 0], [ky, hp - ky - sh[1]!], [kx, wp - kx - sh[2]!], [0, 0]]);
          dxp = tf.add(dxp, placed);
        }
      }
      return dxp.slice([0, pads[0], pads[2], 0], [n, hp - pads[0] - pads[1], wp - pads[2] - pads[3], c]);
    };
    return { value, gradFunc };
  }) as unknown as Parameters<typeof tf.customGrad<tf.Tensor4D>>[0]);
  return f(x) as tf.Tensor4D;
}
