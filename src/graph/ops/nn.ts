/** Pooling, reductions, resizing, matrix products and batch norm. */
import * as tf from '@tensorflow/tfjs-core';
import { attr, type TfNodeDef } from '../model-json';
import { activate, explicitPads } from './conv';
import { biasAdd } from './bias-add';
import { maxPoolForwardGrad } from './pool-grad';
import { resizeWithGrad } from './resize-grad';
import { recordingGradients } from './tape';
import { input, op, type OpContext, type OpDef } from './types';

function pool(inputs: tf.Tensor[], ctx: OpContext, kind: 'max' | 'avg'): tf.Tensor {
  const { node } = ctx;
  const nchw = attr.string(node, 'data_format', 'NHWC') === 'NCHW';
  const pick = (v: number[]): [number, number] => (nchw ? [v[2] ?? 1, v[3] ?? 1] : [v[1] ?? 1, v[2] ?? 1]);
  const ksize = pick(attr.ints(node, 'ksize', [1, 1, 1, 1]));
  const strides = pick(attr.ints(node, 'strides', [1, 1, 1, 1]));
  const padding = attr.string(node, 'padding', 'VALID') === 'SAME' ? 'same' : 'valid';
  let x = input(inputs, 0, node) as tf.Tensor4D;
  if (nchw) x = x.transpose([0, 2, 3, 1]);
  let y: tf.Tensor4D;
  if (kind === 'max' && tf.getBackend() === 'wasm' && recordingGradients()) {
    // tfjs-backend-wasm's MaxPoolGrad is wrong for many shapes: differentiate through forward ops.
    y = maxPoolForwardGrad(x, ksize, strides, explicitPads(node, x.shape[1], x.shape[2], ksize[0], ksize[1], strides, [1, 1]));
  } else {
    y = kind === 'max' ? tf.maxPool(x, ksize, strides, padding) : tf.avgPool(x, ksize, strides, padding);
  }
  if (nchw) y = y.transpose([0, 3, 1, 2]);
  return y;
}

function reduce(f: (x: tf.Tensor, axis: number[], keep: boolean) => tf.Tensor) {
  return op((inputs, ctx) => {
    const x = input(inputs, 0, ctx.node);
    const axes = ctx.values(1).map((a) => (a < 0 ? a + x.rank : a));
    return f(x, axes, attr.bool(ctx.node, 'keep_dims', false));
  }, { host: [1] });
}

function resize(inputs: tf.Tensor[], ctx: OpContext, bilinear: boolean): tf.Tensor {
  const { node } = ctx;
  const x = input(inputs, 0, node) as tf.Tensor4D;
  const [h, w] = ctx.values(1) as [number, number];
  const alignCorners = attr.bool(node, 'align_corners');
  const halfPixel = attr.bool(node, 'half_pixel_centers');
  if (!recordingGradients()) {
    return bilinear ? tf.image.resizeBilinear(x, [h, w], alignCorners, halfPixel) : tf.image.resizeNearestNeighbor(x, [h, w], alignCorners, halfPixel);
  }
  // tfjs's own resize gradients ignore half_pixel_centers; resizeWithGrad differentiates correctly.
  return resizeWithGrad(x, [h, w], attr.bool(node, 'align_corners'), attr.bool(node, 'half_pixel_centers'), bilinear ? 'bilinear' : 'nearest');
}

function matMul(inputs: tf.Tensor[], node: TfNodeDef, fusedOps: string[] = []): tf.Tensor {
  const a = input(inputs, 0, node);
  const b = input(inputs, 1, node);
  const ta = attr.bool(node, 'transpose_a', attr.bool(node, 'adj_x'));
  const tb = attr.bool(node, 'transpose_b', attr.bool(node, 'adj_y'));
  let y = tf.matMul(a, b, ta, tb);
  let next = 2;
  let activation = '';
  for (const name of fusedOps) {
    if (name === 'BiasAdd') y = biasAdd(y, input(inputs, next++, node));
    else activation = name;
  }
  return activate(y, activation, node, activation === 'Prelu' ? input(inputs, next, node) : undefined);
}

function batchNorm(inputs: tf.Tensor[], ctx: OpContext): tf.Tensor[] {
  const { node } = ctx;
  if (attr.bool(node, 'is_training', false)) {
    throw new Error(`FusedBatchNorm node "${node.name}" is in training mode; export the model for inference (moving averages) first.`);
  }
  const [x, scale, offset, mean, variance] = [0, 1, 2, 3, 4].map((i) => input(inputs, i, node)) as tf.Tensor[];
  const nchw = attr.string(node, 'data_format', 'NHWC') === 'NCHW';
  const shape = nchw ? [1, -1, 1, 1] : [-1];
  const r = (t: tf.Tensor) => (nchw ? t.reshape(shape) : t);
  const y = tf.batchNorm(x!, r(mean!), r(variance!), r(offset!), r(scale!), attr.float(node, 'epsilon', 1e-3));
  return [y, mean!.clone(), variance!.clone()];
}

export const nnOps: Record<string, OpDef> = {
  MaxPool: op((inputs, ctx) => pool(inputs, ctx, 'max')),
  AvgPool: op((inputs, ctx) => pool(inputs, ctx, 'avg')),
  Mean: reduce((x, a, k) => tf.mean(x, a, k)),
  Sum: reduce((x, a, k) => tf.sum(x, a, k)),
  Max: reduce((x, a, k) => tf.max(x, a, k)),
  Min: reduce((x, a, k) => tf.min(x, a, k)),
  Prod: reduce((x, a, k) => tf.prod(x, a, k)),
  ArgMax: op((inputs, ctx) => tf.argMax(input(inputs, 0, ctx.node), ctx.values(1)[0] ?? 0), { host: [1] }),
  ArgMin: op((inputs, ctx) => tf.argMin(input(inputs, 0, ctx.node), ctx.values(1)[0] ?? 0), { host: [1] }),
  ResizeBilinear: op((inputs, ctx) => resize(inputs, ctx, true), { host: [1] }),
  ResizeNearestNeighbor: op((inputs, ctx) => resize(inputs, ctx, false), { host: [1] }),
  MatMul: op((inputs, ctx) => matMul(inputs, ctx.node)),
  BatchMatMul: op((inputs, ctx) => matMul(inputs, ctx.node)),
  BatchMatMulV2: op((inputs, ctx) => matMul(inputs, ctx.node)),
  _FusedMatMul: op((inputs, ctx) => matMul(inputs, ctx.node, attr.strings(ctx.node, 'fused_ops'))),
  FusedBatchNorm: op(batchNorm),
  FusedBatchNormV2: op(batchNorm),
  FusedBatchNormV3: op(batchNorm),
};
