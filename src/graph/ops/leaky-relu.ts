/**
 * Leaky ReLU whose gradient is dy · step(x, α), where step is 1 for x > 0 and α elsewhere: two
 * kernels (tfjs's own gradient is Greater, Multiply and Select over three full tensors, the
 * Select alone about as costly as both kernels here on wasm), one fused loop on wasm.
 * Inference takes the stock kernel.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ew, runElementwise, type ElementwiseProgram } from '../elementwise-program';
import { recordingGradients, withLazyGradients } from './tape';

/** dy where x > 0, dy · slope elsewhere (inputs dy, x; parameter slope). */
const SLOPE: ElementwiseProgram = {
  inputs: 2,
  params: 1,
  outputs: [ew.select('gt', ew.input(1), ew.constant(0), ew.input(0), ew.mul(ew.input(0), ew.param(0)))],
};

/**
 * The gradient through an activation of slope 1 above zero and `slopeBelowZero` at and below it
 * (ReLU: 0; leaky ReLU: α), from its input or its output (both have the sign that decides).
 */
export function activationSlopeGrad(dy: tf.Tensor, x: tf.Tensor, slopeBelowZero: number): tf.Tensor {
  return runElementwise(SLOPE, [dy, x], [slopeBelowZero], () => [tf.mul(dy, tf.step(x, slopeBelowZero))])[0]!;
}

export function leakyRelu(x: tf.Tensor, alpha: number): tf.Tensor {
  if (!recordingGradients()) return tf.leakyRelu(x, alpha);
  return withLazyGradients(
    [x],
    (save) => {
      save([x]);
      return tf.leakyRelu(x, alpha);
    },
    (dy, [sx]) => [() => activationSlopeGrad(dy, sx!, alpha)],
  );
}
