/**
 * WebGPU in Node: Dawn through the npm `webgpu` package. Tests run it on SwiftShader (Chromium's
 * software Vulkan driver), correct and very slow: they use tiny tensors and compare against the cpu
 * backend (needs Debian's chromium and libvulkan1). The command line (`distill --backend webgpu`,
 * `bench --backend webgpu`) asks for the machine's own Vulkan driver, a GPU's.
 */
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { installChunkedAddN } from '../worker/backend';

const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

let ready: Promise<string> | undefined;

/**
 * Registers a 'webgpu' tfjs backend backed by Dawn; resolves to the adapter's description.
 * `software` (tests): SwiftShader unless VK_ICD_FILENAMES names another driver; otherwise whatever
 * Vulkan drivers the machine has (on a machine with Debian's chromium, pointing the loader at
 * SwiftShader would hide a real GPU).
 */
export function registerNodeWebGpu(o: { software?: boolean } = { software: true }): Promise<string> {
  ready ??= (async () => {
    if (o.software && !process.env.VK_ICD_FILENAMES && existsSync(SWIFTSHADER_ICD)) process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
    process.env.XDG_RUNTIME_DIR ??= tmpdir(); // Vulkan's loader complains without one.
    const { create, globals } = await import('webgpu');
    Object.assign(globalThis, globals);
    const gpu = create([]);
    // tfjs-backend-webgpu looks for navigator.gpu, which Node (before 21) has no navigator for.
    const nav = ((globalThis as { navigator?: object }).navigator ??= {}) as { gpu?: unknown };
    if (!nav.gpu) Object.defineProperty(nav, 'gpu', { value: gpu, configurable: true });
    const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
    if (!adapter) {
      throw new Error(
        o.software
          ? `No WebGPU adapter in Node. Install Debian's chromium (for ${SWIFTSHADER_ICD}) and libvulkan1: apt-get install chromium libvulkan1.`
          : `No WebGPU adapter in Node: no Vulkan driver answered. Install the GPU's Vulkan driver and libvulkan1 (VK_ICD_FILENAMES names a driver's JSON file), or train with --backend wasm.`,
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
