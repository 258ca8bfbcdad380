/**
 * Starts the helper threads of the lab's wasm kernels that share their work with helpers (the
 * convolutions and the filter gradients: graph/heap-helpers.ts) when the backend starts, and
 * waits until they are ready. Started inside a kernel, a helper would join a few kernels later in
 * Node, and in a browser worker only once that worker returns to its event loop, which a
 * training loop awaiting settled promises never does: there the kernels ran on one thread.
 */
import * as tf from '@tensorflow/tfjs-core';
// Imported for their registration of their helper modules (helperModule).
import './wasm-conv';
import './wasm-filter-grad';
import { startHelpers } from './heap-helpers';
import { heapMemory } from './wasm-heap-copy';

/** Starts every kernel's helpers on the wasm backend's heap; resolves with how many each has ready (0 off wasm, or single-threaded). */
export async function startWasmKernelHelpers(timeoutMs = 10_000): Promise<number> {
  if (tf.getBackend() !== 'wasm') return 0;
  const memory = heapMemory((tf.backend() as unknown as { wasm: object }).wasm);
  return memory ? startHelpers(memory, timeoutMs) : 0;
}
