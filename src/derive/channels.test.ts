import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { beforeAll, describe, expect, it } from 'vitest';
import { analyzeChannels, pruneChannels } from './channels';
import { graphOf, graphParts } from './test-graph';
import { objectPositions, patches, refitConvolutions } from './refit';

describe('channel pruning', () => {
  beforeAll(async () => {
    await tf.setBackend('wasm');
  });

  it('finds convA and convC as prunable units with their readers; the summed convs are not', async () => {
    const parts = graphParts();
    const g = await graphOf(parts);
    const a = analyzeChannels(parts, g.nodeShapes(), g.outputs);
    expect(a.units.map((u) => [u.producer, u.channels, [...u.consumers].sort()])).toEqual([
      ['convA', 4, ['convB', 'convD']],
      ['convC', 2, ['convD']],
    ]);
    expect(a.blocked.get('convB')).toMatch(/sum/);
    // bA is the per-channel constant of convA's channels.
    expect(a.channelConsts.get('bA')).toEqual({ alignedWith: 'addA', axis: 0 });
    g.dispose();
  });

  it('pruning a channel that is always zero changes no output', async () => {
    const parts = graphParts();
    // Channel 2 of convA: zero filter, bias −1 → LeakyRelu gives −0.1 everywhere, not zero; use bias 0 so it is exactly 0.
    const wA = parts.weights.wA!.arraySync() as number[][][][];
    for (const row of wA) for (const col of row) for (const cin of col) cin[2] = 0;
    parts.weights.wA = tf.tensor4d(wA);
    parts.weights.bA = tf.tensor1d([0.1, -0.2, 0, 0.05]);
    const g = await graphOf(parts);
    const a = analyzeChannels(parts, g.nodeShapes(), g.outputs);
    const pruned = pruneChannels(parts, a, new Map([['convA', [0, 1, 3]]]));
    expect(pruned.weights.wA!.shape).toEqual([3, 3, 2, 3]);
    // Pruning checks its plan as every other user of a plan does (checkPlan).
    expect(() => pruneChannels(parts, a, new Map([['convA', [0, 4]]]))).toThrow('The channel plan keeps channel 4 of "convA", which has 4: the plan is for a wider graph.');
    expect(() => pruneChannels(parts, a, new Map([['convB', [0]]]))).toThrow('The channel plan names "convB", which is not a prunable convolution of this graph.');
    expect(pruned.weights.bA!.shape).toEqual([3]);
    expect(pruned.weights.wB!.shape).toEqual([3, 3, 3, 3]);
    // convD reads [actA (4 → 3 kept), actC (2)]: 5 inputs.
    expect(pruned.weights.wD!.shape).toEqual([1, 1, 5, 3]);
    const s = await graphOf(pruned);
    const x = tf.randomNormal([1, 6, 6, 2], 0, 1, 'float32', 9);
    const [yt] = g.execute(x, ['sum']);
    const [ys] = s.execute(x, ['sum']);
    expect(tf.max(tf.abs(tf.sub(yt!, ys!))).dataSync()[0]).toBeLessThan(1e-5);
    tf.dispose([x, yt!, ys!]);
    g.dispose();
    s.dispose();
  });

  it('im2col rows times the reshaped filter equal the convolution (stride 2, SAME pads)', () => {
    const x = tf.randomNormal([2, 7, 7, 3], 0, 1, 'float32', 5) as tf.Tensor4D;
    const w = tf.randomNormal([3, 3, 3, 4], 0, 1, 'float32', 6) as tf.Tensor4D;
    const y = tf.conv2d(x, w, 2, 'same');
    // TensorFlow's SAME for 7 → 4 with k 3, stride 2: total pad 2 → 1 before, 1 after.
    const rows = patches(x, { kh: 3, kw: 3, strides: [2, 2], pads: [1, 1, 1, 1] }, 4, 4);
    const viaRows = tf.matMul(rows, w.reshape([27, 4])).reshape(y.shape);
    expect(tf.max(tf.abs(tf.sub(y, viaRows))).dataSync()[0]).toBeLessThan(1e-4);
    tf.dispose([x, w, y, rows, viaRows]);
  });

  it('the least-squares refit lowers the reader’s error against the reference below pruning alone', async () => {
    const parts = graphParts(4);
    const reference = await graphOf(parts);
    const a = analyzeChannels(parts, reference.nodeShapes(), reference.outputs);
    const pruned = pruneChannels(parts, a, new Map([['convA', [0, 3]]]));
    const student = await graphOf(pruned, true);
    const batches = [0, 1, 2].map((i) => tf.randomNormal([8, 6, 6, 2], 0, 1, 'float32', 20 + i) as tf.Tensor4D);
    const probe = tf.randomNormal([4, 6, 6, 2], 0, 1, 'float32', 99);
    const error = (node: string) =>
      tf.tidy(() => {
        const [r] = reference.execute(probe, [node]);
        const [s] = student.execute(probe, [node]);
        return tf.mean(tf.squaredDifference(r!, s!)).dataSync()[0]! / tf.moments(r!).variance.dataSync()[0]!;
      });
    const before = { addB: error('addB'), addD: error('addD') };
    const reports = await refitConvolutions(pruned.topology, student, reference, [
      { conv: 'convB', filter: 'wB', bias: 'bB', target: 'addB' },
      { conv: 'convD', filter: 'wD', bias: 'bD', target: 'addD' },
    ], batches, { rowsPerImage: 36, ridge: 1e-6 });
    const after = { addB: error('addB'), addD: error('addD') };
    // On images the fit never saw, the error falls for both readers.
    expect(after.addB).toBeLessThan(before.addB * 0.8);
    expect(after.addD).toBeLessThan(before.addD * 0.8);
    expect(reports.map((r) => [r.conv, r.unknowns, r.rows])).toEqual([
      ['convB', 3 * 3 * 2 + 1, 3 * 8 * 36],
      ['convD', 4 + 1, 3 * 8 * 36],
    ]);
    for (const r of reports) expect(r.errorAfter).toBeLessThan(r.errorBefore);
    tf.dispose([...batches, probe]);
    reference.dispose();
    student.dispose();
  });
});

describe('objectPositions', () => {
  it('lists, per image, the positions whose top class logit scores above the threshold', async () => {
    // 2 images of 1x3 positions, 2 class channels then 1 box channel. Threshold 0.5 is logit 0.
    const y = tf.tensor4d(
      [
        [-1, 2, 9], [-3, -2, 9], [0.5, -1, 9],
        [-5, -5, 9], [-1, -0.5, 9], [1, 3, 9],
      ].flat(),
      [2, 1, 3, 3],
    );
    expect(await objectPositions(y, 2, 0.5)).toEqual([[0, 2], [2]]);
    // sigmoid(2) = 0.88 and sigmoid(3) = 0.95: at 0.9 only the second image's last position.
    expect(await objectPositions(y, 2, 0.9)).toEqual([[], [2]]);
    y.dispose();
  });
});
