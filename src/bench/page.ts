// The browser bench page: a fresh worker per run (a wasm thread count is fixed once its backend starts).
import * as Comlink from 'comlink';
import { SOFTWARE_RENDERER } from '../worker/backend-types';
import type { StepBenchOptions, StepBenchPage, StepBenchResult } from './types';

async function run(options: StepBenchOptions): Promise<StepBenchResult> {
  const worker = new Worker(new URL('./step.worker.ts', import.meta.url), { type: 'module' });
  const api = Comlink.wrap<{ run(o: StepBenchOptions): Promise<StepBenchResult> }>(worker);
  try {
    return await api.run(options);
  } finally {
    api[Comlink.releaseProxy]();
    worker.terminate();
  }
}

async function webgpuAdapter(): Promise<{ name: string; software: boolean } | { error: string }> {
  if (!navigator.gpu) return { error: 'navigator.gpu is missing (no WebGPU in this browser)' };
  // A freshly started browser can answer null while its GPU process is still starting (seen with
  // Chromium on Vulkan): ask again before calling WebGPU unavailable.
  let adapter: GPUAdapter | null = null;
  for (let attempt = 0; attempt < 4 && !adapter; attempt++) {
    if (attempt) await new Promise((done) => setTimeout(done, 500 * attempt));
    adapter = await navigator.gpu.requestAdapter({ powerPreference: 'high-performance' });
  }
  if (!adapter) return { error: 'the browser offered no WebGPU adapter' };
  const i = adapter.info;
  const name = [i.vendor, i.architecture, i.description, i.device].filter(Boolean).join(' ') || 'unnamed adapter';
  const fallback = (i as GPUAdapterInfo & { isFallbackAdapter?: boolean }).isFallbackAdapter === true;
  return { name, software: fallback || SOFTWARE_RENDERER.test(name) };
}

const page: StepBenchPage = { run, webgpuAdapter };
(window as unknown as { stepBench: StepBenchPage }).stepBench = page;
document.getElementById('status')!.textContent = `ready (cross-origin isolated: ${String(window.crossOriginIsolated)}, ${navigator.hardwareConcurrency} logical cores)`;
