/**
 * Leaky ReLU whose gradient is two kernels: dy · step(x, α), where step is 1 for x > 0 and α
 * elsewhere (tfjs's own gradient is Greater, Multiply and Select over three full tensors, the
 * Select alone about as costly as both kernels here on wasm). Inference takes the stock kernel.
 */
import * as tf from '@tensorflow/tfjs-core';
import { recordingGradients, withLazyGradients } from './tape';

export function leakyRelu(x: tf.Tensor, alpha: number): tf.Tensor {
  if (!recordingGradients()) return tf.leakyRelu(x, alpha);
  return withLazyGradients(
    [x],
    (save) => {
      save([x]);
      return tf.leakyRelu(x, alpha);
    },
    (dy, [sx]) => [() => tf.mul(dy, tf.step(sx!, alpha))],
  );
}
