import type * as tf from '@tensorflow/tfjs-core';

/**
 * Anything that runs a detector graph on an input and returns the named nodes' tensors:
 * tf.GraphModel for plain inference, the trainable executor for training. The caller
 * disposes the returned tensors.
 */
export interface GraphRunner {
  run(input: tf.Tensor, outputs: readonly string[]): tf.Tensor[];
}
