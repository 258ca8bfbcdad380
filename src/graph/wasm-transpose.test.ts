import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { describe, expect, it } from 'vitest';
import { asBatchedTranspose, interleaveModule, transposeBlocksModule, transposeBySimd, transposeBySimdOnWasm, transposeOnHeap, type InterleaveRows, type TransposeBlocks } from './wasm-transpose';
import { stockWasmKernel, type WasmBackend } from './wasm-kernels';

// Shapes and permutations: matrices with and without rows and columns left over, batches of them,
// ones that merge axes, size-1 axes, and permutations that are no transpose (the stock kernel's).
const CASES: [number[], number[]][] = [
  [[4, 4], [1, 0]], [[8, 12], [1, 0]], [[5, 7], [1, 0]], [[13, 6], [1, 0]], [[3, 9], [1, 0]], [[2916, 32], [1, 0]],
  [[2, 6, 9], [0, 2, 1]], [[3, 5, 8], [0, 2, 1]], [[2, 3, 4, 5], [2, 3, 0, 1]], [[2, 7, 7, 12], [0, 3, 1, 2]], [[2, 7, 5, 12], [3, 0, 1, 2]],
  [[3, 3, 8, 5], [0, 1, 3, 2]], [[1, 9, 1, 6], [3, 1, 2, 0]], [[4, 1, 8], [2, 1, 0]], [[2, 3, 4], [1, 0, 2]], [[2, 3, 4, 5], [0, 2, 1, 3]], [[6, 5], [0, 1]], [[4, 6, 8], [2, 0, 1]],
  // Two or three rows, interleaved: an image's channels last, a channel shuffle, and a count of
  // columns that is not a multiple of 4 (the stock kernel's).
  [[4, 3, 8, 8], [0, 2, 3, 1]], [[6, 2, 8, 1], [0, 2, 1, 3]], [[2, 5, 12], [1, 2, 0]], [[3, 3, 6], [0, 2, 1]], [[2, 12], [1, 0]],
];

async function transposed(backend: string, shape: number[], perm: number[], dtype: 'float32' | 'int32' | 'bool') {
  await tf.setBackend(backend);
  if (backend === 'wasm') transposeBySimdOnWasm();
  const n = shape.reduce((a, b) => a * b, 1);
  // Distinct values (a NaN and -0 among the floats), so a value in the wrong place shows.
  const values = Array.from({ length: n }, (_, i) => (dtype === 'bool' ? Number(i % 3 === 0) : i === 1 && dtype === 'float32' ? NaN : i === 2 ? -0 : i * 1.25 - 9));
  const x = tf.tensor(values, shape, dtype);
  const y = tf.transpose(x, perm);
  const out = { shape: y.shape, dtype: y.dtype, values: Array.from(y.dataSync() as ArrayLike<number>) };
  tf.dispose([x, y]);
  return out;
}

describe('Transpose on wasm by SIMD blocks', () => {
  it('matches the cpu backend for matrices, batches of them, merged and size-1 axes, and other permutations', async () => {
    for (const [shape, perm] of CASES) {
      for (const dtype of ['float32', 'int32', 'bool'] as const) {
        const want = await transposed('cpu', shape, perm, dtype);
        const got = await transposed('wasm', shape, perm, dtype);
        expect(got, `${dtype} [${shape}] by [${perm}]`).toEqual(want);
      }
    }
    expect(stockWasmKernel('Transpose')).toBeDefined();
    // Which cases the SIMD path takes (the rest go to the stock kernel).
    const taken = (shape: number[], perm: number[], dtype: tf.DataType = 'float32') => {
      const x = tf.zeros(shape, dtype);
      const out = transposeBySimd(tf.backend() as unknown as WasmBackend, x, perm);
      if (out) tf.backend().disposeData(out.dataId);
      x.dispose();
      return out !== null;
    };
    expect([taken([8, 12], [1, 0]), taken([5, 7], [1, 0]), taken([2, 7, 7, 12], [0, 3, 1, 2]), taken([4, 3, 8, 8], [0, 2, 3, 1]), taken([6, 2, 8, 1], [0, 2, 1, 3])]).toEqual([true, true, true, true, true]);
    expect([taken([3, 9], [1, 0]), taken([3, 3, 6], [0, 2, 1]), taken([2, 3, 4], [1, 0, 2]), taken([8, 12], [1, 0], 'bool'), taken([6, 5], [0, 1])]).toEqual([false, false, false, false, false]);
    await tf.setBackend('cpu');
  });

  it('reads permutations as batched matrix transposes where they are one', () => {
    expect(asBatchedTranspose([5, 7], [1, 0])).toEqual([1, 5, 7]);
    expect(asBatchedTranspose([2, 3, 4, 5], [2, 3, 0, 1])).toEqual([1, 6, 20]);
    expect(asBatchedTranspose([2, 7, 7, 12], [0, 3, 1, 2])).toEqual([2, 49, 12]);
    expect(asBatchedTranspose([1, 9, 1, 6], [3, 1, 2, 0])).toEqual([1, 9, 6]);
    expect(asBatchedTranspose([3, 3, 8, 5], [0, 1, 3, 2])).toEqual([9, 8, 5]);
    expect(asBatchedTranspose([2, 3, 4], [1, 0, 2])).toBeNull();
    expect(asBatchedTranspose([4, 6, 8], [2, 0, 1])).toEqual([1, 24, 8]);
    expect(asBatchedTranspose([6, 5], [0, 1])).toBeNull();
  });

  it('turns 4x4 blocks on a shared and an unshared memory, leaving the rest to the caller', () => {
    for (const shared of [false, true]) {
      expect(WebAssembly.validate(transposeBlocksModule(shared))).toBe(true);
      const memory = new WebAssembly.Memory(shared ? { initial: 1, maximum: 2, shared: true } : { initial: 1 });
      const blocks = new WebAssembly.Instance(new WebAssembly.Module(transposeBlocksModule(shared)), { env: { memory } }).exports['transposeBlocks'] as TransposeBlocks;
      const heap = new Int32Array(memory.buffer);
      const [rows, cols, from, to] = [6, 9, 64, 4096];
      for (let i = 0; i < rows * cols; i++) heap[from / 4 + i] = 100 + i;
      heap.fill(-1, to / 4, to / 4 + rows * cols);
      // The blocks alone: 4 rows by 8 columns; the rest stays as it was.
      blocks(to, from, 1, 2, cols * 4, rows * 4);
      for (let c = 0; c < cols; c++) {
        for (let i = 0; i < rows; i++) expect(heap[to / 4 + c * rows + i]).toBe(i < 4 && c < 8 ? 100 + i * cols + c : -1);
      }
      transposeOnHeap(blocks, heap, from, to, [1, rows, cols]);
      for (let c = 0; c < cols; c++) for (let i = 0; i < rows; i++) expect(heap[to / 4 + c * rows + i]).toBe(100 + i * cols + c);
    }
  });

  it('interleaves two and three rows of whole groups of four columns, matrix after matrix', () => {
    for (const shared of [false, true]) {
      for (const rows of [2, 3] as const) {
        expect(WebAssembly.validate(interleaveModule(rows, shared))).toBe(true);
        const memory = new WebAssembly.Memory(shared ? { initial: 1, maximum: 2, shared: true } : { initial: 1 });
        const interleave = new WebAssembly.Instance(new WebAssembly.Module(interleaveModule(rows, shared)), { env: { memory } }).exports['interleave'] as InterleaveRows;
        const heap = new Int32Array(memory.buffer);
        const [batch, cols, from, to] = [3, 8, 64, 4096];
        const n = batch * rows * cols;
        for (let i = 0; i < n; i++) heap[from / 4 + i] = 100 + i;
        heap.fill(-1, to / 4, to / 4 + n + 4);
        interleave(to, from, cols / 4, cols * 4, batch);
        for (let m = 0; m < batch; m++) {
          for (let c = 0; c < cols; c++) {
            for (let r = 0; r < rows; r++) expect(heap[to / 4 + m * rows * cols + c * rows + r]).toBe(100 + m * rows * cols + r * cols + c);
          }
        }
        expect(heap[to / 4 + n]).toBe(-1);
      }
    }
  });
});
