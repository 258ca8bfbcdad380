import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { beforeAll, describe, expect, it } from 'vitest';
import { readModelArtifacts } from '../models/load-node';
import { artifactsToFiles, exportGraph } from './export';
import { float32ToFloat16Bits } from './float16';
import { graphFromArtifacts } from './load';

const models = new URL('../../models/', import.meta.url).pathname;
const HEADS = ['PartitionedCall/Add_29', 'PartitionedCall/Add_33', 'PartitionedCall/Add_37'];

async function maxAbsDiff(a: tf.Tensor, b: tf.Tensor) {
  const [da, db] = await Promise.all([a.data(), b.data()]);
  let m = 0;
  for (let i = 0; i < da.length; i++) m = Math.max(m, Math.abs(da[i]! - db[i]!));
  return m;
}

describe('float32 → float16 bits', () => {
  it('matches hand-worked IEEE half values', () => {
    expect(float32ToFloat16Bits(1)).toBe(0x3c00);
    expect(float32ToFloat16Bits(-2)).toBe(0xc000);
    expect(float32ToFloat16Bits(65504)).toBe(0x7bff); // largest finite half
    expect(float32ToFloat16Bits(70000)).toBe(0x7c00); // overflow → +Inf
    expect(float32ToFloat16Bits(-Infinity)).toBe(0xfc00);
    expect(float32ToFloat16Bits(2 ** -24)).toBe(0x0001); // smallest subnormal
    expect(float32ToFloat16Bits(2 ** -26)).toBe(0x0000); // a quarter of it rounds to 0
    expect(float32ToFloat16Bits(1 + 2 ** -11)).toBe(0x3c00); // exactly half an ulp: ties to even (down)
    expect(float32ToFloat16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02); // 1.5 ulp: ties to even (up)
    expect(float32ToFloat16Bits(NaN) & 0x7c00).toBe(0x7c00);
  });
  it('round-trips through tfjs float16 decoding within half precision', async () => {
    await tf.setBackend('cpu');
    const values = [0.1, -3.14159, 1e-5, 1234.5, 0];
    const bits = Uint16Array.from(values.map(float32ToFloat16Bits));
    const decoded = tf.io.decodeWeights(bits.buffer, [{ name: 'w', shape: [5], dtype: 'float32', quantization: { dtype: 'float16' } }]);
    const got = decoded.w!.dataSync();
    values.forEach((v, i) => expect(Math.abs(got[i]! - v)).toBeLessThanOrEqual(Math.abs(v) * 2 ** -11 + 2 ** -25));
    decoded.w!.dispose();
  });
});

describe('export of a trained graph', () => {
  beforeAll(async () => {
    await tf.setBackend('wasm');
  });

  it('reloads in stock tf.loadGraphModel with the trained outputs (float32 exact, float16 close)', async () => {
    const graph = graphFromArtifacts(readModelArtifacts(join(models, 'nanodet.json')));
    // "Train": move every variable so a stale export would be caught.
    for (const v of graph.trainableVariables()) v.assign(tf.tidy(() => v.add(tf.randomNormal(v.shape, 0, 0.01, 'float32', 1))));
    const x = tf.randomNormal([1, 3, 416, 416], 0, 1, 'float32', 2);
    const trained = graph.execute(x, HEADS);

    for (const precision of ['float32', 'float16'] as const) {
      const artifacts = await exportGraph(graph, { precision, metadata: { lab: { student: true } } });
      // Through the file format: model.json text + .bin bytes, as written to disk or a zip.
      const { modelJson, weights } = artifactsToFiles(artifacts, 'student.bin');
      const parsed = JSON.parse(modelJson) as { weightsManifest: tf.io.WeightsManifestConfig; modelTopology: object; userDefinedMetadata: unknown };
      expect(parsed.weightsManifest[0]!.paths).toEqual(['student.bin']);
      expect(parsed.userDefinedMetadata).toEqual({ lab: { student: true } });
      const reloaded = await tf.loadGraphModel(
        tf.io.fromMemory({
          modelTopology: parsed.modelTopology,
          weightSpecs: parsed.weightsManifest[0]!.weights,
          weightData: weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength) as ArrayBuffer,
        }),
      );
      const outs = reloaded.execute({ input_1: x }, HEADS) as tf.Tensor[];
      for (let i = 0; i < HEADS.length; i++) {
        const diff = await maxAbsDiff(outs[i]!, trained[i]!);
        if (precision === 'float32') expect(diff, HEADS[i]).toBeLessThan(1e-4);
        else expect(diff, HEADS[i]).toBeLessThan(0.05); // half precision weights, logits of O(10)
      }
      if (precision === 'float16') expect(weights.byteLength).toBeLessThan(7_600_000);
      else expect(weights.byteLength).toBeGreaterThan(15_000_000);
      tf.dispose(outs);
      reloaded.dispose();
    }
    tf.dispose([x, ...trained]);
    graph.dispose();
  });
});
