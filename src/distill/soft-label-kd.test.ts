import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { softLabelKd } from './soft-label-kd';
import { closeArrays, maxAbs } from './test-support';
import { disposeResult } from './types';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const ln2 = Math.log(2);
const ln3 = Math.log(3);
const ln4 = Math.log(4);

describe('softLabelKd (bce)', () => {
  it('is Sum_c softplus(z_S) − sigmoid(z_T)·z_S per location, averaged over locations', () => {
    // Level 0, 1x2 grid, 2 classes. Teacher logits [0, ln3] at both locations -> p_T [0.5, 0.75].
    // Location 0, student [0, 0]: ln2 + ln2 = 2 ln2.
    // Location 1, student [ln3, 0]: (softplus(ln3) − 0.5·ln3) + ln2 = ln4 − 0.5 ln3 + ln2.
    const zT = tf.tensor4d([0, ln3, 0, ln3], [1, 1, 2, 2]);
    const zS = tf.tensor4d([0, 0, ln3, 0], [1, 1, 2, 2]);
    const before = tf.memory().numTensors;
    const r = softLabelKd({ clsT: [zT], clsS: [zS] }, {}, { withMaps: true });
    const loc0 = 2 * ln2;
    const loc1 = ln4 - 0.5 * ln3 + ln2;
    expect(r.loss.dataSync()[0]).toBeCloseTo((loc0 + loc1) / 2, 6);
    expect(r.maps?.[0]?.shape).toEqual([1, 1, 2]);
    expect(closeArrays(r.maps?.[0]?.data ?? [], [loc0, loc1], 1e-5)).toBeNull();
    disposeResult(r);
    expect(tf.memory().numTensors).toBe(before);
    // 'sum' adds the locations; weight scales the loss but not the term.
    const sum = softLabelKd({ clsT: [zT], clsS: [zS] }, { reduction: 'sum', weight: 3 });
    expect(sum.terms['kd']?.dataSync()[0]).toBeCloseTo(loc0 + loc1, 5);
    expect(sum.loss.dataSync()[0]).toBeCloseTo(3 * (loc0 + loc1), 5);
    disposeResult(sum);
    tf.dispose([zT, zS]);
  });

  it('weights each location by the teacher\'s top probability to the power γ when asked', () => {
    // Location 0: teacher [0, ln3] -> p [0.5, 0.75], top 0.75; student [ln3, 0]: ln4 − 0.5 ln3 + ln2.
    // Location 1: teacher [−ln3, 0] -> p [0.25, 0.5], top 0.5; student [0, 0]: 2 ln2.
    const zT = tf.tensor4d([0, ln3, -ln3, 0], [1, 1, 2, 2]);
    const zS = tf.tensor4d([ln3, 0, 0, 0], [1, 1, 2, 2]);
    const l0 = ln4 - 0.5 * ln3 + ln2;
    const l1 = 2 * ln2;
    const before = tf.memory().numTensors;
    const r = softLabelKd({ clsT: [zT], clsS: [zS] }, { confidencePower: 2 });
    expect(r.loss.dataSync()[0]).toBeCloseTo((0.5625 * l0 + 0.25 * l1) / 0.8125, 5);
    disposeResult(r);
    expect(tf.memory().numTensors).toBe(before);
    // γ = 0 is the plain mean.
    const plain = softLabelKd({ clsT: [zT], clsS: [zS] }, { confidencePower: 0 });
    expect(plain.loss.dataSync()[0]).toBeCloseTo((l0 + l1) / 2, 5);
    disposeResult(plain);
    // The divergence is still 0 when the student equals the teacher.
    const same = softLabelKd({ clsT: [zT], clsS: [zT] }, { confidencePower: 1 });
    expect(Math.abs(same.terms['divergence']!.dataSync()[0]!)).toBeLessThan(1e-6);
    disposeResult(same);
    expect(() => softLabelKd({ clsT: [zT], clsS: [zS] }, { confidencePower: -1 })).toThrow(/confidencePower must be >= 0/);
    tf.dispose([zT, zS]);
  });

  it('divides logits by T and multiplies by T²', () => {
    // T = 2: teacher [0, 2 ln3] -> [0, ln3]; student [2 ln3, 0] -> [ln3, 0].
    // Per location: (ln4 − 0.5 ln3) + ln2, times 4.
    const zT = tf.tensor4d([0, 2 * ln3], [1, 1, 1, 2]);
    const zS = tf.tensor4d([2 * ln3, 0], [1, 1, 1, 2]);
    const r = softLabelKd({ clsT: [zT], clsS: [zS] }, { temperature: 2 });
    expect(r.loss.dataSync()[0]).toBeCloseTo(4 * (ln4 - 0.5 * ln3 + ln2), 5);
    disposeResult(r);
    const plain = softLabelKd({ clsT: [zT], clsS: [zS] }, { temperature: 2, scaleByT2: false });
    expect(plain.loss.dataSync()[0]).toBeCloseTo(ln4 - 0.5 * ln3 + ln2, 5);
    disposeResult(plain);
    tf.dispose([zT, zS]);
  });

  it('averages over the locations of every level', () => {
    // Level 0: 1x2 grid, level 1: 1x1, all logits 0 -> each location costs 2 ln2 (2 classes); mean 2 ln2.
    const a = tf.zeros([1, 1, 2, 2]) as tf.Tensor4D;
    const b = tf.zeros([1, 1, 1, 2]) as tf.Tensor4D;
    const r = softLabelKd({ clsT: [a, b], clsS: [a, b] });
    expect(r.loss.dataSync()[0]).toBeCloseTo(2 * ln2, 6);
    disposeResult(r);
    tf.dispose([a, b]);
  });

  it('has zero gradient when the student equals the teacher, and none to the teacher', () => {
    const z = tf.randomNormal([1, 2, 2, 3], 0, 2, 'float32', 1) as tf.Tensor4D;
    const [gT, gS] = tf.grads((a, b) => softLabelKd({ clsT: [a as tf.Tensor4D], clsS: [b as tf.Tensor4D] }).loss)([z, z]);
    expect(maxAbs(gS as tf.Tensor)).toBeLessThan(1e-7);
    expect(maxAbs(gT as tf.Tensor)).toBe(0);
    tf.dispose([z, gT, gS] as tf.Tensor[]);
  });

  it('gives the student the gradient (sigmoid(z_S) − p_T) / locations', () => {
    // One location, zT [0, ln3] -> p_T [0.5, 0.75]; zS [0, 0] -> sigmoid 0.5: grad [0, −0.25].
    const zT = tf.tensor4d([0, ln3], [1, 1, 1, 2]);
    const zS = tf.variable(tf.zeros([1, 1, 1, 2]), true, 'kd_test_student');
    const before = tf.memory().numTensors;
    const { value, grads } = tf.variableGrads(() => softLabelKd({ clsT: [zT], clsS: [zS as tf.Tensor4D] }).loss);
    expect(closeArrays(grads[zS.name]?.dataSync() ?? [], [0, -0.25])).toBeNull();
    tf.dispose([value, ...Object.values(grads)]);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([zT, zS]);
  });
});

describe('softLabelKd (kl)', () => {
  it('is KL(softmax(z_T/T) || softmax(z_S/T)) per location', () => {
    // zT [0, ln3] -> [1/4, 3/4]; zS [0, 0] -> [1/2, 1/2]: 1/4 ln(1/2) + 3/4 ln(3/2).
    const zT = tf.tensor4d([0, ln3], [1, 1, 1, 2]);
    const zS = tf.zeros([1, 1, 1, 2]) as tf.Tensor4D;
    const r = softLabelKd({ clsT: [zT], clsS: [zS] }, { mode: 'kl' });
    expect(r.loss.dataSync()[0]).toBeCloseTo(0.25 * Math.log(0.5) + 0.75 * Math.log(1.5), 6);
    disposeResult(r);
    const same = softLabelKd({ clsT: [zT], clsS: [zT] }, { mode: 'kl', temperature: 3 });
    expect(same.loss.dataSync()[0]).toBeCloseTo(0, 7);
    disposeResult(same);
    tf.dispose([zT, zS]);
  });

  it('rejects different class counts and a bad temperature', () => {
    const a = tf.zeros([1, 1, 1, 2]) as tf.Tensor4D;
    const b = tf.zeros([1, 1, 1, 3]) as tf.Tensor4D;
    expect(() => softLabelKd({ clsT: [a], clsS: [b] })).toThrow(/same classes/);
    expect(() => softLabelKd({ clsT: [a], clsS: [a] }, { temperature: 0 })).toThrow(/temperature must be positive/);
    tf.dispose([a, b]);
  });
});

describe('soft-label KD divergence term', () => {
  it('is 0 when the student equals the teacher and positive otherwise (BCE floor removed)', async () => {
    await tf.setBackend('cpu');
    const zT = tf.tensor4d([2, -1, 0.5, -3], [1, 1, 2, 2]);
    const same = softLabelKd({ clsT: [zT], clsS: [zT.clone()] });
    expect(same.terms.divergence!.dataSync()[0]).toBeCloseTo(0, 6);
    expect(same.terms.kd!.dataSync()[0]).toBeGreaterThan(0.1); // the teacher's entropy
    const other = softLabelKd({ clsT: [zT], clsS: [tf.zerosLike(zT) as tf.Tensor4D] });
    // Location 1: T = (2, −1); BCE(σ(2), 0) + BCE(σ(−1), 0) − H = Σ softplus(0) − H = 2·ln 2 − H ≥ 0
    expect(other.terms.divergence!.dataSync()[0]).toBeGreaterThan(0);
    tf.dispose([zT, same.loss, ...Object.values(same.terms), other.loss, ...Object.values(other.terms)]);
  });
});
