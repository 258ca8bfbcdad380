/**
 * tfjs-backend-wasm 4.22's Slice (and SplitV, which slices once per part) reads its input with
 * `readSync`, which copies the whole input out of the wasm heap before taking the part it wants.
 * A slice of a few kilobytes out of a large tensor therefore costs a copy of the large tensor:
 * splitting the optimizer's joined weight vector (2.7 M floats) into its 52 variables copied
 * 570 MB and took 200–550 ms, and the gradient of every convolution that reads a sliced input
 * pays the same. These kernels copy only the part they return, straight from heap to heap with
 * `memory.copy` (wasm-heap-copy.ts), as does Concat, whose stock kernel copies with
 * TypedArray.set: 16x slower than `memory.copy` on the threaded binary's shared heap. Strings
 * keep the stock path.
 */
import * as tf from '@tensorflow/tfjs-core';
import { heapCopier } from './wasm-heap-copy';
import { replaceWasmKernel } from './wasm-kernels';

interface WasmBackend {
  wasm: object;
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
}

/**
 * Walks the box `begin`…`begin + size` of a row-major array of `shape` as runs of contiguous
 * elements. A run spans the innermost axis that is not taken whole and every axis inside it;
 * the runs along the axis just outside it come in one call,
 * `copyRuns(from, to, length, count, fromStride)`: `count` runs of `length` elements, the i-th
 * at `from + i·fromStride` in the array and at `to + i·length` in the box.
 */
export function copyBox(shape: readonly number[], begin: readonly number[], size: readonly number[], copyRuns: (from: number, to: number, length: number, count: number, fromStride: number) => void): void {
  const rank = shape.length;
  const total = size.reduce((a, b) => a * b, 1);
  if (total === 0) return;
  if (rank === 0) {
    copyRuns(0, 0, 1, 1, 0);
    return;
  }
  const strides = new Array<number>(rank);
  strides[rank - 1] = 1;
  for (let a = rank - 2; a >= 0; a--) strides[a] = strides[a + 1]! * shape[a + 1]!;
  // The innermost axis that is not taken whole: below it, each index tuple is one contiguous run.
  let j = rank - 1;
  while (j > 0 && size[j] === shape[j] && begin[j] === 0) j--;
  const run = size[j]! * strides[j]!;
  // The axis whose runs go in one call, and the axes outside it, walked one index tuple at a time.
  const counted = j - 1;
  const count = counted >= 0 ? size[counted]! : 1;
  const stride = counted >= 0 ? strides[counted]! : 0;
  const outer = Math.max(0, counted);
  const index = new Array<number>(outer).fill(0);
  let written = 0;
  for (;;) {
    let offset = begin[j]! * strides[j]!;
    if (counted >= 0) offset += begin[counted]! * stride;
    for (let a = 0; a < outer; a++) offset += (begin[a]! + index[a]!) * strides[a]!;
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

function sliceOf(backend: WasmBackend, x: tf.TensorInfo, begin: number[], size: number[]): tf.TensorInfo {
  const out = backend.makeOutput(size, x.dtype);
  const [from, bytes] = place(backend, x);
  const [to] = place(backend, out);
  const copy = heapCopier(backend.wasm);
  copyBox(x.shape, begin, size, (offset, written, length, count, stride) => copy(to + written * bytes, from + offset * bytes, length * bytes, count, stride * bytes, length * bytes));
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
  replaceWasmKernel('Concat', (first, args) => {
    const inputs = args.inputs as unknown as tf.TensorInfo[];
    const axis = tf.util.parseAxisParam((args.attrs as unknown as tf.ConcatAttrs).axis, first.shape)[0]!;
    return concatOf(args.backend as unknown as WasmBackend, inputs, axis);
  });
}
