import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { beforeAll, describe, expect, it } from 'vitest';
import { readModelArtifacts } from '../models/load-node';
import { registerNodeWebGpu } from '../testing/node-webgpu';
import { graphFromArtifacts } from './load';

const models = new URL('../../models/', import.meta.url).pathname;
const HEADS = ['PartitionedCall/Add_29', 'PartitionedCall/Add_33', 'PartitionedCall/Add_37'];

async function relDiff(a: tf.Tensor, b: tf.Tensor): Promise<number> {
  expect(a.shape).toEqual(b.shape);
  const [da, db] = await Promise.all([a.data(), b.data()]);
  let diff = 0;
  let scale = 1e-12;
  for (let i = 0; i < db.length; i++) {
    diff = Math.max(diff, Math.abs(da[i]! - db[i]!));
    scale = Math.max(scale, Math.abs(db[i]!));
  }
  return diff / scale;
}

/** Runs `f` on a backend and brings its results back as plain arrays. */
async function on<T>(backend: string, f: () => Promise<T>): Promise<T> {
  if (!(await tf.setBackend(backend))) throw new Error(`backend ${backend} did not start`);
  return f();
}

// NanoDet-g at 64x64 (tiny: SwiftShader is a CPU); the reference shapes come from a wasm run at 416.
describe('TrainableGraph on WebGPU (Node, SwiftShader) against the cpu backend', () => {
  let referenceShapes: Record<string, number[]>;
  let x: number[];
  beforeAll(async () => {
    await registerNodeWebGpu();
    referenceShapes = await on('wasm', async () => {
      const g = graphFromArtifacts(readModelArtifacts(join(models, 'nanodet.json')), { trainable: false });
      const shapes = g.exportReferenceShapes();
      g.dispose();
      return shapes;
    });
    x = Array.from({ length: 3 * 64 * 64 }, (_, i) => Math.sin(i * 0.37) * 1.5);
  }, 180_000);

  it('gives the same head outputs and gradients as cpu', async () => {
    const run = async () => {
      const graph = graphFromArtifacts(readModelArtifacts(join(models, 'nanodet.json')), { trainable: true });
      graph.importReferenceShapes(referenceShapes);
      const input = tf.tensor4d(x, [1, 3, 64, 64]);
      const outs = graph.execute(input, HEADS);
      const heads = await Promise.all(outs.map((t) => t.array()));
      // Gradient of a fixed weighting of the stride-32 head w.r.t. two weights, first and last conv.
      const watched = ['PartitionedCall/split', 'PartitionedCall/split_33'].filter((n) => graph.variables.has(n));
      const vars = watched.map((n) => graph.variables.get(n)!);
      const { grads } = tf.variableGrads(() => {
        const [h] = graph.execute(input, ['PartitionedCall/Add_37']);
        return h!.mul(tf.linspace(-1, 1, h!.size).reshape(h!.shape)).sum() as tf.Scalar;
      }, vars);
      const gradValues = await Promise.all(watched.map((n) => grads[vars[watched.indexOf(n)]!.name]!.array()));
      tf.dispose([input, ...outs, ...Object.values(grads)]);
      graph.dispose();
      return { heads, gradValues, watched };
    };
    const gpu = await on('webgpu', run);
    const cpu = await on('cpu', run);
    expect(gpu.watched.length).toBeGreaterThan(0);
    await tf.setBackend('cpu');
    for (let i = 0; i < HEADS.length; i++) {
      expect(await relDiff(tf.tensor(gpu.heads[i]!), tf.tensor(cpu.heads[i]!)), HEADS[i]).toBeLessThan(1e-5);
    }
    for (let i = 0; i < gpu.watched.length; i++) {
      expect(await relDiff(tf.tensor(gpu.gradValues[i]!), tf.tensor(cpu.gradValues[i]!)), gpu.watched[i]).toBeLessThan(1e-4);
    }
  }, 600_000);
});

// CenterNet (NHWC, fused and depthwise convolutions, squeeze-excite) at 64x64 on webgpu vs cpu.
describe('CenterNet on WebGPU (Node, SwiftShader) against the cpu backend', () => {
  it('gives the same head outputs', async () => {
    await registerNodeWebGpu();
    const heads = ['tower_0/CenternetHead/centernet_cls_output/BiasAdd', 'tower_0/CenternetHead/centernet_wh_output/BiasAdd'];
    const shapes = await on('wasm', async () => {
      const g = graphFromArtifacts(readModelArtifacts(join(models, 'centernet.json')), { trainable: false });
      const s = g.exportReferenceShapes();
      g.dispose();
      return s;
    });
    const x = Array.from({ length: 64 * 64 * 3 }, (_, i) => 127 + 120 * Math.sin(i * 0.11));
    const run = async () => {
      const graph = graphFromArtifacts(readModelArtifacts(join(models, 'centernet.json')), { trainable: false });
      graph.importReferenceShapes(shapes);
      const input = tf.tensor4d(x, [1, 64, 64, 3]);
      const outs = graph.execute(input, heads);
      const values = await Promise.all(outs.map((t) => t.array()));
      tf.dispose([input, ...outs]);
      graph.dispose();
      return values;
    };
    const gpu = await on('webgpu', run);
    const cpu = await on('cpu', run);
    for (let i = 0; i < heads.length; i++) expect(await relDiff(tf.tensor(gpu[i]!), tf.tensor(cpu[i]!)), heads[i]).toBeLessThan(1e-5);
  }, 600_000);
});
