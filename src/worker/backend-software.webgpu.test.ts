/**
 * The backend choice on a machine whose only WebGPU adapter is software (Dawn on SwiftShader in
 * Node, as in headless Chrome without a GPU): wasm is preferred and the report says why; a person
 * who asks for WebGPU by name gets it; with nothing else working, the software GPU is used.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { registerNodeWebGpu } from '../testing/node-webgpu';
import { selectBackend } from './backend';

describe('selectBackend with a software WebGPU adapter', () => {
  beforeAll(async () => {
    await registerNodeWebGpu();
  });

  it('passes SwiftShader over for wasm and says why', async () => {
    const report = await selectBackend(['webgpu', 'wasm']);
    expect(report.backend).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
    expect(report.attempts.map((a) => [a.backend, a.ok, a.software ?? false])).toEqual([
      ['webgpu', false, true],
      ['wasm', true, false],
    ]);
    expect(report.attempts[0]!.reason).toMatch(/software renderer \(.*swiftshader.*\).*wasm is usually 5–10x faster.*Choose webgpu below/i);
  });

  it('uses the software adapter when it is asked for by name', async () => {
    const report = await selectBackend(['webgpu', 'wasm'], { allowSoftware: true });
    expect(report.backend).toBe('webgpu');
    expect(report.adapter?.isFallback).toBe(true);
    expect(report.softwareAllowed).toBe(true);
    expect(report.attempts[0]!.reason).toMatch(/software \(fallback\) adapter/);
  });

  it('falls back to the software adapter when nothing after it works', async () => {
    const report = await selectBackend(['webgpu', 'webgl']);
    expect(report.backend).toBe('webgpu');
    expect(report.attempts.map((a) => [a.backend, a.ok])).toEqual([
      ['webgpu', true],
      ['webgl', false],
    ]);
    expect(report.attempts[0]!.reason).toMatch(/Used because no faster backend works here/);
  });
});
