/**
 * tfjs-backend-wasm 4.22's Slice (and SplitV, which slices once per part) reads its input with
 * `readSync`, which copies the whole input out of the wasm heap before taking the part it wants.
 * A slice of a few kilobytes out of a large tensor therefore costs a copy of the large tensor:
 * splitting the optimizer's joined weight vector (2.7 M floats) into its 52 variables copied
 * 570 MB and took 200–550 ms, and the gradient of every convolution that reads a sliced input
 * pays the same. These kernels read the input through a view of the heap instead and copy only
 * the part they return. Strings keep the stock path.
 */
import * as tf from '@tensorflow/tfjs-core';
import { replaceWasmKernel } from './wasm-kernels';

interface WasmBackend {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
}

/**
 * Copies the box `begin`…`begin + size` of a row-major array of `shape` into `out`, one
 * contiguous run at a time: the run spans the innermost axis that is not taken whole, and every
 * axis inside it.
 */
export function copyBox(src: ArrayLike<number> & { subarray(a: number, b: number): ArrayLike<number> }, shape: readonly number[], begin: readonly number[], size: readonly number[], out: { set(a: ArrayLike<number>, offset: number): void }): void {
  const rank = shape.length;
  const total = size.reduce((a, b) => a * b, 1);
  if (total === 0) return;
  if (rank === 0) {
    out.set(src.subarray(0, 1), 0);
    return;
  }
  const strides = new Array<number>(rank);
  strides[rank - 1] = 1;
  for (let a = rank - 2; a >= 0; a--) strides[a] = strides[a + 1]! * shape[a + 1]!;
  // The innermost axis that is not taken whole: below it, each index tuple is one contiguous run.
  let j = rank - 1;
  while (j > 0 && size[j] === shape[j] && begin[j] === 0) j--;
  const run = size[j]! * strides[j]!;
  const index = new Array<number>(j).fill(0);
  let written = 0;
  for (;;) {
    let offset = begin[j]! * strides[j]!;
    for (let a = 0; a < j; a++) offset += (begin[a]! + index[a]!) * strides[a]!;
    out.set(src.subarray(offset, offset + run), written);
    written += run;
    // Next index tuple over the outer axes (an odometer, last axis fastest).
    let a = j - 1;
    while (a >= 0 && ++index[a]! === size[a]!) index[a--] = 0;
    if (a < 0) return;
  }
}

function sliceOf(backend: WasmBackend, x: tf.TensorInfo, begin: number[], size: number[]): tf.TensorInfo {
  const out = backend.makeOutput(size, x.dtype);
  // Views are taken after the output's allocation, which may grow (and so move) the heap.
  copyBox(backend.typedArrayFromHeap(x), x.shape, begin, size, backend.typedArrayFromHeap(out));
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
}
