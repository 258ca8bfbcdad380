import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readModelArtifacts } from '../models/load-node';
import type { TrainableGraph } from './executor';
import { graphFromArtifacts } from './load';
import { wasmConvolutionRuns } from './wasm-conv';
import { setConvFusion } from './ops/conv';

const models = new URL('../../models/', import.meta.url).pathname;

// NanoDet-g at 64x64 on wasm: the stride-32 head through the whole backbone and neck.
describe('gradients of the trainable NanoDet-g graph', () => {
  let graph: TrainableGraph;
  let x: tf.Tensor4D;
  let weighting: tf.Tensor[];
  // A fixed random weighting of all three heads' outputs, so every weight is on the loss's path.
  const HEADS = ['PartitionedCall/Add_29', 'PartitionedCall/Add_33', 'PartitionedCall/Add_37'];
  const loss = () =>
    tf.tidy(() => {
      const heads = graph.execute(x, HEADS);
      return tf.addN(heads.map((h, i) => h.mul(weighting[i]!).mean())) as tf.Scalar;
    });

  beforeAll(async () => {
    await tf.setBackend('wasm');
    graph = graphFromArtifacts(readModelArtifacts(join(models, 'nanodet.json')));
    x = tf.randomNormal([2, 3, 64, 64], 0, 1, 'float32', 21) as tf.Tensor4D;
    weighting = [8, 4, 2].map((side, i) => tf.randomNormal([2, side, side, 124], 0, 1, 'float32', 22 + i));
  });
  afterAll(() => {
    tf.dispose([x, ...weighting]);
    graph.dispose();
  });

  it('reaches every trainable weight, with finite values', () => {
    const vars = graph.trainableVariables();
    expect(vars).toHaveLength(68);
    const { value, grads } = tf.variableGrads(loss, vars);
    const missing = vars.filter((v) => !grads[v.name]);
    expect(missing.map((v) => v.name)).toEqual([]);
    const allFinite = vars.every((v) => tf.tidy(() => tf.all(tf.isFinite(grads[v.name]!)).dataSync()[0] === 1));
    expect(allFinite).toBe(true);
    const nonZero = vars.filter((v) => tf.tidy(() => grads[v.name]!.abs().max().dataSync()[0]! > 0)).length;
    expect(nonZero).toBe(68);
    tf.dispose([value, ...Object.values(grads)]);
  });

  // Central differences along a random direction of a whole weight tensor: the directional
  // derivative sums many entries, so it stands well above float32 rounding. Only weights near the
  // heads: deeper in, the many LeakyReLU and max-pool kinks make finite differences swing by
  // 10% or more with the step size; those weights are covered by the comparison with cpu below
  // and by the per-op finite-difference tests (ops/*.test.ts).
  it('agrees with central finite differences along random directions of several weights', () => {
    // The loss is linear in the last head conv's filter (split_33) and bias (unknown_62), so a
    // large step is exact there; split_30 sits before one LeakyReLU and needs a small one.
    const steps: [string, number][] = [
      ['PartitionedCall/split_30', 1e-4],
      ['PartitionedCall/split_33', 1e-1],
      ['unknown_62', 1],
    ];
    steps.forEach(([name, h], k) => {
      const v = graph.variables.get(name)!;
      const { value, grads } = tf.variableGrads(loss, [v]);
      const direction = tf.randomNormal(v.shape, 0, 1, 'float32', 40 + k);
      const analytic = tf.tidy(() => grads[v.name]!.mul(direction).sum().dataSync()[0]!);
      tf.dispose([value, ...Object.values(grads)]);
      const original = v.clone();
      const at = (sign: number) => {
        v.assign(tf.tidy(() => original.add(direction.mul(sign * h))));
        const l = loss();
        const out = l.dataSync()[0]!;
        l.dispose();
        return out;
      };
      const numeric = (at(1) - at(-1)) / (2 * h);
      v.assign(original);
      tf.dispose([original, direction]);
      expect(Math.abs(numeric - analytic), `${name}: numeric ${numeric} vs analytic ${analytic}`).toBeLessThan(0.06 * Math.abs(analytic) + 1e-6);
    });
  });

  it('matches the cpu backend (native convolution gradients, every node its own op) on every weight', async () => {
    const wasmGrads = tf.tidy(() => {
      const { value, grads } = tf.variableGrads(loss, graph.trainableVariables());
      value.dispose();
      return Object.fromEntries(Object.entries(grads).map(([k, g]) => [k.slice(k.indexOf('/') + 1), g.arraySync()]));
    });
    const xs = x.arraySync();
    const ws = weighting.map((w) => w.arraySync());
    const shapes = graph.exportReferenceShapes();
    await tf.setBackend('cpu');
    const cpuGraph = graphFromArtifacts(readModelArtifacts(join(models, 'nanodet.json')));
    cpuGraph.importReferenceShapes(shapes); // a 416x416 reference run on cpu would take a minute
    const cx = tf.tensor(xs);
    const cw = ws.map((w) => tf.tensor(w));
    // The reference runs each node as its own op with tfjs's own gradients: independent of the
    // fused layers (and their gradients) that the wasm run goes through.
    setConvFusion(false);
    let result: ReturnType<typeof tf.variableGrads>;
    try {
      result = tf.variableGrads(
        () => tf.tidy(() => tf.addN(cpuGraph.execute(cx, HEADS).map((h, i) => h.mul(cw[i]!).mean())) as tf.Scalar),
        cpuGraph.trainableVariables(),
      );
    } finally {
      setConvFusion(true);
    }
    const { value, grads } = result;
    let worst = 0;
    for (const [fullName, g] of Object.entries(grads)) {
      const name = fullName.slice(fullName.indexOf('/') + 1);
      const ref = g.dataSync();
      const mine = tf.tensor(wasmGrads[name]!).dataSync();
      let scale = 1e-12;
      for (const v of ref) scale = Math.max(scale, Math.abs(v));
      for (let i = 0; i < ref.length; i++) worst = Math.max(worst, Math.abs(mine[i]! - ref[i]!) / scale);
    }
    expect(Object.keys(grads)).toHaveLength(68);
    expect(worst).toBeLessThan(1e-4);
    tf.dispose([value, cx, ...cw, ...Object.values(grads)]);
    cpuGraph.dispose();
    await tf.setBackend('wasm');
  });

  it('freezes weights by name pattern and keeps the step tensor-neutral', () => {
    graph.freeze([/split_3[0-3]$/, 'split_2']);
    const trainable = graph.trainableVariables();
    const names = trainable.map((v) => v.name);
    expect(names.some((n) => /split_3[0-3]$/.test(n) || n.includes('split_2'))).toBe(false);
    expect(trainable.length).toBe(68 - 4 - 11); // split_30..33 and split_2, split_20..29
    const frozen = graph.variables.get('PartitionedCall/split_33')!;
    const before = frozen.dataSync().slice(0, 8);
    const optimizer = tf.train.sgd(0.1);
    const count = tf.memory().numTensors;
    optimizer.minimize(loss, false, trainable);
    expect(tf.memory().numTensors).toBe(count);
    expect(Array.from(frozen.dataSync().slice(0, 8))).toEqual(Array.from(before));
    graph.freeze([]);
    expect(graph.trainableVariables()).toHaveLength(68);
    optimizer.dispose();
  });

  it('trains only the weights a pattern names, and refuses a pattern that names none', () => {
    expect(graph.trainOnly(/split_3[0-3]$/)).toBe(4);
    expect(graph.trainableVariables().map((v) => v.name.replace(/^.*?PartitionedCall/, 'PartitionedCall')).sort()).toEqual(['30', '31', '32', '33'].map((k) => `PartitionedCall/split_${k}`));
    expect(() => graph.trainOnly(/no_such_weight/)).toThrow(/No weight of the student matches \/no_such_weight\/; its weights are named like "PartitionedCall\//);
    // A refused pattern leaves the previous choice in place.
    expect(graph.trainableVariables()).toHaveLength(4);
    graph.freeze([]);
    expect(graph.trainableVariables()).toHaveLength(68);
  });
});

// CenterNet-MobileNetV3 at 64x64: fused convolutions with their bias, fused depthwise
// convolutions, hard-swish, squeeze-excite and its concat; on wasm every gradient goes through the
// project's kernels (biasAdd's channel sums, side-by-side concat, the lab's convolution and
// in-place filter gradients).
describe('gradients of the trainable CenterNet graph', () => {
  const HEADS = ['tower_0/CenternetHead/centernet_cls_output/BiasAdd', 'tower_0/CenternetHead/centernet_wh_output/BiasAdd'];
  const gradientsOn = async (backend: string, xs: number[][][][], shapes?: ReturnType<TrainableGraph['exportReferenceShapes']>, fused = true) => {
    await tf.setBackend(backend);
    setConvFusion(fused);
    try {
      const graph = graphFromArtifacts(readModelArtifacts(join(models, 'centernet.json')));
      if (shapes) graph.importReferenceShapes(shapes); // a 512x512 reference run on cpu would take minutes
      const x = tf.tensor(xs);
      const weighting = [tf.randomNormal([1, 16, 16, 80], 0, 1, 'float32', 31), tf.randomNormal([1, 16, 16, 4], 0, 1, 'float32', 32)];
      const { value, grads } = tf.variableGrads(
        () => tf.tidy(() => tf.addN(graph.execute(x, HEADS).map((h, i) => h.mul(weighting[i]!).mean())) as tf.Scalar),
        graph.trainableVariables(),
      );
      const out = Object.fromEntries(Object.entries(grads).map(([k, g]) => [k.slice(k.indexOf('/') + 1), g.dataSync().slice()]));
      const reference = graph.exportReferenceShapes();
      tf.dispose([value, x, ...weighting, ...Object.values(grads)]);
      graph.dispose();
      return { grads: out, reference };
    } finally {
      setConvFusion(true);
    }
  };

  it('matches the cpu backend on every weight (wasm through fused layers, cpu every node its own op)', async () => {
    await tf.setBackend('wasm');
    const xs = tf.tidy(() => tf.randomUniform([1, 64, 64, 3], 0, 255, 'float32', 5).arraySync()) as number[][][][];
    const convolutionsBefore = wasmConvolutionRuns();
    const wasm = await gradientsOn('wasm', xs);
    // The lab's wasm convolution ran (forward and input gradients) where CenterNet's channels allow it.
    expect(wasmConvolutionRuns() - convolutionsBefore).toBeGreaterThan(10);
    const cpu = await gradientsOn('cpu', xs, wasm.reference, false);
    await tf.setBackend('wasm');
    let worst = 0;
    for (const [name, ref] of Object.entries(cpu.grads)) {
      const mine = wasm.grads[name]!;
      let scale = 1e-12;
      for (const v of ref) scale = Math.max(scale, Math.abs(v));
      for (let i = 0; i < ref.length; i++) worst = Math.max(worst, Math.abs(mine[i]! - ref[i]!) / scale);
    }
    expect(Object.keys(wasm.grads).sort()).toEqual(Object.keys(cpu.grads).sort());
    expect(Object.keys(cpu.grads).length).toBeGreaterThan(100);
    expect(worst).toBeLessThan(1e-4);
  }, 240_000);
});
