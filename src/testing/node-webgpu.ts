/**
 * WebGPU in Node for tests: Dawn through the npm `webgpu` package, on SwiftShader (Chromium's
 * software Vulkan driver) where the machine has no GPU. Correct and very slow: tests use tiny
 * tensors and compare against the cpu backend. Needs Debian's chromium and libvulkan1.
 */
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { installChunkedAddN } from '../worker/backend';

const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

let ready: Promise<string> | undefined;

/** Registers a 'webgpu' tfjs backend backed by Dawn; resolves to the adapter's description. */
export function registerNodeWebGpu(): Promise<string> {
  ready ??= (async () => {
    if (!process.env.VK_ICD_FILENAMES && existsSync(SWIFTSHADER_ICD)) process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
    process.env.XDG_RUNTIME_DIR ??= tmpdir(); // Vulkan's loader complains without one.
    const { create, globals } = await import('webgpu');
    Object.assign(globalThis, globals);
    const gpu = create([]);
    // tfjs-backend-webgpu looks for navigator.gpu, which Node (before 21) has no navigator for.
    const nav = ((globalThis as { navigator?: object }).navigator ??= {}) as { gpu?: unknown };
    if (!nav.gpu) Object.defineProperty(nav, 'gpu', { value: gpu, configurable: true });
    const adapter = await gpu.requestAdapter();
    if (!adapter) {
      throw new Error(
        `No WebGPU adapter in Node. Install Debian's chromium (for ${SWIFTSHADER_ICD}) and libvulkan1: apt-get install chromium libvulkan1.`,
      );
    }
    const device = await adapter.requestDevice({
      requiredLimits: {
        maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
        maxBufferSize: adapter.limits.maxBufferSize,
        maxComputeWorkgroupStorageSize: adapter.limits.maxComputeWorkgroupStorageSize,
      },
    });
    if (tf.findBackendFactory('webgpu')) tf.removeBackend('webgpu');
    installChunkedAddN(); // the same AddN fix the lab's worker uses
    tf.registerBackend('webgpu', () => new WebGPUBackend(device, adapter.info));
    const info = adapter.info;
    return [info.vendor, info.architecture, info.description].filter(Boolean).join(' ') || 'unnamed adapter';
  })();
  return ready;
}
