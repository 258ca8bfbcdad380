import * as tf from '@tensorflow/tfjs';
import { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { setThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import { setHelperHost, type HelperHost } from '../graph/heap-helpers';
import { heapMemory } from '../graph/wasm-heap-copy';
import { startWasmKernelHelpers } from '../graph/wasm-kernel-helpers';

import type { AdapterReport, BackendName, BackendReport, BackendAttempt } from './backend-types';
import { BACKEND_ORDER, SOFTWARE_RENDERER } from './backend-types';

export type { AdapterReport, BackendName, BackendReport, BackendAttempt };

/** Our own registration of the WebGPU backend, so the lab holds the adapter's facts and the device. */
let webgpuAdapter: AdapterReport | undefined;
let webgpuDevice: GPUDevice | undefined;

async function createWebGpuBackend(): Promise<WebGPUBackend> {
  if (typeof navigator === 'undefined' || !('gpu' in navigator) || !navigator.gpu) {
    throw new Error('navigator.gpu is missing: this browser or context has no WebGPU (needs Chrome 113+ on https or localhost).');
  }
  const adapter = await navigator.gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) {
    throw new Error('the browser offered no WebGPU adapter: the GPU may be blocklisted or WebGPU disabled (see chrome://gpu).');
  }
  const info = adapter.info;
  const limits = adapter.limits;
  const requiredFeatures: GPUFeatureName[] = [];
  if (adapter.features.has('timestamp-query')) requiredFeatures.push('timestamp-query');
  if (adapter.features.has('bgra8unorm-storage')) requiredFeatures.push('bgra8unorm-storage');
  // tfjs-backend-webgpu sizes its buffers and workgroups from these, so ask for the adapter's maxima.
  const device = await adapter.requestDevice({
    requiredFeatures,
    requiredLimits: {
      maxComputeWorkgroupStorageSize: limits.maxComputeWorkgroupStorageSize,
      maxComputeWorkgroupsPerDimension: limits.maxComputeWorkgroupsPerDimension,
      maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize,
      maxBufferSize: limits.maxBufferSize,
      maxComputeWorkgroupSizeX: limits.maxComputeWorkgroupSizeX,
      maxComputeInvocationsPerWorkgroup: limits.maxComputeInvocationsPerWorkgroup,
    },
  });
  const legacyFallback = (adapter as unknown as { isFallbackAdapter?: boolean }).isFallbackAdapter;
  const flagged = Boolean((info as GPUAdapterInfo & { isFallbackAdapter?: boolean }).isFallbackAdapter ?? legacyFallback);
  webgpuAdapter = {
    vendor: info.vendor,
    architecture: info.architecture,
    description: info.description,
    device: info.device,
    // Some browsers do not flag SwiftShader as a fallback adapter: its name says it.
    isFallback: flagged || SOFTWARE_RENDERER.test([info.vendor, info.architecture, info.description, info.device].join(' ')),
  };
  webgpuDevice = device;
  // tfjs does not watch for validation errors; a silent one means wrong numbers, so say it.
  device.addEventListener('uncapturederror', (event) => {
    console.error(`WebGPU error: ${(event as GPUUncapturedErrorEvent).error.message}`);
  });
  return new WebGPUBackend(device, info);
}

/**
 * tfjs-backend-webgpu's AddN binds every input as a storage buffer in one shader; past the
 * device's maxStorageBuffersPerShaderStage (8 by default, output included) the pipeline is
 * invalid and WebGPU drops the whole command buffer, so the sum, and every result queued with
 * it, silently comes out wrong. A distillation step adds one loss per method plus the detection
 * loss (8 with every method), so sums are done here in chunks that fit.
 */
export function installChunkedAddN(): void {
  const original = tf.getKernel('AddN', 'webgpu');
  if (!original) return;
  tf.unregisterKernel('AddN', 'webgpu');
  tf.registerKernel({
    kernelName: 'AddN',
    backendName: 'webgpu',
    kernelFunc: (args) => {
      const inputs = args.inputs as unknown as tf.TensorInfo[];
      const backend = args.backend as WebGPUBackend;
      const maxInputs = Math.max(2, backend.device.limits.maxStorageBuffersPerShaderStage - 1);
      const sum = (list: tf.TensorInfo[]) => original.kernelFunc({ ...args, inputs: list as unknown as tf.NamedTensorInfoMap }) as tf.TensorInfo;
      let level = inputs;
      const made: tf.TensorInfo[] = [];
      while (level.length > maxInputs) {
        const next: tf.TensorInfo[] = [];
        for (let i = 0; i < level.length; i += maxInputs) {
          const chunk = level.slice(i, i + maxInputs);
          if (chunk.length === 1) next.push(chunk[0]!);
          else {
            const part = sum(chunk);
            made.push(part);
            next.push(part);
          }
        }
        level = next;
      }
      const out = sum(level);
      for (const t of made) backend.disposeData(t.dataId);
      return out;
    },
  });
}

/** The device the WebGPU backend runs on, once chosen; `lost` resolves if the GPU goes away. */
export function currentWebGpuDevice(): GPUDevice | undefined {
  return webgpuDevice;
}

/** tfjs logs and swallows a backend factory's error; keep it so the user sees the real reason. */
const factoryErrors = new Map<BackendName, string>();

let registered = false;
function registerBackends() {
  if (registered) return;
  registered = true;
  installChunkedAddN();
  // Replace the package's own registration (it hides the adapter and device from us).
  if (tf.findBackendFactory('webgpu')) tf.removeBackend('webgpu');
  tf.registerBackend(
    'webgpu',
    async () => {
      try {
        return await createWebGpuBackend();
      } catch (error) {
        factoryErrors.set('webgpu', error instanceof Error ? error.message : String(error));
        throw error;
      }
    },
    3,
  );
}

/** A tiny computation whose answer is known, so a backend that initialises but computes garbage is caught. */
async function sanityCheck(): Promise<void> {
  const x = tf.tensor2d([1, 2, 3, 4], [2, 2]);
  const y = tf.matMul(x, x);
  const values = await y.data();
  tf.dispose([x, y]);
  const expected = [7, 10, 15, 22];
  if (!expected.every((v, i) => Math.abs((values[i] ?? NaN) - v) < 1e-4)) {
    throw new Error(`it computed [${Array.from(values).join(', ')}] for a 2x2 matMul that should give [${expected.join(', ')}].`);
  }
}

function explainFallbackAdapter(a: AdapterReport): string {
  const name = [a.vendor, a.architecture, a.description].filter(Boolean).join(' ') || 'unknown';
  return `WebGPU runs on a software (fallback) adapter, ${name}: no hardware GPU adapter was offered to this page (headless Chrome, a GPU-less machine, or a blocklisted driver). It is correct but far slower than a GPU.`;
}

/** The WebGL renderer's name, when the browser tells it (WEBGL_debug_renderer_info). */
function webglRenderer(): string | undefined {
  const gl = (tf.backend() as unknown as { gpgpu?: { gl?: WebGL2RenderingContext } }).gpgpu?.gl;
  if (!gl) return undefined;
  const ext = gl.getExtension('WEBGL_debug_renderer_info');
  const name = ext ? gl.getParameter(ext.UNMASKED_RENDERER_WEBGL) : gl.getParameter(gl.RENDERER);
  return typeof name === 'string' ? name : undefined;
}

/** Whether the backend just set up computes on a software renderer, and its name. */
function softwareRenderer(backend: BackendName): string | undefined {
  if (backend === 'webgpu' && webgpuAdapter?.isFallback) return [webgpuAdapter.vendor, webgpuAdapter.architecture, webgpuAdapter.description].filter(Boolean).join(' ') || 'a fallback adapter';
  if (backend === 'webgl') {
    const name = webglRenderer();
    if (name && SOFTWARE_RENDERER.test(name)) return name;
  }
  return undefined;
}

/**
 * The lab's wasm kernel threads: the caller and its helpers (graph/heap-helpers.ts). tfjs-wasm's
 * own pool runs on one thread: what is left of its kernels in a training step is small, and
 * XNNPACK wakes and waits for its pool on every one (src/cli/wasm-threads.ts says more).
 */
let labThreads = 1;
/** At most this many (as the command line's --threads). */
const MAX_THREADS = 8;

/**
 * Helpers for the lab's own wasm kernels: Web Workers from a Blob of their source, which inherit
 * this worker's cross-origin isolation (so they can share the heap); as many as the backend's
 * threads less one.
 */
const browserHelperHost: HelperHost = {
  start: (source, data) => {
    const url = URL.createObjectURL(new Blob([`onmessage = (event) => (${source})(event.data);`], { type: 'text/javascript' }));
    const worker = new Worker(url);
    worker.postMessage(data);
    return { terminate: () => worker.terminate() };
  },
  threads: () => labThreads,
};

/** How long the wasm backend's start waits for the kernels' helper workers. */
const HELPER_START_MS = 5000;
/** Helper workers ready per kernel module when the wasm backend started (the threads beyond the caller's). */
let helpersReady = 0;

async function trySetBackend(backend: BackendName, wasmThreadCount?: number): Promise<void> {
  if (backend === 'wasm' && (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated && typeof navigator !== 'undefined') {
    // One kernel thread per logical core by default (the backend's own default leaves half idle).
    labThreads = Math.max(1, Math.min(MAX_THREADS, wasmThreadCount ?? (navigator.hardwareConcurrency || 1)));
    setThreadsCount(1);
    // The lab's own wasm kernels share the heap with helper workers (graph/heap-helpers.ts).
    if (typeof Worker !== 'undefined') setHelperHost(browserHelperHost);
  }
  const ok = await tf.setBackend(backend);
  if (!ok) throw new Error('tf.setBackend returned false');
  await tf.ready();
  await sanityCheck();
  // The kernels' helper workers start now, while this worker returns to its event loop.
  if (backend === 'wasm') helpersReady = await startWasmKernelHelpers(HELPER_START_MS);
}

export interface SelectOptions {
  /**
   * Accept a software GPU (SwiftShader, llvmpipe) when it comes first. By default one is passed
   * over for the next backend that works (wasm runs 5–10x faster on the same CPU), and used only
   * when nothing after it works.
   */
  allowSoftware?: boolean;
  /** wasm: kernel threads where the threaded binary loads (default: one per logical core). */
  wasmThreads?: number;
}

/**
 * Picks the best backend that works here: the preference order (default webgpu, webgl, wasm),
 * each initialised and checked on a known computation before it is accepted. A GPU backend on a
 * software renderer is passed over (see SelectOptions) and the report says why.
 */
export async function selectBackend(order: readonly BackendName[] = BACKEND_ORDER, options: SelectOptions = {}): Promise<BackendReport> {
  registerBackends();
  const attempts: BackendAttempt[] = [];
  let softwareCandidate: BackendAttempt | undefined;
  for (const [i, backend] of order.entries()) {
    try {
      await trySetBackend(backend, options.wasmThreads);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      attempts.push({ backend, ok: false, reason: describeFailure(backend, message) });
      continue;
    }
    const adapter = backend === 'webgpu' ? webgpuAdapter : undefined;
    const software = softwareRenderer(backend);
    if (software && !options.allowSoftware && i < order.length - 1) {
      const attempt: BackendAttempt = {
        backend,
        ok: false,
        software: true,
        reason: `it works here, but on a software renderer (${software}) that computes on the CPU, where wasm is usually 5–10x faster; ${order.slice(i + 1).join(' and ')} ${i < order.length - 2 ? 'are' : 'is'} tried first. Choose ${backend} below to use it anyway.`,
      };
      attempts.push(attempt);
      softwareCandidate ??= attempt;
      continue;
    }
    const reason = adapter?.isFallback ? explainFallbackAdapter(adapter) : software ? `WebGL runs on a software renderer (${software}): correct but far slower than a GPU.` : undefined;
    attempts.push({ backend, ok: true, reason, software: software ? true : undefined });
    return { backend, adapter, attempts, softwareAllowed: software ? options.allowSoftware === true : undefined, wasmThreads: backend === 'wasm' ? wasmThreads(options.wasmThreads) : undefined };
  }
  if (softwareCandidate) {
    // Nothing faster works: the software GPU it is, after all.
    const backend = softwareCandidate.backend;
    await trySetBackend(backend, options.wasmThreads);
    const adapter = backend === 'webgpu' ? webgpuAdapter : undefined;
    softwareCandidate.ok = true;
    softwareCandidate.reason = `${adapter ? explainFallbackAdapter(adapter) : 'It runs on a software renderer.'} Used because no faster backend works here.`;
    return { backend, adapter, attempts };
  }
  throw new Error(`No TensorFlow.js backend works in this browser:\n${attempts.map((a) => `- ${a.backend}: ${a.reason}`).join('\n')}`);
}

/**
 * The wasm backend's thread count. tfjs-backend-wasm loads its multi-threaded binary only where
 * SharedArrayBuffer may be used, i.e. on a cross-origin isolated page (the dev and preview servers
 * send COOP same-origin and COEP require-corp for that); it runs on one thread otherwise.
 */
function wasmThreads(requested?: number): { count: number; note?: string } {
  const wasm = (tf.backend() as unknown as { wasm?: object }).wasm;
  const memory = wasm ? heapMemory(wasm) : undefined;
  const shared = typeof SharedArrayBuffer !== 'undefined' && memory?.buffer instanceof SharedArrayBuffer;
  // The caller and the helpers that started (a helper that did not is a thread the kernels lack).
  const count = shared ? Math.min(labThreads, 1 + helpersReady) : 1;
  if (count > 1 || (shared && labThreads > 1)) {
    const missing = labThreads - count;
    return missing > 0 ? { count, note: `${count} of ${labThreads} threads: ${missing} helper worker${missing === 1 ? '' : 's'} of the lab's kernels did not start within ${HELPER_START_MS / 1000} s, so its kernels run on fewer threads (reloading the page may help)` } : { count };
  }
  const isolated = (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated;
  const threaded = tf.env().getFlags()['WASM_HAS_MULTITHREAD_SUPPORT'] === true;
  const cores = typeof navigator !== 'undefined' ? navigator.hardwareConcurrency : undefined;
  const note =
    isolated === false
      ? 'one thread: the page is not cross-origin isolated (it needs Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp), so the multi-threaded wasm binary cannot load'
      : isolated === undefined
        ? 'one thread: tfjs-backend-wasm 4.22 runs single-threaded outside the browser'
        : !threaded
          ? 'one thread: this browser offers no WebAssembly threads (SharedArrayBuffer and atomics), so the multi-threaded binary cannot load'
          : requested === 1
            ? 'one thread, as asked'
            : cores === 1
              ? 'one thread: the browser reports one logical core'
              : 'one thread';
  return { count, note };
}

function describeFailure(backend: BackendName, message: string): string {
  const factoryError = factoryErrors.get(backend);
  if (factoryError) return factoryError;
  const unavailable = /setBackend returned false|not found in registry/.test(message);
  if (backend === 'webgpu' && unavailable) return 'WebGPU could not be initialised here (see the console and chrome://gpu).';
  if (backend === 'webgl' && unavailable) return 'WebGL2 is not available here (no OffscreenCanvas WebGL2 context in this worker or runtime).';
  if (unavailable) return `the ${backend} backend could not be initialised here.`;
  return message;
}
