import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { beforeAll, describe, expect, it } from 'vitest';
import { readModelArtifacts } from '../models/load-node';
import { MissingGradientsError, type TrainableGraph } from './executor';
import { graphFromArtifacts } from './load';
import type { TfGraphTopology, TfNodeDef } from './model-json';

const models = new URL('../../models/', import.meta.url).pathname;
const b64 = (s: string) => btoa(s);
const konst = (name: string, dtype = 'DT_FLOAT'): TfNodeDef => ({ name, op: 'Const', attr: { dtype: { type: dtype } } });

/**
 * x [1,4,4,1] → Conv2D (1x1, weight w = 2) → conv; slice = conv[:, ::2, 1::2, :] (StridedSlice);
 * flat = Reshape(slice, Shape(slice)); gate = Greater(slice, 0) → Cast → gated = slice · gate;
 * a signature names "gated" under the key "scores".
 */
async function smallGraph(): Promise<TrainableGraph> {
  const weights: Record<string, tf.Tensor> = {
    w: tf.tensor4d([2], [1, 1, 1, 1]),
    begin: tf.tensor1d([0, 0, 1, 0], 'int32'),
    end: tf.tensor1d([0, 0, 0, 0], 'int32'),
    strides: tf.tensor1d([1, 2, 2, 1], 'int32'),
    zero: tf.scalar(0),
  };
  const topology: TfGraphTopology = {
    node: [
      { name: 'x', op: 'Placeholder', attr: { dtype: { type: 'DT_FLOAT' }, shape: { shape: { dim: [{ size: 1 }, { size: 4 }, { size: 4 }, { size: 1 }] } } } },
      konst('w'),
      konst('begin', 'DT_INT32'),
      konst('end', 'DT_INT32'),
      konst('strides', 'DT_INT32'),
      konst('zero'),
      { name: 'conv', op: 'Conv2D', input: ['x', 'w'], attr: { strides: { list: { i: [1, 1, 1, 1] } }, padding: { s: b64('VALID') } } },
      { name: 'slice', op: 'StridedSlice', input: ['conv', 'begin', 'end', 'strides'], attr: { begin_mask: { i: 11 }, end_mask: { i: 15 } } },
      { name: 'shape', op: 'Shape', input: ['slice'] },
      { name: 'flat', op: 'Reshape', input: ['slice', 'shape'] },
      { name: 'gate', op: 'Greater', input: ['slice', 'zero'] },
      { name: 'mask', op: 'Cast', input: ['gate'], attr: { DstT: { type: 'DT_FLOAT' } } },
      { name: 'gated', op: 'Mul', input: ['slice', 'mask'] },
    ],
  };
  const encoded = await tf.io.encodeWeights(weights);
  tf.dispose(Object.values(weights));
  const signature = { outputs: { scores: { name: 'gated:0' } } };
  return graphFromArtifacts({ modelTopology: topology, weightSpecs: encoded.specs, weightData: encoded.data, format: 'graph-model', signature });
}

describe('nodes without a gradient, named before training', () => {
  beforeAll(async () => {
    await tf.setBackend('wasm');
  });

  it('trains through StridedSlice and a Shape → Reshape, and names the Greater that tfjs cannot backprop', async () => {
    const graph = await smallGraph();
    const x = tf.tensor4d([1, -2, 3, -4, 5, 6, 7, 8, -9, 10, -11, 12, 13, 14, 15, 16], [1, 4, 4, 1]);
    expect(graph.gradientGaps(['flat'])).toEqual([]);
    // d/dw Σ flat = Σ of x at rows 0, 2 and columns 1, 3: −2 − 4 + 10 + 12 = 16.
    const { value, grads } = tf.variableGrads(() => graph.execute(x, ['flat'])[0]!.sum() as tf.Scalar, graph.trainableVariables());
    expect(Array.from(grads[graph.trainableVariables()[0]!.name]!.dataSync())).toEqual([16]);
    tf.dispose([value, ...Object.values(grads)]);

    expect(graph.gradientGaps(['gated'])).toEqual([{ node: 'gate', op: 'Greater', reason: 'tfjs has no gradient for Greater' }]);
    expect(() => graph.assertGradients(['scores'])).toThrow(MissingGradientsError);
    expect(() => graph.assertGradients(['gated'])).toThrow('- gate (Greater): tfjs has no gradient for Greater');
    // What the report prevents: tfjs's own error in backprop, which names no node.
    expect(() => tf.variableGrads(() => graph.execute(x, ['gated'])[0]!.sum() as tf.Scalar, graph.trainableVariables())).toThrow(/gradient function not found for Greater/);
    // Frozen weights: nothing to differentiate, nothing to report.
    graph.freeze(['w']);
    expect(graph.gradientGaps(['gated'])).toEqual([]);
    x.dispose();
    graph.dispose();
  });

  it("CenterNet: its head outputs train; its detections pass Equal, TopKV2 and (on wasm) GatherV2's UnsortedSegmentSum", () => {
    const graph = graphFromArtifacts(readModelArtifacts(join(models, 'centernet.json')));
    expect(graph.gradientGaps(['tower_0/CenternetHead/centernet_cls_output/BiasAdd', 'tower_0/wh'])).toEqual([]);
    expect(graph.gradientGaps(['tower_0/detections'])).toEqual([
      { node: 'tower_0/Equal', op: 'Equal', reason: 'tfjs has no gradient for Equal' },
      { node: 'tower_0/TopKV2', op: 'TopKV2', reason: 'tfjs has no gradient for TopKV2' },
      { node: 'tower_0/BatchGather/GatherV2', op: 'GatherV2', reason: 'its gradient needs the UnsortedSegmentSum kernel, which the wasm backend lacks' },
    ]);
    graph.dispose();
  });
});

describe('outputs by signature key', () => {
  it('execute() takes the signature\'s output keys as tf.GraphModel does, and node names as before', async () => {
    await tf.setBackend('wasm');
    const graph = await smallGraph();
    const x = tf.tensor4d([1, -2, 3, -4, 5, 6, 7, 8, -9, 10, -11, 12, 13, 14, 15, 16], [1, 4, 4, 1]);
    // slice = 2·x at rows 0, 2 and columns 1, 3 = [[−4, −8], [20, 24]]; gated keeps the positive ones.
    const [byKey, byName] = graph.execute(x, ['scores', 'gated']);
    expect(byKey!.shape).toEqual([1, 2, 2, 1]);
    expect(Array.from(byKey!.dataSync(), (v) => v + 0)).toEqual([0, 0, 20, 24]); // + 0: −4·0 is −0
    expect(Array.from(byName!.dataSync())).toEqual(Array.from(byKey!.dataSync()));
    expect(graph.outputs).toEqual(['gated']);
    expect(() => graph.execute(x, ['nope'])).toThrow('No node named "nope"');
    tf.dispose([x, byKey!, byName!]);
    graph.dispose();
  });
});
