import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { describe, expect, it } from 'vitest';
import type { TrainableGraph } from './executor';
import { composePerms, isIdentityPerm } from './layout';
import { graphFromArtifacts } from './load';
import type { TfGraphTopology, TfNodeDef } from './model-json';

const b64 = (s: string) => btoa(s);
const konst = (name: string, dtype = 'DT_FLOAT'): TfNodeDef => ({ name, op: 'Const', attr: { dtype: { type: dtype } } });

describe('permutations', () => {
  it('compose as transposes do, and the NCHW round trip is the identity', async () => {
    await tf.setBackend('cpu');
    expect(composePerms([0, 3, 1, 2], [0, 2, 3, 1])).toEqual([0, 1, 2, 3]);
    expect(isIdentityPerm(composePerms([0, 3, 1, 2], [0, 2, 3, 1]))).toBe(true);
    // transpose(transpose(x, p), q) for a concrete x: shape [2,3,4,5] → p → q.
    const x = tf.range(0, 120).reshape([2, 3, 4, 5]);
    const p = [1, 3, 0, 2];
    const q = [2, 0, 3, 1];
    const twice = tf.transpose(tf.transpose(x, p), q);
    const once = tf.transpose(x, composePerms(p, q));
    expect(once.shape).toEqual(twice.shape);
    expect(Array.from(once.dataSync())).toEqual(Array.from(twice.dataSync()));
    tf.dispose([x, twice, once]);
  });
});

/**
 * The pattern of graphs converted from PyTorch: NHWC input → Transpose to NCHW → LeakyRelu → + a
 * per-channel bias [1,C,1,1] → Pad (NCHW pads) → Transpose to NHWC → Conv2D → Transpose to NCHW
 * → ConcatV2 with its square on axis 1 → SplitV on axis 1 → one part read as it is (NCHW), the
 * other transposed back to NHWC.
 */
async function nchwGraph(): Promise<TrainableGraph> {
  const weights: Record<string, tf.Tensor> = {
    toNchw: tf.tensor1d([0, 3, 1, 2], 'int32'),
    toNhwc: tf.tensor1d([0, 2, 3, 1], 'int32'),
    bias: tf.tensor4d([0.5, -1, 2], [1, 3, 1, 1]),
    pads: tf.tensor2d([0, 0, 0, 0, 1, 1, 1, 0], [4, 2], 'int32'),
    w: tf.randomNormal([3, 3, 3, 4], 0, 0.5, 'float32', 11),
    axis: tf.scalar(1, 'int32'),
    sizes: tf.tensor1d([3, 5], 'int32'),
  };
  const topology: TfGraphTopology = {
    node: [
      { name: 'x', op: 'Placeholder', attr: { dtype: { type: 'DT_FLOAT' }, shape: { shape: { dim: [{ size: 2 }, { size: 5 }, { size: 6 }, { size: 3 }] } } } },
      konst('toNchw', 'DT_INT32'),
      konst('toNhwc', 'DT_INT32'),
      konst('bias'),
      konst('pads', 'DT_INT32'),
      konst('w'),
      konst('axis', 'DT_INT32'),
      konst('sizes', 'DT_INT32'),
      { name: 't1', op: 'Transpose', input: ['x', 'toNchw'] },
      { name: 'act', op: 'LeakyRelu', input: ['t1'], attr: { alpha: { f: 0.1 } } },
      { name: 'biased', op: 'AddV2', input: ['bias', 'act'] }, // the constant first
      { name: 'padded', op: 'Pad', input: ['biased', 'pads'] },
      { name: 't2', op: 'Transpose', input: ['padded', 'toNhwc'] },
      { name: 'conv', op: 'Conv2D', input: ['t2', 'w'], attr: { strides: { list: { i: [1, 1, 1, 1] } }, padding: { s: b64('VALID') } } },
      { name: 't3', op: 'Transpose', input: ['conv', 'toNchw'] },
      { name: 'sq', op: 'Mul', input: ['t3', 't3'] },
      { name: 'cat', op: 'ConcatV2', input: ['t3', 'sq', 'axis'], attr: { N: { i: 2 } } },
      { name: 'split', op: 'SplitV', input: ['cat', 'sizes', 'axis'], attr: { num_split: { i: 2 } } },
      { name: 'back', op: 'Transpose', input: ['split:1', 'toNhwc'] },
    ],
  };
  const encoded = await tf.io.encodeWeights(weights);
  const graph = graphFromArtifacts({ modelTopology: topology, weightSpecs: encoded.specs, weightData: encoded.data, format: 'graph-model' });
  tf.dispose(Object.values(weights));
  return graph;
}

/** The same computation written directly in NHWC, with tfjs ops. */
function reference(x: tf.Tensor4D, w: tf.Tensor4D): [tf.Tensor, tf.Tensor] {
  const act = tf.leakyRelu(x, 0.1);
  const biased = tf.add(act, tf.tensor1d([0.5, -1, 2]));
  const padded = tf.pad(biased, [[0, 0], [1, 1], [1, 0], [0, 0]]);
  const conv = tf.conv2d(padded as tf.Tensor4D, w, 1, 'valid');
  const cat = tf.concat([conv, tf.mul(conv, conv)], 3);
  const [a, b] = tf.split(cat, [3, 5], 3);
  return [tf.transpose(a!, [0, 3, 1, 2]), b!];
}

describe('deferred transposes in the executor', () => {
  it('give the outputs and gradients of the graph as written, and move data only where needed', async () => {
    await tf.setBackend('wasm');
    const graph = await nchwGraph();
    const x = tf.randomNormal([2, 5, 6, 3], 0, 1, 'float32', 12) as tf.Tensor4D;
    const w = [...graph.variables.values()].find((v) => v.shape.length === 4 && v.shape[3] === 4)! as unknown as tf.Tensor4D;
    const r0 = tf.randomNormal([2, 3, 5, 5], 0, 1, 'float32', 13);
    const r1 = tf.randomNormal([2, 5, 5, 5], 0, 1, 'float32', 14);

    const [ref0, ref1] = reference(x, w);
    const profile = await tf.profile(() => graph.execute(x, ['split', 'back']));
    const [out0, out1] = profile.result as tf.Tensor[];
    expect(out0!.shape).toEqual([2, 3, 5, 5]);
    expect(out1!.shape).toEqual([2, 5, 5, 5]);
    expect(tf.max(tf.abs(tf.sub(out0!, ref0))).dataSync()[0]).toBeLessThan(1e-5);
    expect(tf.max(tf.abs(tf.sub(out1!, ref1))).dataSync()[0]).toBeLessThan(1e-5);
    // Four Transpose nodes in the graph; the kernels run: the bias [1,3,1,1] brought to NHWC,
    // the NCHW output read as it is, and the channel concat of two equal parts, which is one
    // (ops/side-by-side.ts). t1·t2 and t3·back compose to the identity.
    expect(profile.kernels.filter((k) => k.name === 'Transpose').length).toBe(3);

    const loss = (a: tf.Tensor, b: tf.Tensor, s0: tf.Tensor, s1: tf.Tensor) => tf.add(tf.sum(tf.mul(a, s0)), tf.sum(tf.mul(b, s1))) as tf.Scalar;
    const before = tf.memory().numTensors;
    const { value, grads } = tf.variableGrads(() => {
      const [a, b] = graph.execute(x, ['split', 'back']);
      return loss(a!, b!, r0, r1);
    }, graph.trainableVariables());
    const mine = Array.from(grads[(w as unknown as tf.Variable).name]!.dataSync());
    tf.dispose([value, ...Object.values(grads)]);
    expect(tf.memory().numTensors).toBe(before);
    const arrays = [x, w, r0, r1].map((t) => ({ values: t.dataSync().slice(), shape: t.shape }));
    tf.dispose([x, r0, r1, ref0, ref1, out0!, out1!]);

    // tfjs-wasm has no convolution backprop kernels: the reference gradient runs on cpu.
    await tf.setBackend('cpu');
    const [xc, wc, s0, s1] = arrays.map((a) => tf.tensor(a.values, a.shape));
    const refGrad = tf.grad((wv: tf.Tensor) => {
      const [a, b] = reference(xc as tf.Tensor4D, wv as tf.Tensor4D);
      return loss(a, b, s0!, s1!);
    })(wc!);
    const expected = Array.from(refGrad.dataSync());
    const scale = Math.max(...expected.map(Math.abs));
    expect(Math.max(...mine.map((v, i) => Math.abs(v - expected[i]!))) / scale).toBeLessThan(1e-5);
    tf.dispose([xc!, wc!, s0!, s1!, refGrad]);
    await tf.setBackend('wasm');
    graph.dispose();
  });
});
