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

/** The gradient of each input, computed only when backprop asks for it (undefined: never asked). */
export type LazyGradients = (dy: tf.Tensor, saved: tf.Tensor[]) => (() => tf.Tensor)[];

interface EngineKernelFunc {
  runKernelFunc(params: {
    forwardFunc: (backend: unknown, save: (tensors: tf.Tensor[]) => void) => tf.Tensor;
    backwardsFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => Record<string, () => tf.Tensor>;
    inputs: Record<string, tf.Tensor>;
  }): tf.Tensor;
}

/**
 * Like tf.customGrad, but each input's gradient is a function that tfjs calls only for the
 * inputs on the way to what is differentiated (as it does for its own kernels): the input
 * gradient of a network's first convolution, whose input is the image, is never computed.
 * `forward` may save tensors for the backward pass; they are kept only while a tape records.
 */
export function withLazyGradients(inputs: tf.Tensor[], forward: (save: (tensors: tf.Tensor[]) => void) => tf.Tensor, gradients: LazyGradients): tf.Tensor {
  const engine = tf.engine() as unknown as EngineKernelFunc;
  return engine.runKernelFunc({
    forwardFunc: (_backend, save) => forward(save),
    backwardsFunc: (dy, saved) => Object.fromEntries(gradients(dy, saved).map((g, i) => [String(i), g])),
    inputs: Object.fromEntries(inputs.map((t, i) => [String(i), t])),
  });
}
