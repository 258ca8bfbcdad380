import * as tf from '@tensorflow/tfjs';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { recordOnlyWhatGradientsReach, restoreFullTape, withLazyGradients } from './tape';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

afterEach(() => recordOnlyWhatGradientsReach());

/** The loss's value, its gradients, the tensors saved for backprop, and the Identity kernels run. */
async function gradientsOf(f: () => tf.Scalar, variables: tf.Variable[]) {
  let result: { value: number; grads: number[][] } | undefined;
  const engine = tf.engine() as unknown as { saveTensorsForBackwardMode(tensors: tf.Tensor[]): tf.Tensor[] };
  const save = engine.saveTensorsForBackwardMode;
  let saved = 0;
  engine.saveTensorsForBackwardMode = function (this: unknown, tensors: tf.Tensor[]) {
    saved += tensors.length;
    return save.call(this, tensors);
  };
  try {
    const profile = await tf.profile(() => {
      const { value, grads } = tf.variableGrads(f, variables);
      result = { value: value.dataSync()[0]!, grads: variables.map((v) => [...grads[v.name]!.dataSync()]) };
      tf.dispose([value, ...Object.values(grads)]);
    });
    return { ...result!, saved, clones: profile.kernels.filter((k) => k.name === 'Identity').length };
  } finally {
    engine.saveTensorsForBackwardMode = save;
  }
}

describe('a gradient tape that records only what gradients reach', () => {
  // v·exp(c) summed, plus a chain on c alone (a constant: its ops saved nothing useful).
  const v = tf.variable(tf.tensor1d([1, 2, 3]), true, 'tape_v');
  const c = tf.tensor1d([0, Math.log(2), Math.log(3)]);
  const loss = () => tf.tidy(() => tf.add(tf.sum(tf.mul(v, tf.exp(c))), tf.sum(tf.square(tf.sigmoid(c))))) as tf.Scalar;

  it('gives the gradients of the full tape, from fewer saved tensors', async () => {
    restoreFullTape();
    const full = await gradientsOf(loss, [v]);
    recordOnlyWhatGradientsReach();
    const pruned = await gradientsOf(loss, [v]);
    // d/dv of Σ v·exp(c) is exp(c) = [1, 2, 3].
    expect(full.grads[0]).toEqual([1, 2, 3].map((x) => Math.fround(x)));
    expect(pruned.grads).toEqual(full.grads);
    expect(pruned.value).toBe(full.value);
    // Saved for the gradients: mul both inputs, each sum its input, add both inputs, exp and
    // sigmoid their outputs, square its input (9). Only mul, the sum after it and add have an
    // input the variable reaches (5). tfjs clones each through an Identity kernel; here they
    // take a new reference to the data, no kernel.
    expect(full.saved).toBe(9);
    expect(full.clones).toBe(9);
    expect(pruned.saved).toBe(5);
    expect(pruned.clones).toBe(0);
  });

  it('leaves no tensor behind, and gives the same gradients through custom and lazy gradients', async () => {
    const double = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => ({ value: tf.mul(args[0] as tf.Tensor, 2), gradFunc: (dy: tf.Tensor) => tf.mul(dy, 2) }));
    const lazySquare = (x: tf.Tensor) =>
      withLazyGradients([x], (save) => {
        save([x]);
        return tf.square(x);
      }, (dy, [saved]) => [() => tf.mul(dy, tf.mul(saved!, 2))]);
    const f = () => tf.tidy(() => tf.sum(tf.add(lazySquare(double(v) as tf.Tensor), lazySquare(double(c) as tf.Tensor)))) as tf.Scalar;
    restoreFullTape();
    const before = tf.memory().numTensors;
    const full = await gradientsOf(f, [v]);
    expect(tf.memory().numTensors).toBe(before);
    recordOnlyWhatGradientsReach();
    const pruned = await gradientsOf(f, [v]);
    expect(tf.memory().numTensors).toBe(before);
    // d/dv Σ (2v)² = 8v.
    expect(full.grads[0]).toEqual([8, 16, 24]);
    expect(pruned.grads).toEqual(full.grads);
    expect(pruned.clones).toBeLessThan(full.clones);
  });

  it('differentiates a gradient (second order) and tf.grad with respect to a plain tensor', () => {
    recordOnlyWhatGradientsReach();
    const x = tf.tensor1d([1, 2]);
    // d²/dx² of x³ + x·c is 6x; the c term is a constant here, then again inside the inner gradient.
    const k = tf.tensor1d([5, 7]);
    const second = tf.grad((y: tf.Tensor) => tf.grad((z: tf.Tensor) => tf.sum(tf.add(tf.pow(z, 3), tf.mul(z, tf.exp(k)))))(y))(x);
    expect([...second.dataSync()]).toEqual([6, 12]);
    const first = tf.grad((y: tf.Tensor) => tf.sum(tf.mul(tf.square(y), tf.exp(k))))(x);
    const expected = [2 * 1 * Math.exp(5), 2 * 2 * Math.exp(7)];
    [...first.dataSync()].forEach((g, i) => expect(g).toBeCloseTo(expected[i]!, 0));
    tf.dispose([x, k, second, first]);
  });
});
