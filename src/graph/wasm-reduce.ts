/**
 * tfjs-backend-wasm 4.22's Sum and Mean reduce only innermost axes: for any other axes they
 * first transpose the whole input so that those axes come last (a strided copy that costs 4–9 ns
 * per element), then sum each row. Reductions over leading axes are common in training: a
 * statistic per channel over the batch and positions ([0,1,2] of an NHWC map, FitNets' teacher
 * spread), a channel attention over the positions ([1,2], FGD), a bias gradient. These kernels
 * sum such axes in one pass over the input in memory order instead, without the transpose; the
 * result is bit for bit the stock one: each output accumulates its inputs in the same order
 * (row-major over the reduced axes) in float32, and Mean divides the float32 sum by the count
 * once, as the stock kernel does.
 *
 * Innermost axes (a sum over the channels at each position, a loss's sum over its classes) the
 * stock kernel adds one element at a time; here each row runs four lanes of SIMD sums, then adds
 * the lanes and the last elements (`rowSumsModule`): about 4x as fast, and as close to the exact
 * sum, in another order. Scattered axes and other dtypes keep the stock kernel.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ew, type ElementwiseProgram } from './elementwise-program';
import { leb, namedLocals, oneFunctionModule, simdOp, VALTYPE } from './wasm-binary';
import { elementwiseLoop } from './wasm-elementwise';
import { heapFunction } from './wasm-heap-copy';
import { replaceWasmKernel, type WasmBackend } from './wasm-kernels';
import { ZERO } from './wasm-zeros';

/** The reduced axes as one block [outer, reduced, inner] of the row-major input, or null when they are not contiguous. */
function contiguousBlock(shape: readonly number[], axes: readonly number[]): { outer: number; reduced: number; inner: number } | null {
  if (axes.length === 0) return null;
  const sorted = [...axes].sort((a, b) => a - b);
  const first = sorted[0]!;
  const last = sorted[sorted.length - 1]!;
  if (last - first + 1 !== sorted.length) return null;
  const size = (from: number, to: number) => shape.slice(from, to).reduce((a, b) => a * b, 1);
  return { outer: size(0, first), reduced: size(first, last + 1), inner: size(last + 1, shape.length) };
}

/**
 * The reduced axes as one block [outer, reduced, inner] of the row-major input: null when they
 * are innermost (`innermostRows`) or not contiguous.
 */
export function reductionBlock(shape: readonly number[], axes: readonly number[]): { outer: number; reduced: number; inner: number } | null {
  const block = contiguousBlock(shape, axes);
  // Innermost, or only size-1 axes after the block: rows already end to end.
  return block && block.inner > 1 ? block : null;
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

/**
 * dst[r] = Σ_i src[r·len + i] for every row r < rows: four lanes of running sums (element i in
 * lane i mod 4), then the lanes (0 + 2, 1 + 3, then those two) and the last len mod 4 elements in
 * order, all in float32. tfjs-wasm's own Sum over innermost axes adds one element at a time.
 */
export type RowSums = (dst: number, src: number, rows: number, len: number) => void;

export function rowSumsModule(sharedMemory: boolean): Uint8Array<ArrayBuffer> {
  const L = namedLocals(['dst', 'src', 'rows', 'len'], ['r', 'i', 'quads', 'tail'], ['acc']);
  const { get, set, i32, addTo, countDown } = L;
  const [and, shrU, eqz, ne] = [0x71, 0x76, 0x45, 0x47];
  const zero = [...simdOp(0x0c), ...Array<number>(16).fill(0)];
  const load = [...simdOp(0x00), 0x04, 0x00];
  const fadd4 = simdOp(0xe4);
  // Lanes (2, 3, 0, 1), then (1, 0, 3, 2): added to acc, lane 0 holds (a0 + a2) + (a1 + a3).
  const shuffle = (lanes: number[]) => [...simdOp(0x0d), ...lanes.flatMap((l) => [4 * l, 4 * l + 1, 4 * l + 2, 4 * l + 3])];
  const fold = (lanes: number[]) => [...get('acc'), ...get('acc'), ...get('acc'), ...shuffle(lanes), ...fadd4, ...set('acc')];
  const lane0 = [...simdOp(0x1f), 0];
  const code = [
    ...L.declarations,
    0x02, 0x40,
    ...get('rows'), eqz, 0x0d, 0x00,
    ...get('len'), ...i32(2), shrU, ...set('quads'),
    ...get('len'), ...i32(3), and, ...set('tail'),
    ...countDown('r', get('rows'), [
      ...zero, ...set('acc'),
      ...get('quads'), ...i32(0), ne, 0x04, 0x40,
      ...countDown('i', get('quads'), [...get('acc'), ...get('src'), ...load, ...fadd4, ...set('acc'), ...addTo('src', i32(16))]),
      0x0b,
      ...fold([2, 3, 0, 1]),
      ...fold([1, 0, 3, 2]),
      ...get('tail'), ...i32(0), ne, 0x04, 0x40,
      // acc lane 0 += src[i], in order.
      ...countDown('i', get('tail'), [...get('acc'), ...get('acc'), ...lane0, ...get('src'), 0x2a, 0x02, 0x00, 0x92, ...simdOp(0x20), 0, ...set('acc'), ...addTo('src', i32(4))]),
      0x0b,
      ...get('dst'), ...get('acc'), ...lane0, 0x38, 0x02, ...leb(0),
      ...addTo('dst', i32(4)),
    ]),
    0x0b, 0x0b,
  ];
  return oneFunctionModule(sharedMemory, 'rowSums', Array<number>(4).fill(VALTYPE.i32), code);
}

/** The reduced axes as [rows, len] of the row-major input when they are its innermost ones (trailing size-1 axes aside), else null. */
export function innermostRows(shape: readonly number[], axes: readonly number[]): { rows: number; len: number } | null {
  const block = contiguousBlock(shape, axes);
  return block && block.inner === 1 ? { rows: block.outer, len: block.reduced } : null;
}

/** The reduction on the heap, or null where the stock kernel takes it. */
export function reduceOnHeap(kind: 'Sum' | 'Mean', x: tf.TensorInfo, args: Parameters<tf.KernelFunc>[0]): tf.TensorInfo | null {
  if (x.dtype !== 'float32') return null;
  const attrs = args.attrs as unknown as tf.SumAttrs;
  const axes = tf.util.parseAxisParam(attrs.axis, x.shape);
  const block = reductionBlock(x.shape, axes);
  const rows = block ? null : innermostRows(x.shape, axes);
  if (block ? block.outer * block.reduced * block.inner === 0 : !rows || rows.rows * rows.len === 0) return null;
  const backend = args.backend as unknown as WasmBackend;
  const rowSums = rows ? heapFunction<RowSums>(backend.wasm, 'rowSums', rowSumsModule, 'rowSums') : undefined;
  const divide = elementwiseLoop(backend.wasm, DIVIDE);
  if (rows && (!rowSums || !divide)) return null;
  const outShape = attrs.keepDims ? x.shape.map((d, a) => (axes.includes(a) ? 1 : d)) : x.shape.filter((_, a) => !axes.includes(a));
  const out = backend.makeOutput(outShape, 'float32');
  // Views are taken after the output's allocation, which may grow (and so move) the heap.
  const result = backend.typedArrayFromHeap(out) as Float32Array;
  const input = backend.typedArrayFromHeap(x) as Float32Array;
  if (rows) {
    rowSums!(result.byteOffset, input.byteOffset, rows.rows, rows.len);
    if (kind === 'Mean') divide!(rows.rows, result.byteOffset, result.byteOffset, rows.len);
    return out;
  }
  if (sumBlockOnHeap(backend.wasm, input.byteOffset, block!, result.byteOffset, kind === 'Mean')) return out;
  sumBlock(input, block!, result);
  if (kind === 'Mean') for (let i = 0; i < result.length; i++) result[i] = result[i]! / block!.reduced;
  return out;
}

export function reduceWithoutTransposeOnWasm(): void {
  for (const kind of ['Sum', 'Mean'] as const) {
    replaceWasmKernel(kind, (x, args) => reduceOnHeap(kind, x, args));
  }
}
