import * as tf from '@tensorflow/tfjs-core';
import { conv2dForwardGrad, type Pads } from './conv-grad';
import { recordingGradients } from './tape';

/**
 * A stride-1 NHWC conv2d that can be trained on every backend: while a gradient is recorded on
 * a backend without Conv2DBackpropFilter (wasm), the gradient goes through forward convolutions.
 * 'same' pads like TensorFlow (odd kernels: k//2 on each side).
 */
export function trainableConv2d(x: tf.Tensor4D, filter: tf.Tensor4D, padding: 'same' | 'valid'): tf.Tensor4D {
  const [kh, kw] = filter.shape;
  const pads: Pads = padding === 'same' ? [Math.floor((kh - 1) / 2), Math.ceil((kh - 1) / 2), Math.floor((kw - 1) / 2), Math.ceil((kw - 1) / 2)] : [0, 0, 0, 0];
  if (recordingGradients() && tf.getKernel('Conv2DBackpropFilter', tf.getBackend()) === undefined) {
    return conv2dForwardGrad(x, filter, [1, 1], pads, [1, 1]);
  }
  return tf.conv2d(x, filter, 1, [[0, 0], [pads[0], pads[1]], [pads[2], pads[3]], [0, 0]]);
}
