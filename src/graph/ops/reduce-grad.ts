/**
 * Gradients of Sum and Mean without a tensor of ones made in JavaScript. tfjs's own gradients
 * multiply dy by `ones(x.shape)`, which fills an array of x's size on the main thread and uploads
 * it to the backend on every call (on wasm 4.9 ns per element, most of what a loss's sums cost in
 * backprop; on a GPU an upload per sum). Here dy is broadcast to x's shape (one Tile kernel; on
 * wasm copies on the heap, wasm-tile.ts). The values are the same: dy copied, and Mean divides the
 * small dy by the count before it is broadcast, the same division per element.
 */
import * as tf from '@tensorflow/tfjs-core';

/** dy [reduced shape] spread over x's shape, through the size-1 axes the reduction left. */
function spread(dy: tf.Tensor, x: tf.Tensor, axes: number[]): tf.Tensor {
  const expanded = x.shape.map((d, a) => (axes.includes(a) ? 1 : d));
  return tf.broadcastTo(tf.reshape(dy, expanded), x.shape);
}

let registered = false;

/** Puts these gradients in place of tfjs's (once; every later gradient of Sum and Mean uses them). */
export function spreadReduceGradients(): void {
  if (registered) return;
  registered = true;
  const reduced = (attrs: tf.NamedAttrMap, x: tf.Tensor) => tf.util.parseAxisParam((attrs as unknown as tf.SumAttrs).axis, x.shape);
  tf.registerGradient({
    kernelName: tf.Sum,
    inputsToSave: ['x'],
    gradFunc: (dy, [x], attrs) => ({ x: () => spread(dy as tf.Tensor, x!, reduced(attrs, x!)) }),
  });
  tf.registerGradient({
    kernelName: tf.Mean,
    inputsToSave: ['x'],
    gradFunc: (dy, [x], attrs) => {
      const axes = reduced(attrs, x!);
      const count = axes.reduce((n, a) => n * x!.shape[a]!, 1);
      return { x: () => spread(tf.div(dy as tf.Tensor, count), x!, axes) };
    },
  });
}
