import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { deferMapReads, readValues } from './readback';
import { createMethod, runMethods } from './registry';
import { handAssignment, handGrid } from './test-support';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('deferMapReads', () => {
  it('reads now by default, and after the run inside deferMapReads', async () => {
    const t = tf.tensor1d([1, 2, 3]);
    let now: number[] = [];
    readValues(t, (v) => (now = Array.from(v)));
    expect(now).toEqual([1, 2, 3]);
    let later: number[] = [];
    const before = tf.memory().numTensors;
    const out = await deferMapReads(() => {
      tf.tidy(() => readValues(tf.mul(t, 2), (v) => (later = Array.from(v))));
      // Nothing read yet, and the tidy's tensor is kept for the read.
      expect(later).toEqual([]);
      return 'done';
    });
    expect(out).toBe('done');
    expect(later).toEqual([2, 4, 6]);
    expect(tf.memory().numTensors).toBe(before);
    t.dispose();
  });

  it('fills the maps of a step, including the renamed copies made by combine', async () => {
    const grid = handGrid([{ stride: 4, height: 1, width: 2 }]);
    const assignments = [handAssignment({ grid, ious: [[1, 0]], assignedGt: [0, -1] })];
    // Head mimic: T [1, 0], [1, 0]; S [0, 1], [1, 1] -> cos 0 and 1/√2.
    const headT = tf.tensor4d([1, 0, 1, 0], [1, 1, 2, 2]);
    const headS = tf.tensor4d([0, 1, 1, 1], [1, 1, 2, 2]);
    const mimic = createMethod('head-mimic', { channels: { headFeature: { teacher: [2], student: [2] } } });
    const before = tf.memory().numTensors;
    const r = await deferMapReads(() => runMethods([mimic], { headT: [headT], headS: [headS], assignments }, { withMaps: true }));
    expect(r.maps?.[0]?.name).toBe('head-mimic/cosine');
    const data = Array.from(r.maps?.[0]?.data ?? []);
    expect(data[0]).toBeCloseTo(0, 6);
    expect(data[1]).toBeCloseTo(Math.SQRT1_2, 6);
    for (const t of new Set([r.loss, ...Object.values(r.terms)])) t.dispose();
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([headT, headS]);
    mimic.dispose();
  });

  it('refuses to nest, and disposes what it kept when the run throws', async () => {
    const before = tf.memory().numTensors;
    await expect(
      deferMapReads(() => {
        tf.tidy(() => readValues(tf.ones([2]), () => undefined));
        throw new Error('step failed');
      }),
    ).rejects.toThrow(/step failed/);
    expect(tf.memory().numTensors).toBe(before);
    await expect(deferMapReads(() => deferMapReads(() => 1))).rejects.toThrow(/not nested/);
  });
});
