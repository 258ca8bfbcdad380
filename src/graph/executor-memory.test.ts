import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { beforeAll, describe, expect, it } from 'vitest';
import { readModelArtifacts } from '../models/load-node';
import type { TrainableGraph } from './executor';
import { graphFromArtifacts } from './load';
import type { TfGraphTopology, TfNodeDef } from './model-json';

const models = new URL('../../models/', import.meta.url).pathname;
const b64 = (s: string) => btoa(s);

/**
 * x [1,4,4,2] → _FusedConv2D (3x3, SAME, BiasAdd + Relu) → Reshape [1,48] → _FusedMatMul
 * (BiasAdd + Relu6): every fused op makes intermediates (the conv, the bias-add) that a kernel
 * called outside a tidy would leave behind.
 */
async function fusedGraph(): Promise<{ graph: TrainableGraph; weights: Record<string, tf.Tensor> }> {
  const weights: Record<string, tf.Tensor> = {
    w: tf.randomNormal([3, 3, 2, 3], 0, 1, 'float32', 1),
    b: tf.tensor1d([0.1, -0.2, 0.3]),
    shape: tf.tensor1d([1, 48], 'int32'),
    m: tf.randomNormal([48, 2], 0, 1, 'float32', 2),
    c: tf.tensor1d([0.5, -0.5]),
  };
  const konst = (name: string, dtype = 'DT_FLOAT'): TfNodeDef => ({ name, op: 'Const', attr: { dtype: { type: dtype } } });
  const topology: TfGraphTopology = {
    node: [
      { name: 'x', op: 'Placeholder', attr: { dtype: { type: 'DT_FLOAT' }, shape: { shape: { dim: [{ size: 1 }, { size: 4 }, { size: 4 }, { size: 2 }] } } } },
      konst('w'),
      konst('b'),
      konst('shape', 'DT_INT32'),
      konst('m'),
      konst('c'),
      {
        name: 'conv',
        op: '_FusedConv2D',
        input: ['x', 'w', 'b'],
        attr: {
          strides: { list: { i: [1, 1, 1, 1] } },
          padding: { s: b64('SAME') },
          data_format: { s: b64('NHWC') },
          fused_ops: { list: { s: [b64('BiasAdd'), b64('Relu')] } },
        },
      },
      { name: 'flat', op: 'Reshape', input: ['conv', 'shape'] },
      { name: 'dense', op: '_FusedMatMul', input: ['flat', 'm', 'c'], attr: { fused_ops: { list: { s: [b64('BiasAdd'), b64('Relu6')] } } } },
    ],
  };
  const encoded = await tf.io.encodeWeights(weights);
  const graph = graphFromArtifacts({ modelTopology: topology, weightSpecs: encoded.specs, weightData: encoded.data, format: 'graph-model' });
  return { graph, weights };
}

/** Tensors alive after `f` (whose results it disposes itself) minus those alive before. */
function leakedBy(f: () => void): number {
  const before = tf.memory().numTensors;
  f();
  return tf.memory().numTensors - before;
}

function forwardAndStep(graph: TrainableGraph, x: tf.Tensor, outputs: string[]): { forward: number; step: number } {
  const forward = leakedBy(() => tf.dispose(graph.execute(x, outputs)));
  const step = leakedBy(() => {
    const { value, grads } = tf.variableGrads(() => tf.addN(graph.execute(x, outputs).map((t) => t.square().mean())) as tf.Scalar, graph.trainableVariables());
    expect(Object.keys(grads)).toHaveLength(graph.trainableVariables().length);
    tf.dispose([value, ...Object.values(grads)]);
  });
  return { forward, step };
}

describe('the executor frees what fused ops make', () => {
  beforeAll(async () => {
    await tf.setBackend('wasm');
  });

  it('a hand-made _FusedConv2D + _FusedMatMul graph: same values as the plain ops, no tensor left after forward or a training step', async () => {
    const { graph, weights } = await fusedGraph();
    const x = tf.randomNormal([1, 4, 4, 2], 0, 1, 'float32', 3);
    const [y] = graph.execute(x, ['dense']);
    const expected = tf.tidy(() => {
      const conv = tf.relu(tf.conv2d(x as tf.Tensor4D, weights.w as tf.Tensor4D, 1, 'same').add(weights.b!));
      return tf.relu6(conv.reshape([1, 48]).matMul(weights.m as tf.Tensor2D).add(weights.c!));
    });
    expect(Array.from(y!.dataSync())).toEqual(Array.from(expected.dataSync()).map((v) => expect.closeTo(v, 5)));
    tf.dispose([y!, expected]);
    expect(forwardAndStep(graph, x, ['dense'])).toEqual({ forward: 0, step: 0 });
    tf.dispose([x, ...Object.values(weights)]);
    graph.dispose();
  });

  it('CenterNet (62 _FusedConv2D, 15 fused depthwise) at 128x128: no tensor left after forward or a training step', () => {
    const graph = graphFromArtifacts(readModelArtifacts(join(models, 'centernet.json')));
    const x = tf.randomUniform([1, 128, 128, 3], 0, 255, 'float32', 5);
    const heads = ['tower_0/CenternetHead/centernet_cls_output/BiasAdd', 'tower_0/CenternetHead/centernet_wh_output/BiasAdd'];
    expect(forwardAndStep(graph, x, heads)).toEqual({ forward: 0, step: 0 });
    x.dispose();
    graph.dispose();
  });

  // The first run at another input size first runs the graph at the declared 512x512 to learn its
  // baked shapes. Inside a recorded step that run would hold every saved activation of a 512 forward
  // (586 MB against 40 MB at 128) until backprop: it must stay off the tape.
  it('the first training step at 128x128 holds no more than the second (the 512x512 reference run is not recorded)', () => {
    const graph = graphFromArtifacts(readModelArtifacts(join(models, 'centernet.json')));
    const x = tf.randomUniform([1, 128, 128, 3], 0, 255, 'float32', 5);
    const heads = ['tower_0/CenternetHead/centernet_cls_output/BiasAdd'];
    const heldAfterForward = () => {
      const before = tf.memory().numTensors;
      let held = 0;
      const { value, grads } = tf.variableGrads(() => {
        const [y] = graph.execute(x, heads);
        held = tf.memory().numTensors - before;
        return y!.square().mean() as tf.Scalar;
      }, graph.trainableVariables());
      tf.dispose([value, ...Object.values(grads)]);
      return held;
    };
    const first = heldAfterForward();
    expect(first).toBe(heldAfterForward());
    x.dispose();
    graph.dispose();
  });
});

describe('batch following', () => {
  it('names, before any run at another batch, the Reshape that folds the batch (CenterNet), and none in NanoDet-g', async () => {
    await tf.setBackend('wasm');
    const centernet = graphFromArtifacts(readModelArtifacts(join(models, 'centernet.json')), { trainable: false });
    expect(centernet.batchBoundNodes(['tower_0/CenternetHead/centernet_wh_output/BiasAdd'])).toEqual([]);
    expect(centernet.batchBoundNodes(['tower_0/detections']).map((b) => b.node)).toContain('tower_0/BatchGather/Reshape_2');
    expect(centernet.batchBoundNodes(['tower_0/detections']).find((b) => b.node === 'tower_0/BatchGather/Reshape_2')).toEqual({
      node: 'tower_0/BatchGather/Reshape_2',
      target: [16384, 4],
      input: [1, 128, 128, 4],
    });
    centernet.dispose();
    const nanodet = graphFromArtifacts(readModelArtifacts(join(models, 'nanodet.json')), { trainable: false });
    expect(nanodet.batchBoundNodes(['PartitionedCall/Add_29', 'PartitionedCall/Add_33', 'PartitionedCall/Add_37'])).toEqual([]);
    nanodet.dispose();
  });

  it("CenterNet's heads follow batch 2; its detections, whose Reshape folds the batch into [16384,4], fail naming that node", async () => {
    await tf.setBackend('wasm');
    const graph = graphFromArtifacts(readModelArtifacts(join(models, 'centernet.json')), { trainable: false });
    const x = tf.randomUniform([2, 128, 128, 3], 0, 255, 'float32', 8);
    const head = 'tower_0/CenternetHead/centernet_wh_output/BiasAdd';
    const [both] = graph.execute(x, [head]);
    const second = x.slice([1, 0, 0, 0], [1, 128, 128, 3]);
    const [alone] = graph.execute(second, [head]);
    expect(both!.shape).toEqual([2, 32, 32, 4]);
    const diff = tf.tidy(() => tf.abs(tf.sub(both!.slice([1, 0, 0, 0], [1, 32, 32, 4]), alone!)).max().dataSync()[0]!);
    expect(diff).toBeLessThan(1e-3);
    const before = tf.memory().numTensors;
    expect(() => graph.execute(x, ['tower_0/detections'])).toThrow(
      'Reshape node "tower_0/BatchGather/Reshape_2" bakes the batch into its target [16384,4] (its input is [1,128,128,4] at the declared input shape), so this part of the graph runs at batch 1 only, not 2.',
    );
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, second, both!, alone!]);
    graph.dispose();
  });
});
