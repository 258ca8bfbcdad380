// Plain types and constants about backends, importable by the page without pulling in tfjs.

export type BackendName = 'webgpu' | 'webgl' | 'wasm';
export const BACKEND_ORDER: readonly BackendName[] = ['webgpu', 'webgl', 'wasm'];

export interface AdapterReport {
  vendor: string;
  architecture: string;
  description: string;
  device: string;
  /** A fallback adapter is a software implementation (e.g. SwiftShader): correct, but slow. */
  isFallback: boolean;
}

export interface BackendAttempt {
  backend: BackendName;
  ok: boolean;
  /** Why this backend was not used (or a caveat when it was). */
  reason?: string;
  /** It works here, but on a software renderer (SwiftShader, llvmpipe): passed over unless asked for. */
  software?: boolean;
}

/** Renderer names of software GPUs: correct, but slower than wasm on the same CPU. */
export const SOFTWARE_RENDERER = /swiftshader|llvmpipe|lavapipe|softpipe|software|basic render/i;

export interface BackendReport {
  backend: BackendName;
  adapter?: AdapterReport;
  /** Every backend tried, best first, with the reason each better one was passed over. */
  attempts: BackendAttempt[];
  /** Whether a software GPU was accepted because it was asked for by name. */
  softwareAllowed?: boolean;
  /** wasm only: the threads its kernels run on, and why only one where that is so. */
  wasmThreads?: { count: number; note?: string };
}

