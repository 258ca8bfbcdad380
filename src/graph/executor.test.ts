import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readModelArtifacts } from '../models/load-node';
import { UnsupportedOpsError, followReshape } from './executor';
import { graphFromArtifacts } from './load';
import type { TfGraphTopology } from './model-json';

const models = new URL('../../models/', import.meta.url).pathname;
const nanodet = () => readModelArtifacts(join(models, 'nanodet.json'));
const centernet = () => readModelArtifacts(join(models, 'centernet.json'));

/** Largest |a − b| relative to the largest |b|: "1e-5 relative" in the requirement. */
async function relDiff(a: tf.Tensor, b: tf.Tensor): Promise<number> {
  expect(a.shape).toEqual(b.shape);
  const [da, db] = await Promise.all([a.data(), b.data()]);
  let maxDiff = 0;
  let scale = 1e-12;
  for (let i = 0; i < db.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(da[i]! - db[i]!));
    scale = Math.max(scale, Math.abs(db[i]!));
  }
  return maxDiff / scale;
}

const NANODET_HEADS = ['PartitionedCall/Add_29', 'PartitionedCall/Add_33', 'PartitionedCall/Add_37'];
const NANODET_TAPS = ['PartitionedCall/onnx_tf_prefix_Concat_62', 'PartitionedCall/onnx_tf_prefix_Add_107', 'PartitionedCall/onnx_tf_prefix_LeakyRelu_173'];
const NANODET_OUTPUTS = ['Identity', 'Identity_1', 'Identity_2', 'Identity_3', 'Identity_4', 'Identity_5'];

describe('TrainableGraph against tf.GraphModel', () => {
  beforeAll(async () => {
    await tf.setBackend('wasm');
  });

  it('NanoDet-g on wasm at 416: final outputs, head outputs and taps, all in one run', async () => {
    const artifacts = nanodet();
    const reference = await tf.loadGraphModel(tf.io.fromMemory(artifacts));
    const graph = graphFromArtifacts(artifacts, { trainable: true });
    const x = tf.randomNormal([1, 3, 416, 416], 0, 1, 'float32', 3);
    const names = [...NANODET_OUTPUTS, ...NANODET_HEADS, ...NANODET_TAPS];
    const expected = reference.execute({ input_1: x }, names) as tf.Tensor[];
    const before = tf.memory().numTensors;
    const actual = graph.execute(x, names);
    expect(tf.memory().numTensors - before).toBe(names.length);
    for (let i = 0; i < names.length; i++) expect(await relDiff(actual[i]!, expected[i]!), names[i]).toBeLessThan(1e-5);
    expect(graph.parameterCount()).toBe(3_786_068);
    // 69 float weights, one of them a scalar (PadV2's pad value): a constant, not a parameter.
    expect(graph.variables.size).toBe(68);
    tf.dispose([x, ...expected, ...actual]);
    reference.dispose();
    graph.dispose();
  });

  it('runs a layer written as Conv2D, bias Add, Transpose and LeakyRelu as one fused kernel; its inner nodes asked for by name keep their values', async () => {
    const artifacts = nanodet();
    const reference = await tf.loadGraphModel(tf.io.fromMemory(artifacts));
    const graph = graphFromArtifacts(artifacts, { trainable: true });
    const byName = new Map(graph.nodeList().map((n) => [n.name, n]));
    const activation = 'PartitionedCall/onnx_tf_prefix_LeakyRelu_173';
    const transpose = byName.get(activation)!.inputs[0]!;
    const add = byName.get(transpose)!.inputs[0]!;
    const conv = byName.get(add)!.inputs.find((i) => byName.get(i)?.op === 'Conv2D')!;
    expect([byName.get(transpose)!.op, byName.get(add)!.op, byName.get(conv)!.op]).toEqual(['Transpose', 'Add', 'Conv2D']);
    const x = tf.randomNormal([1, 3, 416, 416], 0, 1, 'float32', 4);
    const expected = reference.execute({ input_1: x }, [activation, add, conv]) as tf.Tensor[];

    // Alone: every convolution on the way (29 of NanoDet-g's 34) runs fused with its bias and
    // activation, and with the zero Pad before it (the one PadV2 left pads the max pool's input).
    const alone = await tf.profile(() => graph.execute(x, [activation]));
    const count = (kernels: { name: string }[], name: string) => kernels.filter((k) => k.name === name).length;
    expect([count(alone.kernels, 'FusedConv2D'), count(alone.kernels, 'Conv2D'), count(alone.kernels, 'LeakyRelu'), count(alone.kernels, 'PadV2')]).toEqual([29, 0, 0, 1]);
    const [fusedValue] = alone.result as unknown as tf.Tensor[];
    expect(await relDiff(fusedValue!, expected[0]!)).toBeLessThan(1e-5);

    // The same layer with its pre-activation and its convolution's output asked for as well: the
    // convolution runs alone, the bias and the activation as their own nodes.
    const inner = await tf.profile(() => graph.execute(x, [activation, add, conv]));
    expect([count(inner.kernels, 'FusedConv2D'), count(inner.kernels, 'Conv2D'), count(inner.kernels, 'LeakyRelu')]).toEqual([28, 1, 1]);
    const values = inner.result as unknown as tf.Tensor[];
    for (let i = 0; i < 3; i++) expect(await relDiff(values[i]!, expected[i]!), [activation, add, conv][i]).toBeLessThan(1e-5);
    tf.dispose([x, ...expected, fusedValue!, ...values]);
    reference.dispose();
    graph.dispose();
  });

  it('CenterNet-MobileNetV3 on wasm at 512: heatmap and box heads (fused and depthwise convolutions)', async () => {
    const artifacts = centernet();
    const reference = await tf.loadGraphModel(tf.io.fromMemory(artifacts));
    const graph = graphFromArtifacts(artifacts);
    const x = tf.randomUniform([1, 512, 512, 3], 0, 255, 'float32', 5);
    const names = ['tower_0/CenternetHead/centernet_cls_output/BiasAdd', 'tower_0/CenternetHead/centernet_wh_output/BiasAdd', 'tower_0/CenternetHead/mul'];
    const expected = reference.execute({ 'tower_0/images': x }, names) as tf.Tensor[];
    const actual = graph.execute(x, names);
    for (let i = 0; i < names.length; i++) expect(await relDiff(actual[i]!, expected[i]!), names[i]).toBeLessThan(1e-5);
    // 2,014,985 float values in all, 61 of them scalars (activation constants), not parameters.
    expect(graph.parameterCount()).toBe(2_014_924);
    tf.dispose([x, ...expected, ...actual]);
    reference.dispose();
    graph.dispose();
  });
});

describe('shapes that follow the batch and the input size', () => {
  let graph: ReturnType<typeof graphFromArtifacts>;
  beforeAll(async () => {
    await tf.setBackend('wasm');
    graph = graphFromArtifacts(nanodet(), { trainable: false });
  });
  afterAll(() => graph.dispose());

  it('runs batch 3 at 320x320 and gives each image what it gets alone', async () => {
    const xs = tf.randomNormal([3, 3, 320, 320], 0, 1, 'float32', 9);
    const batched = graph.execute(xs, ['Identity', 'PartitionedCall/Add_37']);
    expect(batched[0]!.shape).toEqual([3, 1600, 80]);
    expect(batched[1]!.shape).toEqual([3, 10, 10, 124]);
    const second = xs.slice([1, 0, 0, 0], [1, 3, 320, 320]);
    const alone = graph.execute(second, ['Identity', 'PartitionedCall/Add_37']);
    expect(await relDiff(batched[0]!.slice([1, 0, 0], [1, 1600, 80]), alone[0]!)).toBeLessThan(1e-5);
    expect(await relDiff(batched[1]!.slice([1, 0, 0, 0], [1, 10, 10, 124]), alone[1]!)).toBeLessThan(1e-5);
    tf.dispose([xs, second, ...batched, ...alone]);
  });

  it('at 320 matches tf.GraphModel whose baked resize sizes were rewritten by hand for 320', async () => {
    const artifacts = nanodet();
    // Rewrite the four ResizeBilinear size constants (26,52,26,13 at 416) for 320: 20,40,20,10.
    const weights = tf.io.decodeWeights(artifacts.weightData!, artifacts.weightSpecs!);
    const sizes: Record<string, number> = { 'PartitionedCall/Cast_1': 20, 'PartitionedCall/Cast_3': 40, 'PartitionedCall/Cast_5': 20, 'PartitionedCall/Cast_7': 10 };
    for (const [name, side] of Object.entries(sizes)) {
      weights[name]!.dispose();
      weights[name] = tf.tensor1d([side, side], 'int32');
    }
    const encoded = await tf.io.encodeWeights(weights);
    tf.dispose(Object.values(weights));
    // tf.GraphModel also checks the input against the declared shape: declare 320 there too.
    const topology = JSON.parse(JSON.stringify(artifacts.modelTopology)) as TfGraphTopology;
    const input = topology.node.find((n) => n.name === 'input_1')!;
    input.attr!.shape = { shape: { dim: [{ size: '1' }, { size: '3' }, { size: '320' }, { size: '320' }] } };
    const patched = await tf.loadGraphModel(
      tf.io.fromMemory({ modelTopology: topology, weightSpecs: encoded.specs, weightData: encoded.data, format: 'graph-model' }),
    );
    const x = tf.randomNormal([1, 3, 320, 320], 0, 1, 'float32', 11);
    const expected = patched.execute({ input_1: x }, NANODET_HEADS) as tf.Tensor[];
    const actual = graph.execute(x, NANODET_HEADS);
    for (let i = 0; i < 3; i++) expect(await relDiff(actual[i]!, expected[i]!)).toBeLessThan(1e-5);
    tf.dispose([x, ...expected, ...actual]);
    patched.dispose();
  });

  it('rewrites reshape targets: batch and same-position dims follow, -1 stays', () => {
    expect(followReshape([1, 80, -1], [1, 80, 52, 52], [4, 80, 40, 40])).toEqual([4, 80, -1]);
    expect(followReshape([1, 2704, 80], [1, 52, 52, 80], [2, 40, 40, 80])).toEqual([2, 2704, 80]);
  });
});

describe('no synchronous read-back in a run', () => {
  it('reads host inputs (PadV2\'s float fill value too) once, never again in later runs', async () => {
    await tf.setBackend('wasm');
    const graph = graphFromArtifacts(nanodet(), { trainable: true });
    const x = tf.randomNormal([1, 3, 64, 64], 0, 1, 'float32', 3);
    const engine = tf.engine() as unknown as { readSync: (id: object) => unknown };
    const readSync = engine.readSync.bind(engine);
    let reads = 0;
    engine.readSync = (id) => {
      reads++;
      return readSync(id);
    };
    try {
      tf.dispose(graph.execute(x, NANODET_HEADS));
      reads = 0;
      const { value, grads } = tf.variableGrads(() => tf.addN(graph.execute(x, NANODET_HEADS).map((t) => tf.mean(t))) as tf.Scalar, graph.trainableVariables());
      expect(reads).toBe(0);
      tf.dispose([value, ...Object.values(grads)]);
    } finally {
      engine.readSync = readSync;
      x.dispose();
      graph.dispose();
    }
  });
});

describe('model checks', () => {
  it('lists every unsupported op and its nodes in one error', () => {
    const topology: TfGraphTopology = {
      node: [
        { name: 'x', op: 'Placeholder', attr: { dtype: { type: 'DT_FLOAT' } } },
        { name: 'a', op: 'Cumprod', input: ['x'] },
        { name: 'b', op: 'Einsum', input: ['a'] },
        { name: 'c', op: 'Einsum', input: ['b'] },
      ],
    };
    let error: unknown;
    try {
      graphFromArtifacts({ modelTopology: topology, weightSpecs: [], weightData: new ArrayBuffer(0) });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(UnsupportedOpsError);
    expect((error as Error).message).toContain('2 op(s)');
    expect((error as Error).message).toContain('- Cumprod: a');
    expect((error as Error).message).toContain('- Einsum: b, c');
  });

  it('says clearly when the weight files do not belong to the model', () => {
    const artifacts = nanodet();
    expect(() => graphFromArtifacts({ ...artifacts, weightData: new ArrayBuffer(100) })).toThrow(/weight files do not match model.json/);
  });
});

// The cpu backend is slow at full size: compare the early layers, where tf.GraphModel runs only
// what the requested node needs, so both sides do the same small amount of work.
describe('TrainableGraph against tf.GraphModel on the cpu backend', () => {
  it('CenterNet (fused conv, hard-swish, fused depthwise, squeeze-excite) and NanoDet-g stem taps', async () => {
    await tf.setBackend('cpu');
    const cases: [() => tf.io.ModelArtifacts, string, number[], string][] = [
      [centernet, 'tower_0/images', [1, 512, 512, 3], 'tower_0/MobilenetV3/expanded_conv_3/squeeze_excite/mul'],
      [nanodet, 'input_1', [1, 3, 416, 416], 'PartitionedCall/onnx_tf_prefix_Concat_12'],
    ];
    for (const [load, inputName, shape, tap] of cases) {
      const artifacts = load();
      const reference = await tf.loadGraphModel(tf.io.fromMemory(artifacts));
      const graph = graphFromArtifacts(artifacts, { trainable: true });
      const x = tf.randomUniform(shape, -1, 1, 'float32', 7);
      const expected = reference.execute({ [inputName]: x }, tap) as tf.Tensor;
      const [actual] = graph.execute(x, [tap]);
      expect(await relDiff(actual!, expected), tap).toBeLessThan(1e-5);
      tf.dispose([x, expected, actual!]);
      reference.dispose();
      graph.dispose();
    }
  });
});
