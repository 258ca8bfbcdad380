/**
 * Leaky ReLU on wasm as one SIMD loop. tfjs-backend-wasm 4.22's LeakyRelu kernel is a scalar loop
 * on one thread (2 ns per value), and its fused convolutions (FusedConv2D, FusedDepthwiseConv2D)
 * apply a leaky ReLU with the same loop after XNNPACK has written the output: 2–7 ms after each of
 * NanoDet-g's larger convolutions at 416 px. Here LeakyRelu is an elementwise program
 * (wasm-elementwise.ts), and a fused convolution with a leaky ReLU runs the stock kernel without
 * the activation, then the program over its output in place. The values are the stock kernels'
 * bit for bit: x where x > 0, x · α (α a float32) elsewhere. A FusedConv2D the lab's own
 * convolution takes (wasm-conv.ts, installed after this and asked first) applies the activation
 * as it stores its tiles.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ew, type ElementwiseProgram } from './elementwise-program';
import { elementwiseLoop } from './wasm-elementwise';
import { replaceWasmKernel, stockWasmKernel, type WasmBackend } from './wasm-kernels';

/** x where x > 0, x · α elsewhere (input x; parameter α). */
const LEAKY: ElementwiseProgram = {
  inputs: 1,
  params: 1,
  outputs: [ew.select('gt', ew.input(0), ew.constant(0), ew.input(0), ew.mul(ew.input(0), ew.param(0)))],
};

export function leakyReluBySimdOnWasm(): void {
  replaceWasmKernel('LeakyRelu', (x, args) => {
    const backend = args.backend as unknown as WasmBackend;
    const leaky = x.dtype === 'float32' ? elementwiseLoop(backend.wasm, LEAKY) : null;
    if (!leaky) return null;
    const out = backend.makeOutput([...x.shape], 'float32');
    // Offsets after the allocation (a growing heap moves the views).
    leaky(tf.util.sizeFromShape(x.shape), backend.typedArrayFromHeap(out).byteOffset, backend.typedArrayFromHeap(x).byteOffset, (args.attrs as unknown as tf.LeakyReluAttrs).alpha);
    return out;
  });
  for (const name of ['FusedConv2D', 'FusedDepthwiseConv2D']) {
    replaceWasmKernel(name, (x, args) => {
      const attrs = args.attrs as unknown as tf.FusedConv2DAttrs;
      const backend = args.backend as unknown as WasmBackend;
      const leaky = attrs.activation === 'leakyrelu' && x.dtype === 'float32' ? elementwiseLoop(backend.wasm, LEAKY) : null;
      if (!leaky) return null;
      const out = stockWasmKernel(name)!({ ...args, attrs: { ...attrs, activation: 'linear' } as unknown as tf.NamedAttrMap }) as tf.TensorInfo;
      const at = backend.typedArrayFromHeap(out).byteOffset;
      leaky(tf.util.sizeFromShape(out.shape), at, at, attrs.leakyreluAlpha ?? 0.2);
      return out;
    });
  }
}
