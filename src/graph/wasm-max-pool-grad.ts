/**
 * The gradient of max pooling on wasm as one SIMD loop. pool-grad.ts writes it with forward
 * kernels (per tap a strided slice, a comparison, the part of dy it takes, padded back into
 * place: about 40 kernels for a 3x3 pool), since tfjs-wasm's MaxPoolGrad returns wrong values.
 * Here each window, 4 channels at a time, walks its taps in row-major order and adds dy to the
 * first input equal to the window's maximum, as TensorFlow does; taps in the padding are skipped.
 */
import * as tf from '@tensorflow/tfjs-core';
import { namedLocals, oneFunctionModule, simdOp, VALTYPE } from './wasm-binary';
import { heapFunction } from './wasm-heap-copy';
import { elementwiseLoop } from './wasm-elementwise';
import { ZERO } from './wasm-zeros';
import { registerOwnWasmKernel, type WasmBackend } from './wasm-kernels';

/** Adds one image's max-pool gradient into `dx` (h x w pixels of `pixelBytes`); y and dy are oh x ow. */
export type MaxPoolGradient = (dx: number, x: number, y: number, dy: number, oh: number, ow: number, cBlocks: number, h: number, w: number, kh: number, kw: number, sh: number, sw: number, pt: number, pl: number, pixelBytes: number) => void;

export function maxPoolGradientModule(sharedMemory: boolean): Uint8Array<ArrayBuffer> {
  const params = ['dx', 'x', 'y', 'dy', 'oh', 'ow', 'cBlocks', 'h', 'w', 'kh', 'kw', 'sh', 'sw', 'pt', 'pl', 'pixelBytes'];
  const L = namedLocals(params, ['oy', 'ox', 'out', 'cb', 'off', 'ky', 'kx', 'iy', 'ix', 'at'], ['yv', 'dv', 'taken', 'eq']);
  const { get, set, i32, addTo, countDown } = L;
  const [add, sub, mul, ltU] = [0x6a, 0x6b, 0x6c, 0x49];
  const load = [...simdOp(0x00), 0x04, 0x00];
  const store = [...simdOp(0x0b), 0x04, 0x00];
  // Row (or column) o·s + (k − counter) − pad of tap counter (k .. 1 running down).
  const inputIndex = (o: string, s: string, k: string, counter: string, pad: string) => [...get(o), ...get(s), mul, ...get(k), ...get(counter), sub, add, ...get(pad), sub];
  const tap = [
    ...inputIndex('ox', 'sw', 'kw', 'kx', 'pl'), ...set('ix'),
    ...get('ix'), ...get('w'), ltU, 0x04, 0x40,
    ...get('iy'), ...get('w'), mul, ...get('ix'), add, ...get('pixelBytes'), mul, ...get('off'), add, ...set('at'),
    // eq: this tap holds the maximum and no earlier tap took it.
    ...get('x'), ...get('at'), add, ...load, ...get('yv'), ...simdOp(0x41), ...get('taken'), ...simdOp(0x4f), ...set('eq'),
    ...get('dx'), ...get('at'), add, ...get('dx'), ...get('at'), add, ...load, ...get('dv'), ...get('eq'), ...simdOp(0x4e), ...simdOp(0xe4), ...store,
    ...get('taken'), ...get('eq'), ...simdOp(0x50), ...set('taken'),
    0x0b,
  ];
  const window = [
    ...get('y'), ...get('out'), add, ...get('off'), add, ...load, ...set('yv'),
    ...get('dy'), ...get('out'), add, ...get('off'), add, ...load, ...set('dv'),
    ...simdOp(0x0c), ...Array<number>(16).fill(0), ...set('taken'),
    ...countDown('ky', get('kh'), [
      ...inputIndex('oy', 'sh', 'kh', 'ky', 'pt'), ...set('iy'),
      ...get('iy'), ...get('h'), ltU, 0x04, 0x40,
      ...countDown('kx', get('kw'), tap),
      0x0b,
    ]),
  ];
  const code = [
    ...L.declarations,
    ...i32(0), ...set('oy'), ...i32(0), ...set('out'),
    0x02, 0x40, ...get('oh'), 0x45, 0x0d, 0x00, ...get('ow'), 0x45, 0x0d, 0x00, ...get('cBlocks'), 0x45, 0x0d, 0x00,
    0x03, 0x40, // each output row
    ...i32(0), ...set('ox'),
    0x03, 0x40, // each output column
    ...i32(0), ...set('off'),
    ...countDown('cb', get('cBlocks'), [...window, ...addTo('off', i32(16))]),
    ...addTo('out', get('pixelBytes')),
    ...addTo('ox', i32(1)), ...get('ox'), ...get('ow'), 0x47, 0x0d, 0x00,
    0x0b,
    ...addTo('oy', i32(1)), ...get('oy'), ...get('oh'), 0x47, 0x0d, 0x00,
    0x0b,
    0x0b,
    0x0b,
  ];
  return oneFunctionModule(sharedMemory, 'maxPoolGradient', Array<number>(params.length).fill(VALTYPE.i32), code);
}

type Pair = [number, number];
interface MaxPoolGradAttrs {
  ksize: Pair;
  strides: Pair;
  /** Rows and columns of padding before the input. */
  pads: Pair;
}
const KERNEL = 'LabMaxPoolGrad';

function registerKernel(): void {
  registerOwnWasmKernel(KERNEL, ({ inputs, backend, attrs }) => {
    const { ksize, strides, pads } = attrs as unknown as MaxPoolGradAttrs;
    const wasm = backend as unknown as WasmBackend;
    const [x, y, dy] = [inputs['x'], inputs['y'], inputs['dy']] as [tf.TensorInfo, tf.TensorInfo, tf.TensorInfo];
    const [n, h, w, c] = x.shape as [number, number, number, number];
    const [, oh, ow] = y.shape as [number, number, number, number];
    const dx = wasm.makeOutput([n, h, w, c], 'float32');
    elementwiseLoop(wasm.wasm, ZERO)!(n * h * w * c, wasm.typedArrayFromHeap(dx).byteOffset);
    const run = heapFunction<MaxPoolGradient>(wasm.wasm, 'maxPoolGradient', maxPoolGradientModule, 'maxPoolGradient')!;
    const [dxb, xb, yb, dyb] = [dx, x, y, dy].map((t) => wasm.typedArrayFromHeap(t).byteOffset) as [number, number, number, number];
    for (let b = 0; b < n; b++) {
      const [inAt, outAt] = [b * h * w * c * 4, b * oh * ow * c * 4];
      run(dxb + inAt, xb + inAt, yb + outAt, dyb + outAt, oh, ow, c / 4, h, w, ksize[0], ksize[1], strides[0], strides[1], pads[0], pads[1], c * 4);
    }
    return dx;
  });
}

/**
 * The gradient at dy of y = maxPool(x) (x [N,H,W,C], explicit pads before the input
 * [top, left]) on wasm; null where this path does not apply (not wasm, C not a multiple of 4,
 * not float32).
 */
export function maxPoolGradientOnWasm(x: tf.Tensor4D, y: tf.Tensor4D, dy: tf.Tensor4D, ksize: Pair, strides: Pair, padsBefore: Pair): tf.Tensor4D | null {
  if (tf.getBackend() !== 'wasm' || x.shape[3] % 4 !== 0 || [x, y, dy].some((t) => t.dtype !== 'float32')) return null;
  const wasm = (tf.backend() as unknown as WasmBackend).wasm;
  if (!heapFunction(wasm, 'maxPoolGradient', maxPoolGradientModule, 'maxPoolGradient') || !elementwiseLoop(wasm, ZERO)) return null;
  registerKernel();
  const attrs: MaxPoolGradAttrs = { ksize, strides, pads: padsBefore };
  return tf.engine().runKernel(KERNEL, { x, y, dy }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor4D;
}
