/**
 * tfjs-backend-wasm 4.22's Slice (and SplitV, which slices once per part) reads its input with
 * `readSync`, which copies the whole input out of the wasm heap before taking the part it wants.
 * A slice of a few kilobytes out of a large tensor therefore costs a copy of the large tensor:
 * splitting the optimizer's joined weight vector (2.7 M floats) into its 52 variables copied
 * 570 MB and took 200–550 ms, and the gradient of every convolution that reads a sliced input
 * pays the same. These kernels copy only the part they return, straight from heap to heap with
 * `memory.copy` (wasm-heap-copy.ts). So do StridedSlice (positive strides; the stock kernel visits
 * one element at a time) and Concat (the stock kernel copies with TypedArray.set, 16x slower than
 * `memory.copy` on the threaded binary's shared heap). Strings keep the stock kernels.
 */
import * as tf from '@tensorflow/tfjs-core';
import { heapCopier } from './wasm-heap-copy';
import { replaceWasmKernel, type WasmBackend } from './wasm-kernels';

/**
 * Walks the box of a row-major array of `shape` that starts at `begin` and takes `size` entries
 * per axis, every `step`-th (default 1), as runs of contiguous elements. A run spans the innermost
 * axis that is not taken whole and every axis inside it (or, when that axis is stepped, one entry
 * of it); the runs along the next axis out come in one call,
 * `copyRuns(from, to, length, count, fromStride)`: `count` runs of `length` elements, the i-th at
 * `from + i·fromStride` in the array and at `to + i·length` in the box.
 */
export function copyBox(shape: readonly number[], begin: readonly number[], size: readonly number[], copyRuns: (from: number, to: number, length: number, count: number, fromStride: number) => void, step?: readonly number[]): void {
  const rank = shape.length;
  const total = size.reduce((a, b) => a * b, 1);
  if (total === 0) return;
  if (rank === 0) {
    copyRuns(0, 0, 1, 1, 0);
    return;
  }
  const steps = step ?? new Array<number>(rank).fill(1);
  const strides = new Array<number>(rank);
  strides[rank - 1] = 1;
  for (let a = rank - 2; a >= 0; a--) strides[a] = strides[a + 1]! * shape[a + 1]!;
  // The innermost axis that is not taken whole: below it, each index tuple is one contiguous run.
  let j = rank - 1;
  while (j > 0 && size[j] === shape[j] && begin[j] === 0 && steps[j] === 1) j--;
  // Unstepped, the run spans axis j and the runs go along the axis outside it; stepped, a run is
  // one entry of axis j and the runs go along axis j itself.
  const run = steps[j] === 1 ? size[j]! * strides[j]! : strides[j]!;
  const counted = steps[j] === 1 ? j - 1 : j;
  const count = counted >= 0 ? size[counted]! : 1;
  const stride = counted >= 0 ? strides[counted]! * steps[counted]! : 0;
  // The axes outside the counted one, walked one index tuple at a time.
  const outer = Math.max(0, counted);
  let first = 0;
  for (let a = 0; a <= j; a++) first += begin[a]! * strides[a]!;
  const index = new Array<number>(outer).fill(0);
  let written = 0;
  for (;;) {
    let offset = first;
    for (let a = 0; a < outer; a++) offset += index[a]! * strides[a]! * steps[a]!;
    copyRuns(offset, written, run, count, stride);
    written += run * count;
    // Next index tuple over the outer axes (an odometer, last axis fastest).
    let a = outer - 1;
    while (a >= 0 && ++index[a]! === size[a]!) index[a--] = 0;
    if (a < 0) return;
  }
}

/** Byte offset of a tensor's data in the heap, and its element size. */
function place(backend: WasmBackend, t: tf.TensorInfo): [number, number] {
  const view = backend.typedArrayFromHeap(t);
  return [view.byteOffset, view.BYTES_PER_ELEMENT];
}

/** The box of `x` at `begin`, `size` entries per axis, every `step`-th, as a tensor of `outShape` (its size). */
function sliceOf(backend: WasmBackend, x: tf.TensorInfo, begin: number[], size: number[], step?: number[], outShape = size): tf.TensorInfo {
  const out = backend.makeOutput(outShape, x.dtype);
  const [from, bytes] = place(backend, x);
  const [to] = place(backend, out);
  const copy = heapCopier(backend.wasm);
  copyBox(x.shape, begin, size, (offset, written, length, count, stride) => copy(to + written * bytes, from + offset * bytes, length * bytes, count, stride * bytes, length * bytes), step);
  return out;
}

/** Concat along `axis`: each input's rows (everything from the axis in) side by side in the output's. */
function concatOf(backend: WasmBackend, inputs: tf.TensorInfo[], axis: number): tf.TensorInfo | null {
  const parts = inputs.filter((t) => tf.util.sizeFromShape(t.shape) > 0);
  // One part: the stock kernel's shared-data identity; mixed dtypes: its error.
  if (parts.length < 2 || parts.some((t) => t.dtype !== parts[0]!.dtype)) return null;
  tf.backend_util.assertParamsConsistent(inputs.map((t) => t.shape), axis);
  const out = backend.makeOutput(tf.backend_util.computeOutShape(inputs.map((t) => t.shape), axis), parts[0]!.dtype);
  const rows = tf.util.sizeFromShape(parts[0]!.shape.slice(0, axis));
  const widths = parts.map((t) => tf.util.sizeFromShape(t.shape.slice(axis)));
  const total = widths.reduce((a, b) => a + b, 0);
  const [to, bytes] = place(backend, out);
  const copy = heapCopier(backend.wasm);
  let column = 0;
  parts.forEach((t, i) => {
    const width = widths[i]! * bytes;
    copy(to + column, place(backend, t)[0], width, rows, width, total * bytes);
    column += width;
  });
  return out;
}

export function sliceInPlaceOnWasm(): void {
  replaceWasmKernel('Slice', (x, args) => {
    const attrs = args.attrs as unknown as tf.SliceAttrs;
    const [begin, size] = tf.slice_util.parseSliceParams(x as tf.Tensor, attrs.begin, attrs.size);
    return sliceOf(args.backend as unknown as WasmBackend, x, begin!, size!);
  });
  replaceWasmKernel('SplitV', (x, args) => {
    const attrs = args.attrs as unknown as tf.SplitVAttrs;
    const axis = tf.util.parseAxisParam(attrs.axis, x.shape)[0]!;
    const sizes = tf.backend_util.prepareSplitSize(x as tf.Tensor, attrs.numOrSizeSplits, axis);
    const begin = new Array<number>(x.shape.length).fill(0);
    return sizes.map((s) => {
      const size = [...x.shape];
      size[axis] = s;
      const part = sliceOf(args.backend as unknown as WasmBackend, x, begin, size);
      begin[axis] = begin[axis]! + s;
      return part;
    });
  });
  // tfjs-wasm 4.22's StridedSlice visits one element at a time (about 210 ns each for a stride-2
  // window of a feature map, against 0.4–0.8 here) and misreads a shrunk axis next to a stride ≠ 1.
  // Negative strides keep the stock kernel.
  replaceWasmKernel('StridedSlice', (x, args) => {
    const a = args.attrs as unknown as tf.StridedSliceAttrs;
    const info = tf.slice_util.sliceInfo([...x.shape], a.begin, a.end, a.strides, a.beginMask, a.endMask, a.ellipsisMask, a.newAxisMask, a.shrinkAxisMask);
    if (info.strides.some((s) => s < 1)) return null;
    const counts = x.shape.map((_, d) => Math.max(0, Math.ceil((info.end[d]! - info.begin[d]!) / info.strides[d]!)));
    return sliceOf(args.backend as unknown as WasmBackend, x, info.begin, counts, info.strides, info.finalShape);
  });
  replaceWasmKernel('Concat', (first, args) => {
    const inputs = args.inputs as unknown as tf.TensorInfo[];
    const axis = tf.util.parseAxisParam((args.attrs as unknown as tf.ConcatAttrs).axis, first.shape)[0]!;
    return concatOf(args.backend as unknown as WasmBackend, inputs, axis);
  });
}
