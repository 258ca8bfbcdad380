import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { selectBackend } from './backend';

// Node has no WebGPU and no WebGL: the selection must fall through to wasm and say why.
describe('selectBackend outside a browser', () => {
  it('falls back to wasm with a reason for each better backend', async () => {
    const report = await selectBackend();
    expect(report.backend).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
    expect(report.adapter).toBeUndefined();
    expect(report.attempts.map((a) => [a.backend, a.ok])).toEqual([
      ['webgpu', false],
      ['webgl', false],
      ['wasm', true],
    ]);
    expect(report.attempts[0]!.reason).toMatch(/navigator\.gpu is missing/);
    expect(report.attempts[1]!.reason).toMatch(/WebGL/);
  });
  it('honours an explicit order', async () => {
    const report = await selectBackend(['wasm']);
    expect(report.attempts).toEqual([{ backend: 'wasm', ok: true, reason: undefined }]);
  });
});
