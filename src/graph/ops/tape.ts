import * as tf from '@tensorflow/tfjs-core';

/**
 * True while a gradient is being recorded (inside tf.grad / tf.variableGrads / minimize). The
 * custom-gradient paths cost a little in the forward (saved tensors, an extra pad), so plain
 * inference takes the stock kernels.
 */
export function recordingGradients(): boolean {
  return tf.engine().isTapeOn();
}

/**
 * Runs `f` with the gradient tape paused. For shape-only runs (the executor's reference run at
 * the declared input size) that may happen inside a training step: recorded, they would keep
 * every saved activation of a full-size forward until backprop, and feed nothing into the loss.
 */
export function withoutTape<T>(f: () => T): T {
  const state = tf.engine().state;
  const depth = state.gradientDepth;
  state.gradientDepth = 0;
  try {
    return f();
  } finally {
    state.gradientDepth = depth;
  }
}
