/**
 * The packed optimizer on WebGPU (Dawn on SwiftShader in Node) against the cpu backend: joining
 * more variables than a shader binds buffers (concat and split over 12 parts), Adam with decoupled
 * decay, the weight average, a change of the set that has gradients, and the swap of averages.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { registerNodeWebGpu } from '../testing/node-webgpu';
import { Optimizer } from './optimizer';

const SHAPES = Array.from({ length: 12 }, (_, k) => (k % 3 === 0 ? [k + 1] : k % 3 === 1 ? [2, k] : [1, 2, 2, k]));

async function train(backend: string): Promise<{ weights: number[][]; averages: number[][] }> {
  await tf.setBackend(backend);
  const values = (k: number, seed: number) => tf.tensor(Array.from({ length: SHAPES[k]!.reduce((a, b) => a * b) }, (_, i) => Math.cos(seed * 5 + k + i * 0.7)), SHAPES[k]);
  const vars = SHAPES.map((_, k) => tf.variable(values(k, 0), true, `opt_webgpu_${backend}_${k}`));
  const optimizer = new Optimizer('adam', { weightDecay: 0.05, averageDecay: 0.9 });
  for (let step = 1; step <= 4; step++) {
    // Step 3 leaves out the first three variables.
    const present = step === 3 ? vars.slice(3) : vars;
    const grads = Object.fromEntries(present.map((v) => [v.name, values(vars.indexOf(v), step)]));
    optimizer.apply(present, grads, 0.01);
    tf.dispose(Object.values(grads));
  }
  const weights = await Promise.all(vars.map(async (v) => Array.from(await v.data())));
  optimizer.swapAverages(vars);
  const averages = await Promise.all(vars.map(async (v) => Array.from(await v.data())));
  tf.dispose(vars);
  optimizer.dispose();
  return { weights, averages };
}

describe('the packed optimizer on WebGPU', () => {
  beforeAll(async () => {
    await registerNodeWebGpu();
  });

  it('updates and averages twelve variables as the cpu backend does', async () => {
    const cpu = await train('cpu');
    const gpu = await train('webgpu');
    for (const part of ['weights', 'averages'] as const) {
      cpu[part].forEach((expected, k) => gpu[part][k]!.forEach((x, i) => expect(x).toBeCloseTo(expected[i]!, 5)));
    }
    // The updates moved the weights (each Adam step moves an element by about lr, 0.01).
    const moved = cpu.weights.flatMap((w, k) => w.map((x, i) => Math.abs(x - Math.cos(k + i * 0.7))));
    expect(Math.max(...moved)).toBeGreaterThan(0.025);
  }, 120_000);
});
