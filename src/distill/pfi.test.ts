import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { conv1x1Connector } from './connectors';
import { pfi } from './pfi';
import { closeArrays, maxAbs } from './test-support';
import { disposeResult } from './types';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const ln3 = Math.log(3);

// Level 0: 1x2 grid, 2 classes, 2 channels.
// Teacher logits 0 -> p_T = 0.5 everywhere. Student logits: location 0 [ln3, 0] -> p [0.75, 0.5];
// location 1 [ln3, ln3] -> p [0.75, 0.75]. P = [0.25², 2·0.25²] = [0.0625, 0.125].
// Teacher features: location 0 [1, 1], location 1 [2, 0]; student zeros.
// F = mean_c (T − S)² = [(1 + 1)/2, (4 + 0)/2] = [1, 2].
// Level loss = (0.0625·1 + 0.125·2) / (N·H·W = 2) = 0.3125 / 2 = 0.15625.
function level0() {
  return {
    featT: tf.tensor4d([1, 1, 2, 0], [1, 1, 2, 2]),
    featS: tf.zeros([1, 1, 2, 2]) as tf.Tensor4D,
    clsT: tf.zeros([1, 1, 2, 2]) as tf.Tensor4D,
    clsS: tf.tensor4d([ln3, 0, ln3, ln3], [1, 1, 2, 2]),
  };
}

describe('pfi', () => {
  it('weights the feature difference by the prediction difference (one level)', () => {
    const l0 = level0();
    const before = tf.memory().numTensors;
    const r = pfi({ featT: [l0.featT], featS: [l0.featS], clsT: [l0.clsT], clsS: [l0.clsS] }, {}, { withMaps: true });
    expect(r.terms['pfi']?.dataSync()[0]).toBeCloseTo(0.15625, 6);
    expect(r.loss.dataSync()[0]).toBeCloseTo(1.5 * 0.15625, 6);
    expect(closeArrays(r.maps?.find((m) => m.name === 'P')?.data ?? [], [0.0625, 0.125])).toBeNull();
    expect(closeArrays(r.maps?.find((m) => m.name === 'F')?.data ?? [], [1, 2])).toBeNull();
    expect(r.maps?.[0]?.shape).toEqual([1, 1, 2]);
    disposeResult(r);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose(Object.values(l0));
  });

  it('averages the levels', () => {
    // Level 1: a 1x1 grid where the predictions agree (P = 0) -> level loss 0; mean = 0.078125.
    const l0 = level0();
    const f1 = tf.ones([1, 1, 1, 2]) as tf.Tensor4D;
    const z1 = tf.zeros([1, 1, 1, 2]) as tf.Tensor4D;
    const s1 = tf.zeros([1, 1, 1, 2]) as tf.Tensor4D;
    const r = pfi({ featT: [l0.featT, f1], featS: [l0.featS, s1], clsT: [l0.clsT, z1], clsS: [l0.clsS, z1] }, { weight: 1 });
    expect(r.loss.dataSync()[0]).toBeCloseTo(0.078125, 6);
    disposeResult(r);
    tf.dispose([...Object.values(l0), f1, z1, s1]);
  });

  it('is zero when the student equals the teacher', () => {
    const f = tf.randomNormal([2, 3, 3, 4], 0, 1, 'float32', 1) as tf.Tensor4D;
    const z = tf.randomNormal([2, 3, 3, 5], 0, 1, 'float32', 2) as tf.Tensor4D;
    const r = pfi({ featT: [f], featS: [f], clsT: [z], clsS: [z] });
    expect(r.loss.dataSync()[0]).toBe(0);
    disposeResult(r);
    tf.dispose([f, z]);
  });

  it('treats P as a constant: gradient to the student features only', () => {
    const l0 = level0();
    const [gFT, gFS] = tf.grads((a, b) => pfi({ featT: [a as tf.Tensor4D], featS: [b as tf.Tensor4D], clsT: [l0.clsT], clsS: [l0.clsS] }).loss)([l0.featT, l0.featS]);
    // Both class logits feed only P, computed off the tape: they have no gradient path at all.
    expect(() => tf.grad((c) => pfi({ featT: [l0.featT], featS: [l0.featS], clsT: [c as tf.Tensor4D], clsS: [l0.clsS] }).loss)(l0.clsT)).toThrow(/Cannot compute gradient/);
    expect(() => tf.grad((d) => pfi({ featT: [l0.featT], featS: [l0.featS], clsT: [l0.clsT], clsS: [d as tf.Tensor4D] }).loss)(l0.clsS)).toThrow(/Cannot compute gradient/);
    // dL/dS = 1.5 · P · (−2 (T − S)) / C / (N·H·W): location 0 -> 1.5·0.0625·(−2)/2/2 = −0.046875 per
    // channel; location 1 channel 0 -> 1.5·0.125·(−4)/2/2 = −0.1875, channel 1 -> 0.
    expect(closeArrays(gFS?.dataSync() ?? [], [-0.046875, -0.046875, -0.1875, 0])).toBeNull();
    expect(maxAbs(gFT as tf.Tensor)).toBe(0);
    tf.dispose([...Object.values(l0), gFT, gFS] as tf.Tensor[]);
  });

  it('trains the 1x1 adapter and leaks nothing in a step', () => {
    const adapter = conv1x1Connector(3, 2, { init: 'uniform', seed: 4 });
    const l0 = level0();
    const student = tf.variable(tf.randomNormal([1, 1, 2, 3], 0, 1, 'float32', 3), true, 'pfi_test_student');
    const before = tf.memory().numTensors;
    const { value, grads } = tf.variableGrads(
      () => pfi({ featT: [l0.featT], featS: [student as tf.Tensor4D], clsT: [l0.clsT], clsS: [l0.clsS], adapters: [adapter] }).loss,
    );
    expect(value.dataSync()[0]).toBeGreaterThan(0);
    for (const v of [student, ...adapter.variables]) expect(maxAbs(grads[v.name] as tf.Tensor)).toBeGreaterThan(0);
    tf.dispose([value, ...Object.values(grads)]);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([...Object.values(l0), student]);
    adapter.dispose();
  });

  it('rejects class logits on another grid or with other classes', () => {
    const l0 = level0();
    const wrong = tf.zeros([1, 2, 2, 2]) as tf.Tensor4D;
    const three = tf.zeros([1, 1, 2, 3]) as tf.Tensor4D;
    expect(() => pfi({ featT: [l0.featT], featS: [l0.featS], clsT: [wrong], clsS: [wrong] })).toThrow(/N, H, W must agree/);
    expect(() => pfi({ featT: [l0.featT], featS: [l0.featS], clsT: [l0.clsT], clsS: [three] })).toThrow(/same classes/);
    tf.dispose([...Object.values(l0), wrong, three]);
  });
});
