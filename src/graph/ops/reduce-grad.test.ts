import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { describe, expect, it } from 'vitest';
import { spreadReduceGradients } from './reduce-grad';

/** Gradients of a weighted sum of reductions of x [2,3,4], on `backend`, and the kernels they ran. */
async function gradients(backend: string) {
  await tf.setBackend(backend);
  const x = tf.tensor3d(Array.from({ length: 24 }, (_, i) => Math.sin(i)), [2, 3, 4]);
  const f = (a: tf.Tensor) =>
    tf.addN([
      tf.sum(a),
      tf.mul(tf.sum(a, [0, 1]), tf.tensor1d([1, 2, 3, 4])).sum(),
      tf.mul(tf.mean(a, 2, true), tf.tensor3d([[[1], [-1], [2]], [[3], [0.5], [7]]])).sum(),
      tf.mul(tf.mean(a, [1, 2]), tf.tensor1d([5, -3])).sum(),
      tf.mul(tf.sum(a, -1), 0.25).sum(),
    ]);
  const info = await tf.profile(() => tf.grad(f)(x));
  const g = Array.from((info.result as tf.Tensor).dataSync());
  tf.dispose([x, info.result as tf.Tensor]);
  return { g, names: info.kernelNames };
}

describe('Sum and Mean gradients broadcast dy', () => {
  it("equal tfjs's own gradients bit for bit on cpu and wasm, with no tensor of ones made on the main thread", async () => {
    const stock = await gradients('cpu');
    spreadReduceGradients();
    // By hand for x[0,0,0]: 1 + 1 + 1/4 + 5/12 + 0.25.
    expect(stock.g[0]).toBeCloseTo(1 + 1 + 0.25 + 5 / 12 + 0.25, 5);
    for (const backend of ['cpu', 'wasm']) {
      const mine = await gradients(backend);
      expect(mine.g).toEqual(stock.g);
      expect(mine.names).toContain('Tile');
    }
    await tf.setBackend('cpu');
  });
});
