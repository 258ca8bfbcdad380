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

  it('sends gradient to the student only: 2·(S − T) / (v · size · taps)', () => {
    const t = tf.tensor4d(tValues, [1, 2, 2, 2]);
    const s = tf.tensor4d(sValues, [1, 2, 2, 2]);
    const [gS, gT] = tf.grads((a: tf.Tensor, b: tf.Tensor) => hints({ groups: { head: { teacher: [b as tf.Tensor4D], student: [a as tf.Tensor4D] } } }, { weight: 3 }).loss)([s, t]);
    const expected = sValues.map((v, i) => (3 * 2 * (v - tValues[i]!)) / (spread * 8));
    expect(closeArrays(gS!.dataSync(), expected, 1e-3)).toBeNull();
    expect(closeArrays(gT!.dataSync(), new Array(8).fill(0))).toBeNull();
    tf.dispose([t, s, gS!, gT!]);
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

  it('sums the taps of a group as one in a training step: the same terms and gradients as tap by tap', () => {
    // Taps of different sizes, channels and scales in two groups, two images.
    const shapes: [number, number, number, number][] = [[2, 8, 8, 4], [2, 4, 4, 6], [2, 2, 2, 8]];
    const teacher = shapes.map((sh, i) => tf.randomNormal(sh, 0, 1 + 3 * i, 'float32', i) as tf.Tensor4D);
    const student = shapes.map((sh, i) => tf.variable(tf.randomNormal(sh, 0.5, 2, 'float32', 10 + i), true, `hints_joined_${i}`));
    const groups = () => ({ stage: { teacher: teacher.slice(0, 2), student: student.slice(0, 2) as unknown as tf.Tensor4D[] }, head: { teacher: teacher.slice(2), student: student.slice(2) as unknown as tf.Tensor4D[] } });
    const run = (withMaps: boolean) => {
      let terms: Record<string, number> = {};
      const { value, grads } = tf.variableGrads(() => {
        const r = hints({ groups: groups() }, { weight: 2 }, { withMaps });
        terms = Object.fromEntries(Object.entries(r.terms).map(([k, v]) => [k, v.dataSync()[0] ?? NaN]));
        return r.loss;
      }, student);
      const out = { loss: value.dataSync()[0] ?? NaN, terms, grads: student.map((v) => grads[v.name]!.dataSync()) };
      tf.dispose([value, ...Object.values(grads)]);
      return out;
    };
    const before = tf.memory().numTensors;
    const joined = run(false);
    expect(tf.memory().numTensors).toBe(before);
    const perTap = run(true);
    expect(Object.keys(joined.terms)).toEqual(['stage', 'head']);
    for (const k of ['stage', 'head']) {
      expect(perTap.terms[k], k).toBeGreaterThan(0.1);
      expect(Math.abs((joined.terms[k] ?? NaN) - (perTap.terms[k] ?? NaN)) / (perTap.terms[k] ?? 1), k).toBeLessThan(1e-5);
    }
    expect(Math.abs(joined.loss - perTap.loss) / perTap.loss).toBeLessThan(1e-5);
    perTap.grads.forEach((g, i) => {
      const scale = Math.max(...Array.from(g, Math.abs));
      expect(scale).toBeGreaterThan(0);
      expect(closeArrays(joined.grads[i] ?? [], g, 1e-5 * scale), `tap ${i}`).toBeNull();
    });
    tf.dispose([...teacher, ...student]);
  });
});
