/**
 * Convolution and depthwise-convolution gradients written with forward convolutions only, for
 * backends without backprop kernels (wasm has no Conv2DBackpropFilter and no depthwise backprop).
 * Shapes: x [N,H,W,Ci], filter [KH,KW,Ci,Co] (depthwise: [KH,KW,C,M]), explicit pads
 * [top, bottom, left, right]. Either the stride or the dilation must be 1 on each axis (tfjs's own
 * rule for convolutions), since the weight gradient swaps the two.
 */
import * as tf from '@tensorflow/tfjs-core';

export type Pads = [number, number, number, number];
type Pair = [number, number];

function outSize(inSize: number, k: number, stride: number, dilation: number, before: number, after: number) {
  return Math.floor((inSize + before + after - ((k - 1) * dilation + 1)) / stride) + 1;
}

/** Insert (stride − 1) zeros between the rows and columns of dy: [N,OH,OW,C] → [N,(OH−1)s+1,(OW−1)s+1,C]. */
function dilateSpatial(dy: tf.Tensor4D, strides: Pair): tf.Tensor4D {
  const [sh, sw] = strides;
  if (sh === 1 && sw === 1) return dy;
  const [n, oh, ow, c] = dy.shape;
  const spread = tf.pad(dy.reshape([n, oh, 1, ow, 1, c]), [[0, 0], [0, 0], [0, sh - 1], [0, 0], [0, sw - 1], [0, 0]]);
  return spread.reshape([n, oh * sh, ow * sw, c]).slice([0, 0, 0, 0], [n, (oh - 1) * sh + 1, (ow - 1) * sw + 1, c]) as tf.Tensor4D;
}

/**
 * Full correlation of the (dilated) output gradient with the flipped filter gives the gradient of
 * the padded input; it is then zero-extended to the rows the stride skipped and un-padded.
 */
function inputGradient(
  dy: tf.Tensor4D,
  flipped: tf.Tensor4D,
  xShape: [number, number, number, number],
  k: Pair,
  strides: Pair,
  dilations: Pair,
  pads: Pads,
  depthwise: boolean,
  multiplier: number,
): tf.Tensor4D {
  const [n, h, w, c] = xShape;
  const spread = dilateSpatial(dy, strides);
  const fh = (k[0] - 1) * dilations[0];
  const fw = (k[1] - 1) * dilations[1];
  const full = tf.pad(spread, [[0, 0], [fh, fh], [fw, fw], [0, 0]]);
  let g = depthwise
    ? tf.depthwiseConv2d(full, flipped as tf.Tensor4D, 1, 'valid', 'NHWC', dilations)
    : tf.conv2d(full, flipped as tf.Tensor4D, 1, 'valid', 'NHWC', dilations);
  if (depthwise && multiplier > 1) {
    g = g.reshape([n, g.shape[1], g.shape[2], c, multiplier]).sum(4) as tf.Tensor4D;
  }
  // g covers padded rows 0 .. (OH−1)s + (KH−1)d; rows past that were never read by the forward.
  const hp = h + pads[0] + pads[1];
  const wp = w + pads[2] + pads[3];
  const padded = tf.pad(g, [[0, 0], [0, Math.max(0, hp - g.shape[1])], [0, Math.max(0, wp - g.shape[2])], [0, 0]]);
  return padded.slice([0, pads[0], pads[2], 0], [n, h, w, c]);
}

function assertStrideOrDilation(strides: Pair, dilations: Pair, what: string) {
  if ((strides[0] > 1 && dilations[0] > 1) || (strides[1] > 1 && dilations[1] > 1)) {
    throw new Error(`${what}: gradients through forward convolutions need stride 1 or dilation 1 on each axis (got strides ${strides}, dilations ${dilations}).`);
  }
}

const padsArg = (p: Pads): [[number, number], [number, number], [number, number], [number, number]] => [[0, 0], [p[0], p[1]], [p[2], p[3]], [0, 0]];

/**
 * Gradient of conv2d(x, filter) w.r.t. the filter, for output gradient dy: correlate the padded
 * input with dy, batch and channels swapped; the forward's stride becomes the dilation of this
 * convolution and vice versa.
 */
function filterGradient(x: tf.Tensor4D, dy: tf.Tensor4D, [kh, kw, ci, co]: number[], strides: Pair, pads: Pads, dilations: Pair): tf.Tensor4D {
  const xp = tf.pad(x, padsArg(pads));
  const a = xp.transpose([3, 1, 2, 0]) as tf.Tensor4D; // [Ci, Hp, Wp, N]
  const b = dy.transpose([1, 2, 0, 3]) as tf.Tensor4D; // [OH, OW, N, Co]
  const corr = tf.conv2d(a, b, dilations, 'valid', 'NHWC', strides); // [Ci, ≥KH, ≥KW, Co]
  return corr.slice([0, 0, 0, 0], [ci!, kh!, kw!, co!]).transpose([1, 2, 0, 3]);
}

/**
 * Transposed convolution (TensorFlow's Conv2DBackpropInput): the input gradient of
 * conv2d(·, filter) at output gradient `dy`, shaped `xShape`; filter [KH,KW,Cout,Cin], dy
 * [N,h,w,Cin]. Forward and gradients use forward convolutions only: d dy = conv2d(g, filter)
 * and d filter = the filter gradient of conv2d(g, ·) at dy.
 */
export function conv2dTransposeForwardGrad(dy: tf.Tensor4D, filter: tf.Tensor4D, xShape: [number, number, number, number], strides: Pair, pads: Pads, dilations: Pair): tf.Tensor4D {
  assertStrideOrDilation(strides, dilations, 'conv2dTranspose');
  const f = tf.customGrad(((di: tf.Tensor, fi: tf.Tensor, save: tf.GradSaveFunc) => {
    const d = di as tf.Tensor4D;
    const ff = fi as tf.Tensor4D;
    save([d, ff]);
    const [kh, kw] = ff.shape;
    const flipped = tf.reverse(ff, [0, 1]).transpose([0, 1, 3, 2]) as tf.Tensor4D;
    const value = inputGradient(d, flipped, xShape, [kh, kw], strides, dilations, pads, false, 1);
    const gradFunc = (g: tf.Tensor, saved: tf.Tensor[]) => {
      const [sd, sf] = saved as [tf.Tensor4D, tf.Tensor4D];
      const g4 = g as tf.Tensor4D;
      const dd = tf.conv2d(g4, sf, strides, padsArg(pads), 'NHWC', dilations);
      return [dd, filterGradient(g4, sd, [...sf.shape], strides, pads, dilations)];
    };
    return { value, gradFunc };
  }) as unknown as Parameters<typeof tf.customGrad<tf.Tensor4D>>[0]);
  return f(dy, filter) as tf.Tensor4D;
}

/** conv2d (NHWC, explicit pads) whose gradients use forward convolutions only. */
export function conv2dForwardGrad(x: tf.Tensor4D, filter: tf.Tensor4D, strides: Pair, pads: Pads, dilations: Pair): tf.Tensor4D {
  assertStrideOrDilation(strides, dilations, 'conv2d');
  const f = tf.customGrad(((xi: tf.Tensor, fi: tf.Tensor, save: tf.GradSaveFunc) => {
    const xx = xi as tf.Tensor4D;
    const ff = fi as tf.Tensor4D;
    save([xx, ff]);
    const value = tf.conv2d(xx, ff, strides, padsArg(pads), 'NHWC', dilations);
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [sx, sf] = saved as [tf.Tensor4D, tf.Tensor4D];
      const dy4 = dy as tf.Tensor4D;
      const [kh, kw, ci, co] = sf.shape;
      // Input gradient: flip the kernel spatially and swap its in/out channels.
      const flipped = tf.reverse(sf, [0, 1]).transpose([0, 1, 3, 2]) as tf.Tensor4D;
      const dx = inputGradient(dy4, flipped, sx.shape, [kh, kw], strides, dilations, pads, false, 1);
      return [dx, filterGradient(sx, dy4, [kh, kw, ci, co], strides, pads, dilations)];
    };
    return { value, gradFunc };
  }) as unknown as Parameters<typeof tf.customGrad<tf.Tensor4D>>[0]);
  return f(x, filter) as tf.Tensor4D;
}

/** depthwiseConv2d (NHWC, explicit pads, any channel multiplier) with forward-convolution gradients. */
export function depthwiseConv2dForwardGrad(x: tf.Tensor4D, filter: tf.Tensor4D, strides: Pair, pads: Pads, dilations: Pair): tf.Tensor4D {
  assertStrideOrDilation(strides, dilations, 'depthwiseConv2d');
  const f = tf.customGrad(((xi: tf.Tensor, fi: tf.Tensor, save: tf.GradSaveFunc) => {
    const xx = xi as tf.Tensor4D;
    const ff = fi as tf.Tensor4D;
    save([xx, ff]);
    const value = tf.depthwiseConv2d(xx, ff, strides, padsArg(pads), 'NHWC', dilations);
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [sx, sf] = saved as [tf.Tensor4D, tf.Tensor4D];
      const dy4 = dy as tf.Tensor4D;
      const [kh, kw, c, m] = sf.shape;
      const [n] = sx.shape;
      // Input gradient: each output channel c·m+j correlates back onto input channel c.
      const flipped = tf.reverse(sf, [0, 1]).reshape([kh, kw, c * m, 1]) as tf.Tensor4D;
      const dx = inputGradient(dy4, flipped, sx.shape, [kh, kw], strides, dilations, pads, true, m);
      // Filter gradient: fold the batch into channels so one depthwise correlation pairs each
      // input channel (repeated m times) with its own output-gradient channels, then sum the batch.
      const xp = tf.pad(sx, padsArg(pads));
      const [, hp, wp] = xp.shape;
      const xRep = m > 1 ? xp.reshape([n, hp, wp, c, 1]).tile([1, 1, 1, 1, m]).reshape([n, hp, wp, c * m]) : xp;
      const a = xRep.transpose([1, 2, 0, 3]).reshape([1, hp, wp, n * c * m]) as tf.Tensor4D;
      const [, oh, ow] = dy4.shape;
      const b = dy4.transpose([1, 2, 0, 3]).reshape([oh, ow, n * c * m, 1]) as tf.Tensor4D;
      const corr = tf.depthwiseConv2d(a, b, dilations, 'valid', 'NHWC', strides); // [1, ≥KH, ≥KW, N·C·M]
      const df = corr.slice([0, 0, 0, 0], [1, kh, kw, n * c * m]).reshape([kh, kw, n, c * m]).sum(2).reshape([kh, kw, c, m]);
      return [dx, df];
    };
    return { value, gradFunc };
  }) as unknown as Parameters<typeof tf.customGrad<tf.Tensor4D>>[0]);
  return f(x, filter) as tf.Tensor4D;
}

/** Output spatial size of a convolution with explicit pads (exported for shape checks). */
export const convOutSize = outSize;
