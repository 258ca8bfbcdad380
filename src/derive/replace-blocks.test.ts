import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { beforeAll, describe, expect, it } from 'vitest';
import { graphFromArtifacts } from '../graph/load';
import type { TfGraphTopology, TfNodeDef } from '../graph/model-json';
import { artifactsFromParts, type GraphParts } from '../graph/surgery';
import { refitConvolutions } from './refit';
import { replaceBlocksWithConv } from './replace-blocks';

const b64 = (s: string) => btoa(s);
const konst = (name: string, dtype = 'DT_FLOAT'): TfNodeDef => ({ name, op: 'Const', attr: { dtype: { type: dtype } } });

/** NCHW activations around NHWC convs, as NanoDet's graph: x → [3x3 conv + bias → LeakyReLU] (the block) → 1x1 head conv. */
function graphParts(): GraphParts {
  const weights: tf.NamedTensorMap = {
    w: tf.randomNormal([3, 3, 3, 3], 0, 0.4, 'float32', 1),
    b: tf.tensor1d([0.1, -0.1, 0.2]),
    h: tf.randomNormal([1, 1, 3, 2], 0, 0.5, 'float32', 2),
    toNhwc: tf.tensor1d([0, 2, 3, 1], 'int32'),
  };
  const conv = (name: string, x: string, w: string): TfNodeDef => ({
    name,
    op: 'Conv2D',
    input: [x, w],
    attr: { strides: { list: { i: [1, 1, 1, 1] } }, padding: { s: b64('SAME') }, data_format: { s: b64('NHWC') } },
  });
  const topology: TfGraphTopology = {
    node: [
      { name: 'x', op: 'Placeholder', attr: { dtype: { type: 'DT_FLOAT' }, shape: { shape: { dim: [1, 3, 8, 8].map((size) => ({ size })) } } } },
      konst('w'),
      konst('b'),
      konst('h'),
      konst('toNhwc', 'DT_INT32'),
      konst('toNchw', 'DT_INT32'),
      { name: 'in', op: 'Transpose', input: ['x', 'toNhwc'] },
      conv('conv', 'in', 'w'),
      { name: 'add', op: 'Add', input: ['conv', 'b'] },
      { name: 'out', op: 'Transpose', input: ['add', 'toNchw'] },
      { name: 'act', op: 'LeakyRelu', input: ['out'], attr: { alpha: { f: 0.1 } } },
      { name: 'in2', op: 'Transpose', input: ['act', 'toNhwc'] },
      conv('head', 'in2', 'h'),
    ],
  };
  weights.toNchw = tf.tensor1d([0, 3, 1, 2], 'int32');
  return { topology, weights };
}

/** Smooth images (like photos, neighbours agree): coarse noise upsampled, NCHW. */
const smooth = (n: number, seed: number) =>
  tf.tidy(() => tf.image.resizeBilinear(tf.randomNormal([n, 3, 3, 3], 0, 1, 'float32', seed) as tf.Tensor4D, [8, 8], true).transpose([0, 3, 1, 2]) as tf.Tensor4D);

describe('replacing a block by a fitted 1x1 convolution', () => {
  beforeAll(async () => {
    await tf.setBackend('wasm');
  });

  it('starts as the identity (the block removed) and the fit brings the output closer to the teacher than removal', async () => {
    const parts = graphParts();
    const teacher = graphFromArtifacts(await artifactsFromParts(parts), { trainable: false });
    const { parts: replacedParts, replaced } = replaceBlocksWithConv(parts, [{ input: 'x', output: 'act', channels: 3 }], ['head']);
    expect(replacedParts.topology.node.some((n) => n.name === 'conv')).toBe(false);
    const student = graphFromArtifacts(await artifactsFromParts(replacedParts), { trainable: true });
    const probe = smooth(4, 7);
    const errorAt = () =>
      tf.tidy(() => {
        const [t] = teacher.execute(probe, ['act']);
        const [s] = student.execute(probe, [replaced[0]!.replacement]);
        return tf.mean(tf.squaredDifference(t!, s!)).dataSync()[0]!;
      });
    // Before the fit: LeakyReLU(identity) of the input.
    const identity = tf.tidy(() => {
      const [t] = teacher.execute(probe, ['act']);
      return tf.mean(tf.squaredDifference(t!, tf.leakyRelu(probe, 0.1))).dataSync()[0]!;
    });
    expect(errorAt()).toBeCloseTo(identity, 5);
    const batches = [0, 1].map((i) => smooth(8, 30 + i));
    const [report] = await refitConvolutions(replacedParts.topology, student, teacher, [
      { conv: replaced[0]!.conv, filter: replaced[0]!.filter, bias: replaced[0]!.bias, target: replaced[0]!.biasAdd, reference: { node: 'act', layout: 'NCHW', inverseLeakyRelu: 0.1 } },
    ], batches, { rowsPerImage: 64 });
    const fitted = errorAt();
    expect(fitted).toBeLessThan(0.6 * identity);
    expect(report!.errorAfter).toBeLessThan(report!.errorBefore);
    tf.dispose([probe, ...batches]);
    teacher.dispose();
    student.dispose();
  });
});
