import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { conv1x1Connector } from './connectors';
import { headMimic } from './head-mimic';
import { closeArrays, handAssignment, handGrid, maxAbs } from './test-support';
import { disposeResult } from './types';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const grid = handGrid([{ stride: 8, height: 2, width: 2 }]);
// Positives at anchors 0 and 3 (both of GT 0).
const assignment = handAssignment({ grid, ious: [[0.9, 0, 0, 0.8]], assignedGt: [0, -1, -1, 0] });
// Teacher: [1,0], [1,1], [0,1], [1,1]; student: [0,1] (cos 0), [1,1] (cos 1), [1,0] (cos 0), [2,0] (cos 1/√2).
const tValues = [1, 0, 1, 1, 0, 1, 1, 1];
const sValues = [0, 1, 1, 1, 1, 0, 2, 0];

describe('headMimic', () => {
  it('averages 1 − cos over the positive anchors and maps cos everywhere', () => {
    const t = tf.tensor4d(tValues, [1, 2, 2, 2]);
    const s = tf.tensor4d(sValues, [1, 2, 2, 2]);
    const before = tf.memory().numTensors;
    const r = headMimic({ headT: [t], headS: [s], assignments: [assignment] }, {}, { withMaps: true });
    // Positives 0 and 3: ((1 − 0) + (1 − 1/√2)) / 2 = 0.6464466.
    expect(r.loss.dataSync()[0]).toBeCloseTo((2 - Math.SQRT1_2) / 2, 6);
    expect(r.maps?.[0]?.name).toBe('cosine');
    expect(closeArrays(r.maps?.[0]?.data ?? [], [0, 1, 0, Math.SQRT1_2])).toBeNull();
    disposeResult(r);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([t, s]);
  });

  it('pools positives over images and levels; weight scales the loss', () => {
    // Image 2 (same features) has one positive, anchor 1 (cos 1), and level 1 (1x1) one positive
    // in image 1 with orthogonal features (cos 0).
    const twoLevels = handGrid([
      { stride: 8, height: 2, width: 2 },
      { stride: 16, height: 1, width: 1 },
    ]);
    const a1 = handAssignment({ grid: twoLevels, ious: [[1, 0, 0, 1, 1]], assignedGt: [0, -1, -1, 0, 0] });
    const a2 = handAssignment({ grid: twoLevels, ious: [[0, 1, 0, 0, 0]], assignedGt: [-1, 0, -1, -1, -1] });
    const t0 = tf.tensor4d([...tValues, ...tValues], [2, 2, 2, 2]);
    const s0 = tf.tensor4d([...sValues, ...sValues], [2, 2, 2, 2]);
    const t1 = tf.tensor4d([1, 0, 1, 0], [2, 1, 1, 2]);
    const s1 = tf.tensor4d([0, 1, 1, 0], [2, 1, 1, 2]);
    const r = headMimic({ headT: [t0, t1], headS: [s0, s1], assignments: [a1, a2] }, { weight: 2 });
    // 1 − cos at the 4 positives: 1, 1 − 1/√2, 1 (level 1, image 1), 0 (image 2, anchor 1).
    const mimic = (3 - Math.SQRT1_2) / 4;
    expect(r.terms['mimic']?.dataSync()[0]).toBeCloseTo(mimic, 6);
    expect(r.loss.dataSync()[0]).toBeCloseTo(2 * mimic, 6);
    disposeResult(r);
    tf.dispose([t0, s0, t1, s1]);
  });

  it('is zero when the student equals the teacher, and with no positives', () => {
    const t = tf.tensor4d(tValues, [1, 2, 2, 2]);
    const s = tf.tensor4d(sValues, [1, 2, 2, 2]);
    const same = headMimic({ headT: [t], headS: [t], assignments: [assignment] });
    expect(same.loss.dataSync()[0]).toBeCloseTo(0, 6);
    disposeResult(same);
    const none = headMimic({ headT: [t], headS: [s], assignments: [handAssignment({ grid })] });
    expect(none.loss.dataSync()[0]).toBe(0);
    disposeResult(none);
    tf.dispose([t, s]);
  });

  it('trains the student and the adapter; the teacher gets no gradient; no leak in a step', () => {
    const adapter = conv1x1Connector(3, 2, { init: 'uniform', seed: 2 });
    const teacher = tf.variable(tf.tensor4d(tValues, [1, 2, 2, 2]), true, 'mimic_test_teacher');
    const student = tf.variable(tf.randomNormal([1, 2, 2, 3], 0, 1, 'float32', 9), true, 'mimic_test_student');
    const before = tf.memory().numTensors;
    const { value, grads } = tf.variableGrads(
      () => headMimic({ headT: [teacher as tf.Tensor4D], headS: [student as tf.Tensor4D], assignments: [assignment], adapters: [adapter] }).loss,
    );
    expect(value.dataSync()[0]).toBeGreaterThan(0);
    for (const v of [student, ...adapter.variables]) expect(maxAbs(grads[v.name] as tf.Tensor)).toBeGreaterThan(0);
    // The student gets gradient only at the positive locations 0 and 3.
    const perLocation = tf.tidy(() => Array.from((grads[student.name] as tf.Tensor).reshape([4, 3]).abs().sum(1).dataSync()));
    expect(perLocation.map((v) => v > 0)).toEqual([true, false, false, true]);
    const gTeacher = grads[teacher.name];
    if (gTeacher) expect(maxAbs(gTeacher)).toBe(0);
    tf.dispose([value, ...Object.values(grads)]);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([teacher, student]);
    adapter.dispose();
  });
});
