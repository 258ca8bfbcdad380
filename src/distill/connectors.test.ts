import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { conv1x1Connector, conv3x3Connector } from './connectors';
import { createGcBlock } from './gc-block';
import { closeArrays, maxAbs } from './test-support';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('conv connectors', () => {
  it('3x3 uses same padding: a ones kernel sums the 3x3 neighbourhood', () => {
    const c = conv3x3Connector(1, 1, { init: 'zeros' });
    (c.variables[0] as tf.Variable).assign(tf.ones([3, 3, 1, 1]));
    const x = tf.ones([1, 3, 3, 1]) as tf.Tensor4D;
    const y = c.apply(x);
    // Corners see 4 ones, edges 6, the centre 9.
    expect(Array.from(y.dataSync())).toEqual([4, 6, 4, 6, 9, 6, 4, 6, 4]);
    tf.dispose([x, y]);
    c.dispose();
  });

  it('identity init passes features through (ReLU clips negatives)', () => {
    const x = tf.tensor4d([1, -2, 3, -4, 5, 6, -7, 8], [1, 2, 2, 2]);
    const plain = conv3x3Connector(2, 2, { init: 'identity' });
    const relu = conv1x1Connector(2, 2, { init: 'identity', relu: true });
    const y1 = plain.apply(x);
    const y2 = relu.apply(x);
    expect(Array.from(y1.dataSync())).toEqual([1, -2, 3, -4, 5, 6, -7, 8]);
    expect(Array.from(y2.dataSync())).toEqual([1, 0, 3, 0, 5, 6, 0, 8]);
    tf.dispose([x, y1, y2]);
    plain.dispose();
    relu.dispose();
    expect(() => conv1x1Connector(2, 3, { init: 'identity' })).toThrow(/equal channel counts/);
  });

  it('is seeded, small by default, bounded for uniform, and disposes its variables', () => {
    const before = tf.memory().numTensors;
    const a = conv1x1Connector(64, 8, { seed: 5 });
    const b = conv1x1Connector(64, 8, { seed: 5 });
    const u = conv3x3Connector(16, 4, { init: 'uniform', seed: 1 });
    expect(Array.from((a.variables[0] as tf.Variable).dataSync())).toEqual(Array.from((b.variables[0] as tf.Variable).dataSync()));
    expect(maxAbs(a.variables[0] as tf.Variable)).toBeLessThan(0.05); // std 0.01
    expect(maxAbs(a.variables[1] as tf.Variable)).toBe(0); // bias zero
    const bound = 1 / Math.sqrt(16 * 9);
    expect(maxAbs(u.variables[0] as tf.Variable)).toBeLessThanOrEqual(bound);
    expect(maxAbs(u.variables[1] as tf.Variable)).toBeLessThanOrEqual(bound);
    expect(maxAbs(u.variables[1] as tf.Variable)).toBeGreaterThan(0);
    for (const c of [a, b, u]) c.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('says which channel count it expected', () => {
    const c = conv1x1Connector(3, 2, { name: 'adapter_p3' });
    const x = tf.zeros([1, 2, 2, 4]) as tf.Tensor4D;
    expect(() => c.apply(x)).toThrow(/'adapter_p3' expects 3 input channels/);
    x.dispose();
    c.dispose();
  });
});

describe('createGcBlock', () => {
  it('starts as the identity (W2 = 0)', () => {
    const gc = createGcBlock({ channels: 4, seed: 1 });
    const x = tf.randomNormal([2, 3, 3, 4], 0, 1, 'float32', 2) as tf.Tensor4D;
    const y = gc.apply(x);
    expect(closeArrays(y.dataSync(), Array.from(x.dataSync()), 0)).toBeNull();
    expect(gc.variables).toHaveLength(8);
    tf.dispose([x, y]);
    gc.dispose();
  });

  it('computes F + W2·ReLU(LN(W1·context)) with softmax attention pooling', () => {
    const gc = createGcBlock({ channels: 4 });
    const [wk, bk, w1, b1, gamma, beta, w2, b2] = gc.variables as [tf.Variable, ...tf.Variable[]];
    const ln3 = Math.log(3);
    tf.tidy(() => {
      wk.assign(tf.tensor4d([1, 0, 0, 0], [1, 1, 4, 1])); // attention logit = channel 0
      bk?.assign(tf.zeros([1]));
      w1?.assign(tf.tensor2d([1, 0, 0, 1, 0, 0, 0, 0], [4, 2])); // z = context[0..1]
      b1?.assign(tf.zeros([2]));
      gamma?.assign(tf.ones([2]));
      beta?.assign(tf.zeros([2]));
      w2?.assign(tf.tensor2d([1, 2, 3, 4, 5, 6, 7, 8], [2, 4]));
      b2?.assign(tf.tensor1d([0.1, 0, 0, 0]));
    });
    // F [1,1,2,4]: location 0 [0,1,2,3], location 1 [ln3,0,1,0]. Logits 0, ln3 -> weights 1/4, 3/4.
    // context = [0.75 ln3, 0.25, 0.5 + 0.75, 0.75]; z = [0.75 ln3, 0.25].
    // LN over 2 values: ±d / sqrt(d² + 1e-5), d = (0.75 ln3 − 0.25)/2; ReLU keeps only the first (+).
    // added = n·[1,2,3,4] + [0.1,0,0,0], broadcast to both locations.
    const x = tf.tensor4d([0, 1, 2, 3, ln3, 0, 1, 0], [1, 1, 2, 4]);
    const y = gc.apply(x);
    const d = (0.75 * ln3 - 0.25) / 2;
    const n = d / Math.sqrt(d * d + 1e-5);
    const added = [n + 0.1, 2 * n, 3 * n, 4 * n];
    const want = [0, 1, 2, 3, ln3, 0, 1, 0].map((v, i) => v + (added[i % 4] ?? 0));
    expect(closeArrays(y.dataSync(), want, 1e-5)).toBeNull();
    tf.dispose([x, y]);
    gc.dispose();
  });
});
