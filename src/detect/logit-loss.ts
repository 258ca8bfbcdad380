/**
 * The op shape the fused logit losses share (QFL, BCE with logits): per element, a loss of logits
 * x against constant targets y, computed from x, y and σ(x) by an elementwise program whose two
 * outputs are the loss and its derivative in x (one pass on wasm, `withOps` elsewhere); backprop
 * multiplies the saved derivative by dy, and y gets no gradient.
 */
import * as tf from '@tensorflow/tfjs-core';
import { runElementwise, type ElementwiseProgram } from '../graph/elementwise-program';
import { withLazyGradients } from '../graph/ops/tape';

export function logitLoss(
  name: string,
  x: tf.Tensor,
  y: tf.Tensor,
  program: ElementwiseProgram,
  withOps: (sigma: tf.Tensor) => tf.Tensor[],
  /** What the op returns of the per-element loss (absent: the loss itself). */
  reduce?: (loss: tf.Tensor) => tf.Tensor,
): tf.Tensor {
  if (x.dtype !== 'float32' || y.dtype !== 'float32' || !tf.util.arraysEqual(x.shape, y.shape)) {
    throw new Error(`${name} needs float32 logits and targets of one shape, got [${x.shape.join(',')}] and [${y.shape.join(',')}].`);
  }
  return withLazyGradients(
    [x],
    (save) => {
      const sigma = tf.sigmoid(x);
      const [loss, derivative] = runElementwise(program, [x, y, sigma], [], () => withOps(sigma));
      const out = reduce ? reduce(loss!) : loss!;
      // Kept only while a tape records (tfjs ignores the save otherwise).
      save([derivative!]);
      tf.dispose([sigma, derivative!, ...(out === loss ? [] : [loss!])]);
      return out;
    },
    (dy, [derivative]) => [() => tf.mul(dy, derivative!)],
  );
}
