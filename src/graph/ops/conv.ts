/**
 * Convolutions: Conv2D, DepthwiseConv2dNative and their fused forms (_FusedConv2D,
 * FusedDepthwiseConv2dNative), which the executor splits into convolution + bias + activation so
 * every piece is an ordinary differentiable op. NHWC; NCHW graphs are transposed around the op.
 */
import * as tf from '@tensorflow/tfjs-core';
import { attr, type TfNodeDef } from '../model-json';
import { conv2dForwardGrad, conv2dTransposeForwardGrad, convBiasActivationGrad, depthwiseConv2dForwardGrad, fusedConvKernel, type ConvGeometry, type OutputSlopeActivation, type Pads } from './conv-grad';
import { recordingGradients } from './tape';
import { leakyRelu } from './leaky-relu';
import { biasAdd } from './bias-add';
import { input, op, type OpContext, type OpDef } from './types';

/** True when a gradient is being recorded and the backend lacks the kernel for it. */
function needsForwardGrad(kernel: string): boolean {
  return recordingGradients() && tf.getKernel(kernel, tf.getBackend()) === undefined;
}

/** TensorFlow's padding rule, turned into explicit [top, bottom, left, right] pads. */
export function explicitPads(node: TfNodeDef, inH: number, inW: number, kh: number, kw: number, strides: [number, number], dilations: [number, number]): Pads {
  const padding = attr.string(node, 'padding', 'VALID');
  if (padding === 'VALID') return [0, 0, 0, 0];
  if (padding === 'EXPLICIT') {
    const p = attr.ints(node, 'explicit_paddings');
    const nchw = attr.string(node, 'data_format', 'NHWC') === 'NCHW';
    return nchw ? [p[4] ?? 0, p[5] ?? 0, p[6] ?? 0, p[7] ?? 0] : [p[2] ?? 0, p[3] ?? 0, p[4] ?? 0, p[5] ?? 0];
  }
  if (padding !== 'SAME') throw new Error(`${node.op} node "${node.name}": unknown padding "${padding}".`);
  const same = (size: number, k: number, s: number, d: number): [number, number] => {
    const out = Math.ceil(size / s);
    const total = Math.max((out - 1) * s + (k - 1) * d + 1 - size, 0);
    return [Math.floor(total / 2), total - Math.floor(total / 2)];
  };
  const [t, b] = same(inH, kh, strides[0], dilations[0]);
  const [l, r] = same(inW, kw, strides[1], dilations[1]);
  return [t, b, l, r];
}

function spatialPair(node: TfNodeDef, key: string): [number, number] {
  const v = attr.ints(node, key, [1, 1, 1, 1]);
  const nchw = attr.string(node, 'data_format', 'NHWC') === 'NCHW';
  return nchw ? [v[2] ?? 1, v[3] ?? 1] : [v[1] ?? 1, v[2] ?? 1];
}

function toNhwc(x: tf.Tensor, node: TfNodeDef): tf.Tensor4D {
  return (attr.string(node, 'data_format', 'NHWC') === 'NCHW' ? x.transpose([0, 2, 3, 1]) : x) as tf.Tensor4D;
}
function fromNhwc(y: tf.Tensor4D, node: TfNodeDef): tf.Tensor4D {
  return attr.string(node, 'data_format', 'NHWC') === 'NCHW' ? y.transpose([0, 3, 1, 2]) : y;
}

/** A convolution node's geometry, for its input of spatial size inH × inW and its kernel kh × kw. */
export function convGeometry(node: TfNodeDef, inH: number, inW: number, kh: number, kw: number, depthwise: boolean): ConvGeometry {
  const strides = spatialPair(node, 'strides');
  const dilations = spatialPair(node, 'dilations');
  return { strides, dilations, pads: explicitPads(node, inH, inW, kh, kw, strides, dilations), depthwise };
}

/** conv2d or depthwiseConv2d of NHWC x, through forward-kernel gradients where the backend lacks its own. */
function convolveNhwc(x: tf.Tensor4D, filter: tf.Tensor4D, g: ConvGeometry): tf.Tensor4D {
  const { strides, pads, dilations } = g;
  const padding: [[number, number], [number, number], [number, number], [number, number]] = [[0, 0], [pads[0], pads[1]], [pads[2], pads[3]], [0, 0]];
  if (g.depthwise) {
    return needsForwardGrad('DepthwiseConv2dNativeBackpropFilter')
      ? depthwiseConv2dForwardGrad(x, filter, strides, pads, dilations)
      : tf.depthwiseConv2d(x, filter, strides, padding, 'NHWC', dilations);
  }
  return needsForwardGrad('Conv2DBackpropFilter') ? conv2dForwardGrad(x, filter, strides, pads, dilations) : tf.conv2d(x, filter, strides, padding, 'NHWC', dilations);
}

function convolve(inputs: tf.Tensor[], ctx: OpContext, depthwise: boolean): tf.Tensor4D {
  const { node } = ctx;
  const x = toNhwc(input(inputs, 0, node), node);
  const filter = input(inputs, 1, node) as tf.Tensor4D;
  return convolveNhwc(x, filter, convGeometry(node, x.shape[1], x.shape[2], filter.shape[0], filter.shape[1], depthwise));
}

let fusing = true;

/**
 * Whether convolution layers run as one fused kernel (the default). Off, every node runs as its
 * own op, as the graph spells it: for comparing the two in one process (`npm run bench:graph`).
 * Returns the previous setting.
 */
export function setConvFusion(on: boolean): boolean {
  const previous = fusing;
  fusing = on;
  return previous;
}
export const convFusion = (): boolean => fusing;

/** Graph activation names as tfjs's fused convolution kernels name them. */
const FUSED_ACTIVATION: Record<string, string> = { '': 'linear', Identity: 'linear', Relu: 'relu', Relu6: 'relu6', Elu: 'elu', Sigmoid: 'sigmoid', LeakyRelu: 'leakyrelu', Prelu: 'prelu' };

/** Activation ops of one input that a fused convolution kernel applies (Prelu takes a second input). */
export const FUSABLE_ACTIVATION_OPS: ReadonlySet<string> = new Set(Object.keys(FUSED_ACTIVATION).filter((op) => op !== '' && op !== 'Identity' && op !== 'Prelu'));

/** The activation's slope read off its output (what the fused training path needs), if it has one. */
function outputSlope(activation: string, alpha: number): OutputSlopeActivation | undefined {
  if (activation === '' || activation === 'Identity') return { name: 'linear', alpha: 0 };
  if (activation === 'Relu') return { name: 'relu', alpha: 0 };
  if (activation === 'LeakyRelu' && alpha >= 0) return { name: 'leakyrelu', alpha };
  return undefined;
}

/** A leaky ReLU node's slope below zero. */
export const leakyAlpha = (node: TfNodeDef): number => attr.float(node, 'leakyrelu_alpha', attr.float(node, 'alpha', 0.2));

/**
 * act(conv(x, filter) + bias), NHWC, `bias` of C values. One fused kernel for inference, and for
 * training where the activation's slope can be read off its output (linear, ReLU, leaky ReLU),
 * with the lab's forward-kernel gradients where the backend lacks backprop kernels (wasm) and the
 * backend's own elsewhere (dilation 1, as tfjs's gradients); otherwise the convolution, bias and
 * activation as separate ops.
 * `activationNode` is the node that names the activation (its alpha), `activation` its op name.
 */
export function convBiasActivation(x: tf.Tensor4D, filter: tf.Tensor4D, bias: tf.Tensor, activation: string, activationNode: TfNodeDef, g: ConvGeometry, preluAlpha?: tf.Tensor): tf.Tensor {
  const fusedName = FUSED_ACTIVATION[activation];
  const alpha = activation === 'LeakyRelu' ? leakyAlpha(activationNode) : 0;
  const channels = g.depthwise ? filter.shape[2] * filter.shape[3] : filter.shape[3];
  const isBias = bias.size === channels && bias.dtype === 'float32' && bias.shape[bias.rank - 1] === channels;
  if (fusing && fusedName !== undefined && isBias && x.dtype === 'float32') {
    if (!recordingGradients()) return fusedConvKernel(x, filter, bias, fusedName, alpha, g, preluAlpha);
    const slope = outputSlope(activation, alpha);
    const dilated = g.dilations[0] !== 1 || g.dilations[1] !== 1;
    if (slope && needsForwardGrad(g.depthwise ? 'DepthwiseConv2dNativeBackpropFilter' : 'Conv2DBackpropFilter')) return convBiasActivationGrad(x, filter, bias, slope, g, 'forward');
    if (slope && !dilated) return convBiasActivationGrad(x, filter, bias, slope, g, 'native');
  }
  return activate(biasAdd(convolveNhwc(x, filter, g), bias), activation, activationNode, preluAlpha);
}

/** The activation named in a fused op (or a standalone activation op), as plain tfjs ops. */
export function activate(x: tf.Tensor, name: string, node: TfNodeDef, preluAlpha?: tf.Tensor): tf.Tensor {
  switch (name) {
    case '':
    case 'Identity':
      return x;
    case 'Relu':
      return tf.relu(x);
    case 'Relu6':
      return tf.relu6(x);
    case 'Elu':
      return tf.elu(x);
    case 'Selu':
      return tf.selu(x);
    case 'Sigmoid':
      return tf.sigmoid(x);
    case 'Tanh':
      return tf.tanh(x);
    case 'LeakyRelu':
      return leakyRelu(x, leakyAlpha(node));
    case 'Prelu':
      if (!preluAlpha) throw new Error(`Fused Prelu in "${node.name}" has no alpha input.`);
      return tf.prelu(x, preluAlpha);
    default:
      throw new Error(`Fused activation "${name}" in ${node.op} node "${node.name}" is not supported.`);
  }
}

function fused(inputs: tf.Tensor[], ctx: OpContext, depthwise: boolean): tf.Tensor {
  const { node } = ctx;
  const ops = attr.strings(node, 'fused_ops');
  if (ops.includes('FusedBatchNorm')) throw new Error(`${node.op} node "${node.name}" fuses a batch norm; fold it into the weights before loading.`);
  const biases = ops.filter((name) => name === 'BiasAdd' || name === 'Add').length;
  const activation = ops.find((name) => name !== 'BiasAdd' && name !== 'Add') ?? '';
  const preluAlpha = activation === 'Prelu' ? input(inputs, 2 + biases, node) : undefined;
  const x = toNhwc(input(inputs, 0, node), node);
  const filter = input(inputs, 1, node) as tf.Tensor4D;
  const g = convGeometry(node, x.shape[1], x.shape[2], filter.shape[0], filter.shape[1], depthwise);
  if (biases === 1) return fromNhwc(convBiasActivation(x, filter, input(inputs, 2, node), activation, node, g, preluAlpha) as tf.Tensor4D, node);
  let y: tf.Tensor = convolveNhwc(x, filter, g);
  for (let i = 0; i < biases; i++) y = biasAdd(y, input(inputs, 2 + i, node));
  return fromNhwc(activate(y, activation, node, preluAlpha) as tf.Tensor4D, node);
}

/**
 * Conv2DBackpropInput, i.e. a transposed convolution: inputs (input_sizes, filter,
 * out_backprop); the output has shape input_sizes, and the padding is the forward
 * convolution's at that size. Written with forward convolutions, so it trains on wasm too.
 */
function transposedConvolution(inputs: tf.Tensor[], ctx: OpContext): tf.Tensor {
  const { node } = ctx;
  const nchw = attr.string(node, 'data_format', 'NHWC') === 'NCHW';
  const sizes = ctx.values(0);
  const xShape = (nchw ? [sizes[0], sizes[2], sizes[3], sizes[1]] : sizes) as [number, number, number, number];
  const filter = input(inputs, 1, node) as tf.Tensor4D;
  const dy = toNhwc(input(inputs, 2, node), node);
  const strides = spatialPair(node, 'strides');
  const dilations = spatialPair(node, 'dilations');
  const [kh, kw] = filter.shape;
  const pads = explicitPads(node, xShape[1], xShape[2], kh, kw, strides, dilations);
  return fromNhwc(conv2dTransposeForwardGrad(dy, filter, [dy.shape[0], xShape[1], xShape[2], xShape[3]], strides, pads, dilations), node);
}

export const convOps: Record<string, OpDef> = {
  Conv2DBackpropInput: op(transposedConvolution, { host: [0] }),
  Conv2D: op((inputs, ctx) => fromNhwc(convolve(inputs, ctx, false), ctx.node)),
  DepthwiseConv2dNative: op((inputs, ctx) => fromNhwc(convolve(inputs, ctx, true), ctx.node)),
  DepthwiseConv2d: op((inputs, ctx) => fromNhwc(convolve(inputs, ctx, true), ctx.node)),
  _FusedConv2D: op((inputs, ctx) => fused(inputs, ctx, false)),
  FusedDepthwiseConv2dNative: op((inputs, ctx) => fused(inputs, ctx, true)),
};
