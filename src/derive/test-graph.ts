/** A small graph with two prunable units, a concat and a sum, for the derivation's tests. */
import * as tf from '@tensorflow/tfjs-core';
import { graphFromArtifacts } from '../graph/load';
import type { TfGraphTopology, TfNodeDef } from '../graph/model-json';
import { artifactsFromParts, type GraphParts } from '../graph/surgery';

const b64 = (s: string) => btoa(s);
const konst = (name: string, dtype = 'DT_FLOAT'): TfNodeDef => ({ name, op: 'Const', attr: { dtype: { type: dtype } } });
const conv = (name: string, x: string, w: string, padding = 'SAME'): TfNodeDef => ({
  name,
  op: 'Conv2D',
  input: [x, w],
  attr: { strides: { list: { i: [1, 1, 1, 1] } }, padding: { s: b64(padding) }, data_format: { s: b64('NHWC') } },
});
const placeholder = (c: number): TfNodeDef => ({ name: 'x', op: 'Placeholder', attr: { dtype: { type: 'DT_FLOAT' }, shape: { shape: { dim: [1, 6, 6, c].map((size) => ({ size })) } } } });

/**
 * x → convA (3x3, 2→4) + bA → LeakyRelu → convB (3x3, 4→3) + bB  ─┐
 *  └→ convC (1x1, 2→2) → Relu ─────────────┐                       │
 *      concat(LeakyRelu_A, Relu_C) → convD (1x1, 6→2) + bD ─ Add ──┘ (a sum of two tensors: convB's and convD's outputs stay whole)
 */
export function graphParts(seed = 1): GraphParts {
  const weights: tf.NamedTensorMap = {
    wA: tf.randomNormal([3, 3, 2, 4], 0, 0.5, 'float32', seed),
    bA: tf.tensor1d([0.1, -0.2, 0.3, 0.05]),
    wB: tf.randomNormal([3, 3, 4, 3], 0, 0.5, 'float32', seed + 1),
    bB: tf.tensor1d([0.2, 0, -0.1]),
    wC: tf.randomNormal([1, 1, 2, 2], 0, 0.5, 'float32', seed + 2),
    wD: tf.randomNormal([1, 1, 6, 3], 0, 0.5, 'float32', seed + 3),
    bD: tf.tensor1d([0, 0.1, 0.2]),
    axis: tf.scalar(3, 'int32'),
  };
  const topology: TfGraphTopology = {
    node: [
      placeholder(2),
      ...['wA', 'bA', 'wB', 'bB', 'wC', 'wD', 'bD'].map((n) => konst(n)),
      konst('axis', 'DT_INT32'),
      conv('convA', 'x', 'wA'),
      { name: 'addA', op: 'Add', input: ['convA', 'bA'] },
      { name: 'actA', op: 'LeakyRelu', input: ['addA'], attr: { alpha: { f: 0.1 } } },
      conv('convB', 'actA', 'wB'),
      { name: 'addB', op: 'Add', input: ['convB', 'bB'] },
      conv('convC', 'x', 'wC'),
      { name: 'actC', op: 'Relu', input: ['convC'] },
      { name: 'cat', op: 'ConcatV2', input: ['actA', 'actC', 'axis'] },
      conv('convD', 'cat', 'wD'),
      { name: 'addD', op: 'Add', input: ['convD', 'bD'] },
      { name: 'sum', op: 'AddV2', input: ['addB', 'addD'] },
    ],
  };
  return { topology, weights };
}

export async function graphOf(parts: GraphParts, trainable = false) {
  return graphFromArtifacts(await artifactsFromParts(parts), { trainable });
}

