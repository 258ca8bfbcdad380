import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { beforeAll, describe, expect, it } from 'vitest';
import { readModelArtifacts } from '../models/load-node';
import { graphFromArtifacts } from './load';
import { profileGraph } from './profile';
import { artifactsFromParts, disposeParts, findRemovableBlocks, keepClasses, partsFromArtifacts, removeBlocks } from './surgery';

const models = new URL('../../models/', import.meta.url).pathname;
const P = 'PartitionedCall/';
const HEADS = [`${P}Add_29`, `${P}Add_33`, `${P}Add_37`];

describe('graph surgery on NanoDet-g', () => {
  beforeAll(async () => {
    await tf.setBackend('wasm');
  });

  it('profiles NanoDet-g: 3.79 M parameters and 2.09 GMAC at 416 (as models.md measures)', () => {
    const graph = graphFromArtifacts(readModelArtifacts(join(models, 'nanodet.json')), { trainable: false });
    const p = profileGraph(graph);
    graph.dispose();
    expect(p.parameters).toBe(3_786_068);
    expect(p.macs / 1e9).toBeCloseTo(2.09, 1);
    expect(p.inputShape).toEqual([1, 3, 416, 416]);
  });

  it('finds the eight CSP blocks (1, 2, 2, 3 per stage) among the removable blocks', () => {
    const artifacts = readModelArtifacts(join(models, 'nanodet.json'));
    const graph = graphFromArtifacts(artifacts, { trainable: false });
    const parts = partsFromArtifacts(artifacts);
    const blocks = findRemovableBlocks(parts, graph.nodeShapes());
    const csp = blocks.filter((b) => b.outputOp === 'ConcatV2');
    expect(csp).toHaveLength(8);
    // The first stage's block, read off the graph: LeakyRelu_4 → [3x3 conv, 3x3 conv, concat] → Concat_9.
    expect(csp).toContainEqual(expect.objectContaining({ input: `${P}onnx_tf_prefix_LeakyRelu_4`, output: `${P}onnx_tf_prefix_Concat_9` }));
    // 3x3 32→16 and 3x3 16→16 convs with biases: 9·32·16 + 16 + 9·16·16 + 16 = 6944 parameters.
    expect(csp.find((b) => b.output === `${P}onnx_tf_prefix_Concat_9`)!.parameters).toBe(6944);
    graph.dispose();
    disposeParts(parts);
  });

  it('removing a block removes exactly its parameters and leaves a network that runs', async () => {
    const artifacts = readModelArtifacts(join(models, 'nanodet.json'));
    const teacher = graphFromArtifacts(artifacts, { trainable: false });
    const parts = partsFromArtifacts(artifacts);
    const blocks = findRemovableBlocks(parts, teacher.nodeShapes()).filter((b) => b.outputOp === 'ConcatV2');
    const chosen = blocks.slice(0, 2);
    const cut = removeBlocks(parts, chosen, teacher.outputs);
    const student = graphFromArtifacts(await artifactsFromParts(cut), { trainable: false });
    expect(student.parameterCount()).toBe(teacher.parameterCount() - chosen[0]!.parameters - chosen[1]!.parameters);
    const x = tf.randomNormal([1, 3, 416, 416], 0, 1, 'float32', 4);
    const outs = student.execute(x, HEADS);
    expect(outs.map((o) => o.shape)).toEqual([
      [1, 52, 52, 124],
      [1, 26, 26, 124],
      [1, 13, 13, 124],
    ]);
    tf.dispose([x, ...outs]);
    teacher.dispose();
    student.dispose();
    disposeParts(cut);
  });

  it('keeping some classes gives exactly the teacher outputs at those class channels', async () => {
    const artifacts = readModelArtifacts(join(models, 'nanodet.json'));
    const teacher = graphFromArtifacts(artifacts, { trainable: false });
    const keep = [14, 0, 2]; // bird, person, car: order is the new class order
    const parts = keepClasses(partsFromArtifacts(artifacts), { headOutputs: HEADS, numClasses: 80, keep });
    const student = graphFromArtifacts(await artifactsFromParts(parts), { trainable: false });
    const x = tf.randomNormal([1, 3, 416, 416], 0, 1, 'float32', 6);
    const names = [...HEADS, 'Identity', 'Identity_3'];
    const t = teacher.execute(x, names);
    const s = student.execute(x, names);
    const channels = [...keep, ...Array.from({ length: 44 }, (_, i) => 80 + i)];
    for (let i = 0; i < 3; i++) {
      const expected = tf.gather(t[i]!, channels, 3);
      expect(s[i]!.shape).toEqual([...t[i]!.shape.slice(0, 3), 47]);
      expect(tf.max(tf.abs(s[i]!.sub(expected))).dataSync()[0]).toBeLessThan(1e-5);
      expected.dispose();
    }
    // The final sigmoid-score output follows: [1, 2704, 80] becomes [1, 2704, 3].
    expect(s[3]!.shape).toEqual([1, 2704, 3]);
    const scores = tf.gather(t[3]!, keep, 2);
    expect(tf.max(tf.abs(s[3]!.sub(scores))).dataSync()[0]).toBeLessThan(1e-6);
    expect(s[4]!.shape).toEqual([1, 2704, 44]);
    tf.dispose([x, ...t, ...s, scores]);
    teacher.dispose();
    student.dispose();
    disposeParts(parts);
  });
});
