/**
 * tfjs-backend-wasm 4.22's Sum and Mean reduce only innermost axes: for any other axes they
 * first transpose the whole input so that those axes come last (a strided copy that costs 4–9 ns
 * per element), then sum each row. Reductions over leading axes are common in training: a
 * statistic per channel over the batch and positions ([0,1,2] of an NHWC map, FitNets' teacher
 * spread), a channel attention over the positions ([1,2], FGD), a bias gradient. These kernels
 * sum such axes in one pass over the input in memory order instead, without the transpose.
 *
 * The result is bit for bit the stock one: each output accumulates its inputs in the same order
 * (row-major over the reduced axes) in float32, and Mean divides the float32 sum by the count
 * once, as the stock kernel does. Innermost axes, axes that are not one contiguous block, and
 * other dtypes keep the stock kernel.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ew, type ElementwiseProgram } from './elementwise-program';
import { elementwiseLoop } from './wasm-elementwise';
import { replaceWasmKernel, type WasmBackend } from './wasm-kernels';
import { ZERO } from './wasm-zeros';

/**
 * The reduced axes as one block [outer, reduced, inner] of the row-major input: null when they
 * are innermost (the stock kernel needs no transpose) or not contiguous.
 */
export function reductionBlock(shape: readonly number[], axes: readonly number[]): { outer: number; reduced: number; inner: number } | null {
  if (axes.length === 0) return null;
  const sorted = [...axes].sort((a, b) => a - b);
  const first = sorted[0]!;
  const last = sorted[sorted.length - 1]!;
  if (last - first + 1 !== sorted.length) return null;
  const size = (from: number, to: number) => shape.slice(from, to).reduce((a, b) => a * b, 1);
  const inner = size(last + 1, shape.length);
  // Innermost, or only size-1 axes after the block: rows already end to end.
  if (inner === 1) return null;
  return { outer: size(0, first), reduced: size(first, last + 1), inner };
}

/** Sums `src` viewed as [outer, reduced, inner] over its middle axis into `out` [outer, inner], in order. */
export function sumBlock(src: Float32Array, block: { outer: number; reduced: number; inner: number }, out: Float32Array): void {
  const { outer, reduced, inner } = block;
  out.fill(0, 0, outer * inner);
  for (let o = 0; o < outer; o++) {
    const acc = out.subarray(o * inner, (o + 1) * inner);
    let base = o * reduced * inner;
    // Each add is rounded to float32 by the store, as the stock kernel's float accumulator is.
    for (let r = 0; r < reduced; r++, base += inner) {
      for (let i = 0; i < inner; i++) acc[i] = acc[i]! + src[base + i]!;
    }
  }
}

/**
 * out = out + row (in place) and out = out / count: with wasm-zeros.ts's ZERO, the loops a
 * reduction runs on the heap.
 */
const ADD: ElementwiseProgram = { inputs: 2, params: 0, outputs: [ew.add(ew.input(0), ew.input(1))] };
const DIVIDE: ElementwiseProgram = { inputs: 1, params: 1, outputs: [ew.div(ew.input(0), ew.param(0))] };

/**
 * `sumBlock` with SIMD loops on the heap (4 outputs per instruction, each accumulated in the same
 * order, so the same sums): one call per reduced row. Offsets in bytes.
 */
function sumBlockOnHeap(wasm: object, from: number, block: { outer: number; reduced: number; inner: number }, to: number, mean: boolean): boolean {
  const [zero, add, divide] = [elementwiseLoop(wasm, ZERO), elementwiseLoop(wasm, ADD), elementwiseLoop(wasm, DIVIDE)];
  if (!zero || !add || !divide) return false;
  const { outer, reduced, inner } = block;
  zero(outer * inner, to);
  const rowBytes = inner * 4;
  for (let o = 0; o < outer; o++) {
    const acc = to + o * rowBytes;
    let row = from + o * reduced * rowBytes;
    for (let r = 0; r < reduced; r++, row += rowBytes) add(inner, acc, acc, row);
  }
  if (mean) divide(outer * inner, to, to, reduced);
  return true;
}

/** The reduction on the heap, or null where the stock kernel takes it. */
export function reduceOnHeap(kind: 'Sum' | 'Mean', x: tf.TensorInfo, args: Parameters<tf.KernelFunc>[0]): tf.TensorInfo | null {
  if (x.dtype !== 'float32') return null;
  const attrs = args.attrs as unknown as tf.SumAttrs;
  const axes = tf.util.parseAxisParam(attrs.axis, x.shape);
  const block = reductionBlock(x.shape, axes);
  if (!block || block.outer * block.reduced * block.inner === 0) return null;
  const backend = args.backend as unknown as WasmBackend;
  const outShape = attrs.keepDims ? x.shape.map((d, a) => (axes.includes(a) ? 1 : d)) : x.shape.filter((_, a) => !axes.includes(a));
  const out = backend.makeOutput(outShape, 'float32');
  // Views are taken after the output's allocation, which may grow (and so move) the heap.
  const result = backend.typedArrayFromHeap(out) as Float32Array;
  const input = backend.typedArrayFromHeap(x) as Float32Array;
  if (sumBlockOnHeap(backend.wasm, input.byteOffset, block, result.byteOffset, kind === 'Mean')) return out;
  sumBlock(input, block, result);
  if (kind === 'Mean') for (let i = 0; i < result.length; i++) result[i] = result[i]! / block.reduced;
  return out;
}

export function reduceWithoutTransposeOnWasm(): void {
  for (const kind of ['Sum', 'Mean'] as const) {
    replaceWasmKernel(kind, (x, args) => reduceOnHeap(kind, x, args));
  }
}
