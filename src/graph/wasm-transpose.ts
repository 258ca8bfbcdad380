/**
 * Transpose on wasm with SIMD 4x4 blocks. tfjs-backend-wasm 4.22's Transpose moves one element at
 * a time on one thread (about 1 ns per value, up to 3.8 where rows meet cache conflicts), and the
 * filter gradients transpose every padded input channels-first (conv-grad.ts): 120 transposes in a
 * NanoDet-g step. Here a permutation that is a matrix transpose, or a batch of them ([B,R,C] to
 * [B,C,R]) once neighbouring axes that stay together are merged, reads four rows of four values,
 * turns the block with eight shuffles and writes four columns; the rows and columns left over
 * (counts not a multiple of 4) are copied one value at a time. Any 4-byte dtype; other
 * permutations, and booleans, keep the stock kernel.
 */
import type * as tf from '@tensorflow/tfjs-core';
import { oneFunctionModule, VALTYPE } from './wasm-binary';
import { heapFunction } from './wasm-heap-copy';
import { replaceWasmKernel } from './wasm-kernels';

interface WasmBackend {
  wasm: object;
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
}

/**
 * Transposes `rowBlocks`·4 rows by `colBlocks`·4 columns of 4-byte values: the value at row i,
 * column j, at `from + i·rowBytes + 4j`, goes to `to + j·colBytes + 4i` (byte offsets).
 */
export type TransposeBlocks = (to: number, from: number, rowBlocks: number, colBlocks: number, rowBytes: number, colBytes: number) => void;

/** i8x16.shuffle's 16 byte lanes that pick the four 32-bit lanes `lanes` (0–3: first operand, 4–7: second). */
const lanes32 = (lanes: number[]): number[] => lanes.flatMap((l) => [4 * l, 4 * l + 1, 4 * l + 2, 4 * l + 3]);

/**
 * The binary of `transposeBlocks(to, from, rowBlocks, colBlocks, rowBytes, colBytes)`:
 *   for each block row: a = from, b = to; for each block column:
 *     v0..v3 = v128.load(a + k·rowBytes)                      four rows of four values
 *     t0 = (v0₀ v1₀ v0₁ v1₁), t1 = (v0₂ v1₂ v0₃ v1₃), t2, t3 likewise of v2, v3
 *     v128.store(b + k·colBytes) of (t0₀ t0₁ t2₀ t2₁), (t0₂ t0₃ t2₂ t2₃), the same of t1, t3
 *     a += 16, b += 4·colBytes
 *   from += 4·rowBytes, to += 16
 */
export function transposeBlocksModule(sharedMemory: boolean): Uint8Array<ArrayBuffer> {
  const [to, from, rowBlocks, colBlocks, rowBytes, colBytes] = [0, 1, 2, 3, 4, 5];
  const [a, b, j] = [6, 7, 8];
  const v = [9, 10, 11, 12];
  const t = [13, 14, 15, 16];
  const [rb2, rb3, cb2, cb3, cb4] = [17, 18, 19, 20, 21];
  const get = (i: number) => [0x20, i];
  const set = (i: number) => [0x21, i];
  const add = 0x6a;
  const load = [0xfd, 0x00, 0x00, 0x00]; // v128.load, align 1, offset 0
  const store = [0xfd, 0x0b, 0x00, 0x00]; // v128.store
  const shuffle = (x: number, y: number, picks: number[]) => [...get(x), ...get(y), 0xfd, 0x0d, ...lanes32(picks)];
  const times = (i: number, k: number, into: number) => [...get(i), 0x41, k, 0x6c, ...set(into)];
  const countDown = (i: number) => [...get(i), 0x41, 0x01, 0x6b, 0x22, i, 0x0d, 0x00];
  const rowOffset = [[], [...get(rowBytes), add], [...get(rb2), add], [...get(rb3), add]];
  const colOffset = [[], [...get(colBytes), add], [...get(cb2), add], [...get(cb3), add]];
  const code = [
    0x03, 0x03, VALTYPE.i32, 0x08, VALTYPE.v128, 0x05, VALTYPE.i32, // locals: a, b, j; v0..v3, t0..t3; strides
    ...times(rowBytes, 2, rb2), ...times(rowBytes, 3, rb3), ...times(colBytes, 2, cb2), ...times(colBytes, 3, cb3), ...times(colBytes, 4, cb4),
    0x02, 0x40, ...get(rowBlocks), 0x45, 0x0d, 0x00, ...get(colBlocks), 0x45, 0x0d, 0x00,
    0x03, 0x40, // each block row
    ...get(from), ...set(a), ...get(to), ...set(b), ...get(colBlocks), ...set(j),
    0x03, 0x40, // each block column
    ...[0, 1, 2, 3].flatMap((k) => [...get(a), ...rowOffset[k]!, ...load, ...set(v[k]!)]),
    ...shuffle(v[0]!, v[1]!, [0, 4, 1, 5]), ...set(t[0]!),
    ...shuffle(v[0]!, v[1]!, [2, 6, 3, 7]), ...set(t[1]!),
    ...shuffle(v[2]!, v[3]!, [0, 4, 1, 5]), ...set(t[2]!),
    ...shuffle(v[2]!, v[3]!, [2, 6, 3, 7]), ...set(t[3]!),
    ...[[t[0]!, t[2]!, [0, 1, 4, 5]], [t[0]!, t[2]!, [2, 3, 6, 7]], [t[1]!, t[3]!, [0, 1, 4, 5]], [t[1]!, t[3]!, [2, 3, 6, 7]]].flatMap(([x, y, picks], k) => [
      ...get(b), ...colOffset[k]!, ...shuffle(x as number, y as number, picks as number[]), ...store,
    ]),
    ...get(a), 0x41, 0x10, add, ...set(a),
    ...get(b), ...get(cb4), add, ...set(b),
    ...countDown(j), 0x0b,
    ...get(from), ...get(rowBytes), 0x41, 0x02, 0x74, add, ...set(from), // from += 4·rowBytes
    ...get(to), 0x41, 0x10, add, ...set(to),
    ...countDown(rowBlocks), 0x0b,
    0x0b, 0x0b,
  ];
  const i32 = VALTYPE.i32;
  return oneFunctionModule(sharedMemory, 'transposeBlocks', [i32, i32, i32, i32, i32, i32], code);
}

/**
 * `perm` over `shape` with size-1 axes dropped and neighbouring axes that stay neighbours merged:
 * [B, R, C] when it moves [B, R, C] to [B, C, R] (B = 1 for a plain matrix), else null.
 */
export function asBatchedTranspose(shape: readonly number[], perm: readonly number[]): [number, number, number] | null {
  const kept = perm.filter((axis) => shape[axis] !== 1);
  // Groups of input axes that the permutation keeps adjacent and in order.
  const groups: number[][] = [];
  for (const axis of kept) {
    const last = groups[groups.length - 1];
    const previous = last?.[last.length - 1];
    if (last && previous !== undefined && nextKept(shape, previous) === axis) last.push(axis);
    else groups.push([axis]);
  }
  const size = (g: number[]) => g.reduce((p, axis) => p * shape[axis]!, 1);
  const order = groups.map((g) => g[0]!);
  const sorted = [...order].sort((x, y) => x - y);
  if (groups.length === 2 && order[0]! > order[1]!) return [1, size(groups[1]!), size(groups[0]!)];
  if (groups.length === 3 && order[0] === sorted[0] && order[1]! > order[2]!) return [size(groups[0]!), size(groups[2]!), size(groups[1]!)];
  return null;
}

/** The input axis after `axis` that is not of size 1, or -1. */
function nextKept(shape: readonly number[], axis: number): number {
  for (let a = axis + 1; a < shape.length; a++) if (shape[a] !== 1) return a;
  return -1;
}

/**
 * Transposes `batch` matrices of `rows` x `cols` 4-byte values, one after another at `from`, into
 * `to` (element views of the heap, and their byte offsets): the 4x4 blocks by `blocks`, the rows
 * and columns left over one value at a time.
 */
export function transposeOnHeap(blocks: TransposeBlocks, heap: Int32Array, from: number, to: number, [batch, rows, cols]: readonly [number, number, number]): void {
  const [rowBlocks, colBlocks] = [rows >> 2, cols >> 2];
  for (let m = 0; m < batch; m++) {
    const [x, y] = [from + m * rows * cols * 4, to + m * rows * cols * 4];
    blocks(y, x, rowBlocks, colBlocks, cols * 4, rows * 4);
    const [xi, yi] = [x >>> 2, y >>> 2];
    for (let i = 0; i < rows; i++) {
      for (let c = i < rowBlocks * 4 ? colBlocks * 4 : 0; c < cols; c++) heap[yi + c * rows + i] = heap[xi + i * cols + c]!;
    }
  }
}

export function transposeBySimdOnWasm(): void {
  replaceWasmKernel('Transpose', (x, args) => {
    if (x.dtype !== 'float32' && x.dtype !== 'int32') return null;
    const { perm } = args.attrs as unknown as tf.TransposeAttrs;
    const matrices = asBatchedTranspose(x.shape, perm);
    const backend = args.backend as unknown as WasmBackend;
    // Below 4 rows or columns every value is left over: the stock kernel does as well.
    if (!matrices || matrices[1] < 4 || matrices[2] < 4) return null;
    const blocks = heapFunction<TransposeBlocks>(backend.wasm, 'transposeBlocks', transposeBlocksModule, 'transposeBlocks');
    if (!blocks) return null;
    const out = backend.makeOutput(perm.map((axis) => x.shape[axis]!), x.dtype);
    // Views after the allocation (a growing heap moves them).
    const [xv, ov] = [backend.typedArrayFromHeap(x), backend.typedArrayFromHeap(out)];
    transposeOnHeap(blocks, new Int32Array(xv.buffer), xv.byteOffset, ov.byteOffset, matrices);
    return out;
  });
}
