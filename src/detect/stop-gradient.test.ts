import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { detached, stopGradient } from './stop-gradient';

describe('constants for backprop', () => {
  it('stopGradient and detached keep the value and pass no gradient: d/dx [x · c(x²)] = x²', async () => {
    await tf.setBackend('cpu');
    const x = tf.tensor1d([1.5, -2, 3]);
    const viaStop = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(a, stopGradient(tf.square(a)))))(x);
    const viaDetached = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(a, detached(() => tf.square(a)))))(x);
    expect(Array.from(viaStop.dataSync())).toEqual([2.25, 4, 9]);
    expect(Array.from(viaDetached.dataSync())).toEqual([2.25, 4, 9]);
    tf.dispose([x, viaStop, viaDetached]);
  });

  it('detached records nothing: backprop never runs the gradient of what it computes', async () => {
    await tf.setBackend('cpu');
    const x = tf.tensor2d([[1, 5], [4, 2]]);
    const kernels = (f: (a: tf.Tensor) => tf.Tensor) => {
      const names: string[] = [];
      const profile = tf.profile(() => tf.grad(f)(x));
      return profile.then((p) => (p.kernels.forEach((k) => names.push(k.name)), names));
    };
    // The max's gradient compares every element with the row maximum (Equal); a detached max
    // leaves no such kernel in the backward pass.
    const stopped = await kernels((a) => tf.sum(tf.mul(a, stopGradient(tf.max(a, 1, true)))));
    const off = await kernels((a) => tf.sum(tf.mul(a, detached(() => tf.max(a, 1, true)))));
    expect(stopped).toContain('Equal');
    expect(off).not.toContain('Equal');
    x.dispose();
  });
});
