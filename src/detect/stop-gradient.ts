import * as tf from '@tensorflow/tfjs';
import { withoutTape } from '../graph/ops/tape';

/**
 * Identity in the forward pass, zero gradient in the backward pass (PyTorch's `.detach()`,
 * TensorFlow's `stop_gradient`), which tfjs-core lacks. For values computed from the student that
 * must act as constants in its loss: GFL's IoU targets and quality weights, LD's w_i, PFI's P.
 * Unlike reading the values back with dataSync, it never waits on the device, so it costs nothing
 * on WebGPU. Any shape; returns a new tensor the caller owns.
 */
const detach = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => ({
  value: (args[0] as tf.Tensor).clone(),
  gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy),
}));

export function stopGradient<T extends tf.Tensor>(x: T): T {
  return detach(x) as T;
}

/**
 * The value of `f`, computed off the gradient tape: a constant for backprop, like stopGradient
 * around the same expression, but the ops inside are never recorded, so backprop does not run
 * their gradients (with zeros) either. stopGradient(tf.max(...)) still differentiates the max,
 * a broadcast comparison over every row, on its way to a zero.
 */
export function detached<T extends tf.Tensor>(f: () => T): T {
  return withoutTape(f);
}
