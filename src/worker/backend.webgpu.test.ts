/**
 * The chunked AddN on WebGPU (Dawn on SwiftShader in Node): tfjs's own kernel binds every input
 * as a storage buffer and breaks past the device's limit (8 by default, output included).
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { registerNodeWebGpu } from '../testing/node-webgpu';
import { installChunkedAddN } from './backend';

describe('AddN on webgpu with more inputs than storage buffers', () => {
  beforeAll(async () => {
    await registerNodeWebGpu();
    installChunkedAddN();
    await tf.setBackend('webgpu');
  });

  it('sums 1..20 (= 20·21/2 = 210) and 8 vectors exactly, leaking nothing', async () => {
    const scalars = Array.from({ length: 20 }, (_, i) => tf.scalar(i + 1));
    const before = tf.memory().numTensors;
    const total = tf.addN(scalars);
    expect((await total.data())[0]).toBe(210);
    // [k, 2k] for k = 1..8: sums 36 and 72.
    const vectors = Array.from({ length: 8 }, (_, k) => tf.tensor1d([k + 1, 2 * (k + 1)]));
    const sum = tf.addN(vectors);
    expect(Array.from(await sum.data())).toEqual([36, 72]);
    tf.dispose([total, sum]);
    expect(tf.memory().numTensors).toBe(before + vectors.length);
    tf.dispose([...scalars, ...vectors]);
  });
});
