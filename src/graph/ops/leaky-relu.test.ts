import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { describe, expect, it } from 'vitest';
import { leakyRelu } from './leaky-relu';

async function valueAndGrad(backend: string, mine: boolean) {
  await tf.setBackend(backend);
  return tf.tidy(() => {
    // Exact zeros and values either side, and a weighting so every gradient entry differs.
    const x = tf.concat([tf.tensor1d([0, -0, 1e-8, -1e-8, 3, -3]), tf.randomNormal([250], 0, 1, 'float32', 3)]);
    const r = tf.randomNormal([256], 0, 1, 'float32', 4);
    const f = (a: tf.Tensor) => (mine ? leakyRelu(a, 0.1) : tf.leakyRelu(a, 0.1));
    const g = tf.grad((a: tf.Tensor) => f(a).mul(r).sum())(x);
    return { y: Array.from(f(x).dataSync()), g: Array.from(g.dataSync()), r: Array.from(r.dataSync()) };
  });
}

describe('leakyRelu with a two-kernel gradient (one fused loop on wasm)', () => {
  it("matches tfjs's leakyRelu and its gradient on cpu and wasm, zeros included", async () => {
    const ref = await valueAndGrad('cpu', false);
    // At 0 the slope is α, as in tfjs (Greater(x, 0) is false there).
    expect(ref.g[0]).toBeCloseTo(0.1 * ref.r[0]!, 6);
    expect(ref.g[4]).toBeCloseTo(ref.r[4]!, 6);
    for (const backend of ['cpu', 'wasm']) {
      const mine = await valueAndGrad(backend, true);
      mine.y.forEach((v, i) => expect(Math.abs(v - ref.y[i]!)).toBeLessThan(1e-7)); // wasm's kernel rounds differently
      mine.g.forEach((v, i) => expect(Math.abs(v - ref.g[i]!)).toBeLessThan(1e-6));
    }
  });

  it('takes its gradient in one fused kernel on wasm and in Step and Multiply elsewhere', async () => {
    const kernels = async (backend: string) => {
      await tf.setBackend(backend);
      const x = tf.tensor1d([-2, 0, 2, 5, -1]);
      const dy = tf.tensor1d([1, 2, 3, 4, 5]);
      const info = await tf.profile(() => tf.grad((a: tf.Tensor) => leakyRelu(a, 0.25).mul(dy).sum())(x));
      const g = Array.from((info.result as tf.Tensor).dataSync());
      tf.dispose([x, dy, info.result as tf.Tensor]);
      return { g, names: info.kernelNames };
    };
    const wasm = await kernels('wasm');
    const cpu = await kernels('cpu');
    expect(wasm.g).toEqual([0.25, 0.5, 3, 4, 1.25]);
    expect(cpu.g).toEqual(wasm.g);
    expect(wasm.names).toContain('LabElementwise');
    expect(wasm.names).not.toContain('Step');
    expect(cpu.names).toContain('Step');
  });

  it('runs the stock kernel when no gradient is recorded', async () => {
    await tf.setBackend('cpu');
    const y = leakyRelu(tf.tensor1d([-2, 0, 2]), 0.2);
    expect(Array.from(y.dataSync())).toEqual([-0.4000000059604645, 0, 2]);
  });
});
