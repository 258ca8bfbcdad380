import * as tf from '@tensorflow/tfjs-core';

/**
 * True while a gradient is being recorded (inside tf.grad / tf.variableGrads / minimize). The
 * custom-gradient paths cost a little in the forward (saved tensors, an extra pad), so plain
 * inference takes the stock kernels.
 */
export function recordingGradients(): boolean {
  return tf.engine().isTapeOn();
}
