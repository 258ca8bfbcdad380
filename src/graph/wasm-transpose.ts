/**
 * Transpose on wasm with SIMD 4x4 blocks. tfjs-backend-wasm 4.22's Transpose moves one element at
 * a time on one thread (about 1 ns per value, up to 3.8 where rows meet cache conflicts), and the
 * filter gradients transpose every padded input channels-first (conv-grad.ts): 120 transposes in a
 * NanoDet-g step. Here a permutation that is a matrix transpose, or a batch of them ([B,R,C] to
 * [B,C,R]) once neighbouring axes that stay together are merged, reads four rows of four values,
 * turns the block with eight shuffles and writes four columns; the rows and columns left over
 * (counts not a multiple of 4) are copied one value at a time. Any 4-byte dtype; other
 * permutations, and booleans, keep the stock kernel. Two or three rows (an image's channels, a
 * two-group channel shuffle) are interleaved four columns at a time instead.
 */
import type * as tf from '@tensorflow/tfjs-core';
import { oneFunctionModule, sleb, VALTYPE } from './wasm-binary';
import { heapFunction } from './wasm-heap-copy';
import { replaceWasmKernel, type WasmBackend } from './wasm-kernels';

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
 * Interleaves the rows of `batch` matrices of `rows` (2 or 3) rows by 4·`quads` columns of 4-byte
 * values, one after another at `from` (rows `rowBytes` apart), into `to`: a [rows, C] matrix
 * becomes [C, rows] (byte offsets).
 */
export type InterleaveRows = (to: number, from: number, quads: number, rowBytes: number, batch: number) => void;

/** A vector of an interleave: one of the rows' four loaded values, or a shuffle of two vectors. */
type Lanes = number | { x: Lanes; y: Lanes; picks: number[] };
const pick = (x: Lanes, y: Lanes, picks: number[]): Lanes => ({ x, y, picks });

/**
 * The four output vectors' worth of values from four columns of each row (rows a, b[, c]):
 * 2 rows: (a0 b0 a1 b1)(a2 b2 a3 b3); 3 rows: (a0 b0 c0 a1)(b1 c1 a2 b2)(c2 a3 b3 c3).
 */
const INTERLEAVED: Record<2 | 3, Lanes[]> = {
  2: [pick(0, 1, [0, 4, 1, 5]), pick(0, 1, [2, 6, 3, 7])],
  3: [pick(pick(0, 1, [0, 4, 1, 5]), 2, [0, 1, 4, 2]), pick(pick(1, 2, [1, 5, 2, 6]), 0, [0, 1, 6, 2]), pick(pick(0, 1, [3, 7, 3, 7]), 2, [6, 0, 1, 7])],
};

/**
 * The binary of `interleave(to, from, quads, rowBytes, batch)` for `rows` rows:
 *   for each matrix: a = from, o = to; for each group of four columns:
 *     v_k = v128.load(a + k·rowBytes); the INTERLEAVED vectors stored at o, o + 16, ...
 *     a += 16, o += 16·rows
 *   from += rows·rowBytes, to += rows·rowBytes
 */
export function interleaveModule(rows: 2 | 3, sharedMemory: boolean): Uint8Array<ArrayBuffer> {
  const [to, from, quads, rowBytes, batch] = [0, 1, 2, 3, 4];
  const [a, o, j] = [5, 6, 7];
  const v = [8, 9, 10].slice(0, rows);
  const [rb2, matrixBytes] = [8 + rows, 9 + rows];
  const get = (i: number) => [0x20, i];
  const set = (i: number) => [0x21, i];
  const add = 0x6a;
  const emit = (lanes: Lanes): number[] => (typeof lanes === 'number' ? get(v[lanes]!) : [...emit(lanes.x), ...emit(lanes.y), 0xfd, 0x0d, ...lanes32(lanes.picks)]);
  const countDown = (i: number) => [...get(i), 0x41, 0x01, 0x6b, 0x22, i, 0x0d, 0x00];
  const rowOffset = [[], [...get(rowBytes), add], [...get(rb2), add]];
  const code = [
    0x03, 0x03, VALTYPE.i32, rows, VALTYPE.v128, 0x02, VALTYPE.i32, // locals: a, o, j; v0..; 2·rowBytes, rows·rowBytes
    ...get(rowBytes), 0x41, 0x02, 0x6c, ...set(rb2), ...get(rowBytes), 0x41, rows, 0x6c, ...set(matrixBytes),
    0x02, 0x40, ...get(batch), 0x45, 0x0d, 0x00, ...get(quads), 0x45, 0x0d, 0x00,
    0x03, 0x40, // each matrix
    ...get(from), ...set(a), ...get(to), ...set(o), ...get(quads), ...set(j),
    0x03, 0x40, // each group of four columns
    ...v.flatMap((local, k) => [...get(a), ...rowOffset[k]!, 0xfd, 0x00, 0x00, 0x00, ...set(local)]),
    ...INTERLEAVED[rows].flatMap((lanes, k) => [...get(o), ...(k ? [0x41, ...sleb(16 * k), add] : []), ...emit(lanes), 0xfd, 0x0b, 0x00, 0x00]),
    ...get(a), 0x41, 0x10, add, ...set(a),
    ...get(o), 0x41, ...sleb(16 * rows), add, ...set(o),
    ...countDown(j), 0x0b,
    ...get(from), ...get(matrixBytes), add, ...set(from),
    ...get(to), ...get(matrixBytes), add, ...set(to),
    ...countDown(batch), 0x0b,
    0x0b, 0x0b,
  ];
  const i32 = VALTYPE.i32;
  return oneFunctionModule(sharedMemory, 'interleave', [i32, i32, i32, i32, i32], code);
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

/**
 * `x` permuted by `perm` on the wasm backend by SIMD blocks or interleaves, or null where this
 * does not take the case (the stock kernel's).
 */
export function transposeBySimd(backend: WasmBackend, x: tf.TensorInfo, perm: readonly number[]): tf.TensorInfo | null {
  if (x.dtype !== 'float32' && x.dtype !== 'int32') return null;
  const matrices = asBatchedTranspose(x.shape, perm);
  if (!matrices) return null;
  const [batch, rows, cols] = matrices;
  // Two or three rows (an image's channels, a two-group channel shuffle) are interleaved four
  // columns at a time; otherwise, below 4 rows or columns every value would be left over.
  const interleave = (rows === 2 || rows === 3) && cols % 4 === 0;
  if (!interleave && (rows < 4 || cols < 4)) return null;
  const run = interleave
    ? heapFunction<InterleaveRows>(backend.wasm, `interleave${rows}`, (shared) => interleaveModule(rows, shared), 'interleave')
    : heapFunction<TransposeBlocks>(backend.wasm, 'transposeBlocks', transposeBlocksModule, 'transposeBlocks');
  if (!run) return null;
  const out = backend.makeOutput(perm.map((axis) => x.shape[axis]!), x.dtype);
  // Views after the allocation (a growing heap moves them).
  const [xv, ov] = [backend.typedArrayFromHeap(x), backend.typedArrayFromHeap(out)];
  if (interleave) (run as InterleaveRows)(ov.byteOffset, xv.byteOffset, cols / 4, cols * 4, batch);
  else transposeOnHeap(run as TransposeBlocks, new Int32Array(xv.buffer), xv.byteOffset, ov.byteOffset, matrices);
  return out;
}

export function transposeBySimdOnWasm(): void {
  replaceWasmKernel('Transpose', (x, args) => transposeBySimd(args.backend as unknown as WasmBackend, x, (args.attrs as unknown as tf.TransposeAttrs).perm));
}
