import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { conv1x1Connector } from './connectors';
import { hints } from './hints';
import { closeArrays } from './test-support';
import { disposeResult } from './types';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

// Teacher channels [1,1,0,1] and [0,1,1,1] over a 2x2 map: each has mean 0.75 and variance 0.1875.
const tValues = [1, 0, 1, 1, 0, 1, 1, 1];
// Student: squared error summed over channels 2, 0, 2, 2 at the four locations.
const sValues = [0, 1, 1, 1, 1, 0, 2, 0];
const spread = 0.1875 + 1e-6;

describe('hints', () => {
  it('averages the squared error relative to the teacher spread, per tap, and maps it', () => {
    const t = tf.tensor4d(tValues, [1, 2, 2, 2]);
    const s = tf.tensor4d(sValues, [1, 2, 2, 2]);
    const n = tf.tensor4d([3, -1, 2, 5], [1, 2, 1, 2]);
    const before = tf.memory().numTensors;
    const r = hints({ groups: { stage: { teacher: [t], student: [s] }, neck: { teacher: [n], student: [n] } } }, {}, { withMaps: true });
    // Stage: mean over locations of (1, 0, 1, 1) / 0.1875 = 4; neck: 0; loss: the mean over the two taps.
    expect(r.terms['stage']?.dataSync()[0]).toBeCloseTo(0.75 / spread, 4);
    expect(r.terms['neck']?.dataSync()[0]).toBeCloseTo(0, 6);
    expect(r.terms['head']).toBeUndefined();
    expect(r.loss.dataSync()[0]).toBeCloseTo(0.75 / spread / 2, 4);
    expect(r.maps?.map((m) => m.name)).toEqual(['stage error', 'neck error']);
    expect(closeArrays(r.maps?.[0]?.data ?? [], [1 / spread, 0, 1 / spread, 1 / spread], 1e-3)).toBeNull();
    disposeResult(r);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([t, s, n]);
  });

  it('sends gradient to the student only: 2·(S − T) / (v · size · taps), with and without maps', () => {
    // Both as trainable variables: only the student's gets a gradient (none reaches the teacher).
    const t = tf.variable(tf.tensor4d(tValues, [1, 2, 2, 2]), true, 'hints_test_teacher');
    const s = tf.variable(tf.tensor4d(sValues, [1, 2, 2, 2]), true, 'hints_test_student');
    for (const withMaps of [false, true]) {
      const { value, grads } = tf.variableGrads(() => {
        const r = hints({ groups: { head: { teacher: [t as unknown as tf.Tensor4D], student: [s as unknown as tf.Tensor4D] } } }, { weight: 3 }, { withMaps });
        return r.loss;
      }, [s, t]);
      const expected = sValues.map((v, i) => (3 * 2 * (v - tValues[i]!)) / (spread * 8));
      expect(closeArrays(grads[s.name]!.dataSync(), expected, 1e-3), `with maps: ${withMaps}`).toBeNull();
      const gT = grads[t.name];
      if (gT) expect(closeArrays(gT.dataSync(), new Array(8).fill(0))).toBeNull();
      tf.dispose([value, ...Object.values(grads)]);
    }
    tf.dispose([t, s]);
  });

  it('maps student channels through a regressor, and names the tap when shapes disagree', () => {
    const t = tf.tensor4d(tValues, [1, 2, 2, 2]);
    const s3 = tf.ones([1, 2, 2, 3]) as tf.Tensor4D;
    const regressor = conv1x1Connector(3, 2, { name: 'hint_test', init: 'zeros' });
    const r = hints({ groups: { neck: { teacher: [t], student: [s3], regressors: [regressor] } } });
    // A zero regressor outputs 0: error per location = (T0² + T1²) / 2 / v, mean = (1 + 2 + 1 + 2)/4/2/v.
    expect(r.loss.dataSync()[0]).toBeCloseTo(0.75 / spread, 4);
    disposeResult(r);
    expect(() => hints({ groups: { neck: { teacher: [t], student: [s3] } } })).toThrow(/neck tap 0 is \[1,2,2,2\] in the teacher and \[1,2,2,3\] in the student/);
    expect(() => hints({ groups: {} })).toThrow(/no tap group/);
    regressor.dispose();
    tf.dispose([t, s3]);
  });
});
