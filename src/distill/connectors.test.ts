import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
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

// applyAt runs a connector at a few locations only (FGFI's mask): the same rows and the same
// gradients as the whole map masked there, on cpu and on wasm (whose gather has no gradient of its own).
describe.each(['cpu', 'wasm'])('connector applyAt (%s)', (backend) => {
  // 3 → 4 channels, and 8 → 16 (on wasm the lab's own convolution kernels take outputs in multiples of 8).
  it.each([
    { k: 3 as const, relu: true, cin: 3, cout: 4 },
    { k: 1 as const, relu: false, cin: 3, cout: 4 },
    { k: 3 as const, relu: true, cin: 8, cout: 16 },
  ])('$k x $k, $cin → $cout channels: equals apply at the locations, values and gradients', async ({ k, relu, cin, cout }) => {
    await tf.setBackend(backend);
    const c = createConvConnectorForTest(k, relu, cin, cout);
    const x = tf.variable(tf.randomNormal([2, 4, 5, cin], 0, 1, 'float32', 11), true, `applyAt_x_${backend}_${k}_${cin}`);
    // Corners, edges and the interior of both images (n·H·W + i·W + j).
    const locations = Int32Array.from([0, 4, 7, 19, 20, 33, 39]);
    const weights = tf.randomNormal([locations.length, cout], 0, 1, 'float32', 12);
    const placed = tf.scatterND(tf.tensor2d(locations, [locations.length, 1], 'int32'), weights, [40, cout]).reshape([2, 4, 5, cout]);
    const before = tf.memory().numTensors;
    let at: { value: tf.Scalar; grads: tf.NamedTensorMap } | undefined;
    const { kernels } = await tf.profile(() => {
      at = tf.variableGrads(() => tf.sum(tf.mul(c.applyAt!(x as tf.Tensor4D, locations), weights)) as tf.Scalar, [x, ...c.variables]);
    });
    // On wasm, 16 outputs of 72 = 3·3·8 inputs per row: the rows' gradients run on the lab's convolution kernels.
    if (backend === 'wasm' && cout === 16) expect(kernels.map((k) => k.name)).toEqual(expect.arrayContaining(['LabConv2D', 'LabFilterGradient']));
    if (!at) throw new Error('no gradients');
    const full = tf.variableGrads(() => tf.sum(tf.mul(c.apply(x as tf.Tensor4D), placed)) as tf.Scalar, [x, ...c.variables]);
    expect(at.value.dataSync()[0]).toBeCloseTo(full.value.dataSync()[0]!, 4);
    for (const v of [x, ...c.variables]) {
      expect(closeArrays(at.grads[v.name]!.dataSync(), full.grads[v.name]!.dataSync(), 1e-4), v.name).toBeNull();
    }
    const rows = c.applyAt!(x as tf.Tensor4D, locations);
    const map = tf.tidy(() => c.apply(x as tf.Tensor4D).reshape([40, cout]));
    const expected = tf.tidy(() => tf.gather(map, tf.tensor1d(locations, 'int32')));
    expect(closeArrays(rows.dataSync(), expected.dataSync(), 1e-5)).toBeNull();
    tf.dispose([at.value, full.value, ...Object.values(at.grads), ...Object.values(full.grads), rows, map, expected]);
    expect(tf.memory().numTensors).toBe(before);
    expect(() => c.applyAt!(x as tf.Tensor4D, Int32Array.of(40))).toThrow(`location 40 is outside a [2,4,5,${cin}] input`);
    tf.dispose([x, weights, placed]);
    c.dispose();
    await tf.setBackend('cpu');
  });
});

function createConvConnectorForTest(k: 1 | 3, relu: boolean, cin = 3, cout = 4) {
  const options = { relu, init: 'uniform' as const, seed: 5 };
  const c = k === 3 ? conv3x3Connector(cin, cout, options) : conv1x1Connector(cin, cout, options);
  // A bias that puts some outputs below zero and some above, so the ReLU's gradient matters.
  (c.variables[1] as tf.Variable).assign(tf.tensor1d(Array.from({ length: cout }, (_, i) => [0.3, -0.2, 0.1, -0.4][i % 4]! * (1 + i / 8))));
  return c;
}

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
