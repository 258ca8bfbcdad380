/**
 * tfjs-backend-wasm 4.22's ZerosLike fills its output with TypedArray.fill, element by element on
 * the threaded binary's shared heap. Backprop calls it at every gradient that starts from zeros
 * (a stopped gradient, a comparison's, the input tfjs's own gradients ignore); here the output
 * of 4-byte elements is zeroed by a SIMD loop on the heap instead. Booleans (1 byte) keep the
 * stock kernel.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ew, type ElementwiseProgram } from './elementwise-program';
import { elementwiseLoop } from './wasm-elementwise';
import { replaceWasmKernel, type WasmBackend } from './wasm-kernels';

/** Zero bits: 0 for float32 and for int32 alike (also what a reduction on the heap starts from, wasm-reduce.ts). */
export const ZERO: ElementwiseProgram = { inputs: 0, params: 0, outputs: [ew.constant(0)] };

export function zerosOnHeapOnWasm(): void {
  replaceWasmKernel('ZerosLike', (x, args) => {
    if (x.dtype !== 'float32' && x.dtype !== 'int32') return null;
    const backend = args.backend as unknown as WasmBackend;
    const zero = elementwiseLoop(backend.wasm, ZERO);
    if (!zero) return null;
    const out = backend.makeOutput([...x.shape], x.dtype);
    zero(tf.util.sizeFromShape(x.shape), backend.typedArrayFromHeap(out).byteOffset);
    return out;
  });
}
