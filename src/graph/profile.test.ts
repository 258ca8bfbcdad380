import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { profileStep } from './profile';

describe('profileStep', () => {
  it('counts every kernel, those that run work, and splits forward from backprop', async () => {
    await tf.setBackend('cpu');
    const x = tf.tensor2d([[1, 2], [3, 4]]);
    const profile = await profileStep(() => {
      // Forward: Reshape, Square, Sum; backprop adds the gradients' kernels.
      const g = tf.grad((t: tf.Tensor) => tf.sum(tf.square(t.reshape([4]))))(x);
      const values = g.dataSync();
      g.dispose();
      expect(Array.from(values)).toEqual([2, 4, 6, 8]);
    });
    const names = profile.kernels.map((k) => `${k.name}|${k.phase}`);
    expect(names).toContain('Square|forward');
    expect(names).toContain('Sum|forward');
    expect(profile.kernels.some((k) => k.phase === 'backward')).toBe(true);
    const calls = (pick: (name: string) => boolean) => profile.kernels.filter((k) => pick(k.name)).reduce((s, k) => s + k.calls, 0);
    expect(profile.kernelCount).toBe(calls(() => true));
    expect(profile.workCount).toBe(calls((n) => n !== 'Reshape' && n !== 'Identity' && n !== 'unnamed scope'));
    expect(profile.workCount).toBeLessThan(profile.kernelCount); // the Reshape and its gradient's
    tf.dispose(x);
  });
});
