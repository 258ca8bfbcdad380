/**
 * Tile on wasm by copies on the heap. tfjs-backend-wasm 4.22's Tile computes every output
 * element's source index on its own: 68–72 ns per element on the threaded binary, and tf.broadcastTo
 * and tf.where broadcast through it (so do the gradients of Sum and Mean, reduce-grad.ts). Here
 * the input is copied once into the first tile of the output, then each tiled axis, innermost
 * first, is filled by doubling what is already there (1, 2, 4, ... copies of the block), all with
 * `memory.copy` (wasm-heap-copy.ts); one value per row spread along the last axis (a [N,H,W,1]
 * map over C channels) is written by a small loop of its own, `repeatEach`. Any dtype: the
 * copies are of bytes.
 */
import type * as tf from '@tensorflow/tfjs-core';
import { oneFunctionModule, VALTYPE } from './wasm-binary';
import { heapCopier, heapFunction, type CopyRuns } from './wasm-heap-copy';
import { replaceWasmKernel, type WasmBackend } from './wasm-kernels';

/** `count` 4-byte values from `from` on, each written `times` times in a row from `to` on (byte offsets). */
export type RepeatEach = (to: number, from: number, count: number, times: number) => void;

/**
 * The binary of
 *   (func (export "repeatEach") (param $to i32) (param $from i32) (param $count i32) (param $times i32)
 *     (local $v i32) (local $j i32)
 *     (block (br_if 0 (i32.eqz (local.get $count)))
 *       (loop $value (local.set $v (i32.load (local.get $from))) (local.set $j (local.get $times))
 *         (loop $copy (i32.store (local.get $to) (local.get $v))
 *           (local.set $to (i32.add (local.get $to) (i32.const 4)))
 *           (br_if $copy (local.tee $j (i32.sub (local.get $j) (i32.const 1)))))
 *         (local.set $from (i32.add (local.get $from) (i32.const 4)))
 *         (br_if $value (local.tee $count (i32.sub (local.get $count) (i32.const 1)))))))
 * `times` must be at least 1.
 */
export function repeatEachModule(sharedMemory: boolean): Uint8Array<ArrayBuffer> {
  const [to, from, count, times, v, j] = [0, 1, 2, 3, 4, 5];
  const get = (i: number) => [0x20, i];
  const set = (i: number) => [0x21, i];
  const step = (i: number, by: number) => [...get(i), 0x41, by, 0x6a, ...set(i)];
  const countDown = (i: number) => [...get(i), 0x41, 0x01, 0x6b, 0x22, i, 0x0d, 0x00];
  const code = [
    0x01, 0x02, VALTYPE.i32, // locals $v, $j
    0x02, 0x40, ...get(count), 0x45, 0x0d, 0x00,
    0x03, 0x40, ...get(from), 0x28, 0x02, 0x00, ...set(v), ...get(times), ...set(j),
    0x03, 0x40, ...get(to), ...get(v), 0x36, 0x02, 0x00, ...step(to, 4), ...countDown(j), 0x0b,
    ...step(from, 4), ...countDown(count), 0x0b,
    0x0b, 0x0b,
  ];
  return oneFunctionModule(sharedMemory, 'repeatEach', [VALTYPE.i32, VALTYPE.i32, VALTYPE.i32, VALTYPE.i32], code);
}

/** Row-major strides of `shape`, in elements. */
function stridesOf(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length).fill(1);
  for (let a = shape.length - 2; a >= 0; a--) s[a] = s[a + 1]! * shape[a + 1]!;
  return s;
}

/**
 * Calls `visit(offsets)` for every index tuple over axes 0..last-1 within `ranges`, with the
 * element offset of that tuple under each of `strides`.
 */
function forTuples(ranges: readonly number[], last: number, strides: readonly (readonly number[])[], visit: (offsets: number[]) => void): void {
  const index = new Array<number>(Math.max(0, last)).fill(0);
  const offsets = strides.map(() => 0);
  for (;;) {
    visit(offsets);
    let a = last - 1;
    for (; a >= 0; a--) {
      strides.forEach((s, k) => (offsets[k]! += s[a]!));
      if (++index[a]! < ranges[a]!) break;
      strides.forEach((s, k) => (offsets[k]! -= s[a]! * ranges[a]!));
      index[a] = 0;
    }
    if (a < 0) return;
  }
}

/**
 * The first axis of the run of axes ending at `last` that steps evenly through the output: axes
 * inside it that are not tiled continue the one outside (their output stride times their size is
 * the stride outside). Their positions are one strided run of `count`.
 */
function evenRun(shape: readonly number[], reps: readonly number[], last: number): { first: number; count: number } {
  let first = last;
  let count = shape[last]!;
  while (first > 0 && reps[first] === 1) {
    first--;
    count *= shape[first]!;
  }
  return { first, count };
}

/**
 * Tiles the row-major array at byte offset `from` (shape `shape`, `bytes` per element) `reps`
 * times per axis into the array at `to`, through `copy` (byte offsets in one memory).
 */
export function tileByCopies(copy: CopyRuns, from: number, to: number, shape: readonly number[], reps: readonly number[], bytes: number, repeatEach?: RepeatEach): void {
  const rank = shape.length;
  if (rank === 0) {
    copy(to, from, bytes, 1, 0, 0);
    return;
  }
  if (shape.some((d) => d === 0) || reps.some((r) => r === 0)) return;
  const outShape = shape.map((d, a) => d * reps[a]!);
  const os = stridesOf(outShape);
  const xs = stridesOf(shape);
  const last = rank - 1;
  // One value per row spread along the last axis ([N,H,W,1] to C channels): each value written
  // reps times in a row, the rows along an even run of axes in one call; the last axis is done.
  const spreadLast = !!repeatEach && bytes === 4 && shape[last] === 1 && reps[last]! > 1;
  const rowBytes = shape[last]! * bytes;
  if (spreadLast) {
    if (rank === 1) repeatEach(to, from, 1, reps[last]!);
    else {
      const { first, count } = evenRun(shape, reps, last - 1);
      forTuples(shape, first, [xs, os], ([x, o]) => repeatEach(to + o! * bytes, from + x! * bytes, count, reps[last]!));
    }
  } else if (rank === 1) copy(to, from, rowBytes, 1, 0, 0);
  else {
    // The input into the first tile, row by row: the rows along an even run of axes in one call.
    const { first, count } = evenRun(shape, reps, last - 1);
    forTuples(shape, first, [xs, os], ([x, o]) => copy(to + o! * bytes, from + x! * bytes, rowBytes, count, xs[last - 1]! * bytes, os[last - 1]! * bytes));
  }
  // Each tiled axis, innermost first: the axes inside it are whole by now, so the filled block
  // along it is contiguous; it is doubled until the axis is full, for every filled position of
  // the axes outside it (an even run of them in the same call).
  for (let a = spreadLast ? last - 1 : last; a >= 0; a--) {
    if (reps[a]! === 1) continue;
    const block = shape[a]! * os[a]!;
    const total = outShape[a]! * os[a]!;
    const visit = (base: number, count: number, stride: number) => {
      for (let filled = block; filled < total; ) {
        const n = Math.min(filled, total - filled);
        copy(to + (base + filled) * bytes, to + base * bytes, n * bytes, count, stride * bytes, stride * bytes);
        filled += n;
      }
    };
    if (a === 0) visit(0, 1, 0);
    else {
      const { first, count } = evenRun(shape, reps, a - 1);
      forTuples(shape, first, [os], ([o]) => visit(o!, count, os[a - 1]!));
    }
  }
}

export function tileByCopiesOnWasm(): void {
  replaceWasmKernel('Tile', (x, args) => {
    const { reps } = args.attrs as unknown as tf.TileAttrs;
    const backend = args.backend as unknown as WasmBackend;
    const out = backend.makeOutput(x.shape.map((d, a) => d * reps[a]!), x.dtype);
    // Views after the allocation (a growing heap moves them).
    const [xv, ov] = [backend.typedArrayFromHeap(x), backend.typedArrayFromHeap(out)];
    tileByCopies(heapCopier(backend.wasm), xv.byteOffset, ov.byteOffset, x.shape, reps, xv.BYTES_PER_ELEMENT, heapFunction<RepeatEach>(backend.wasm, 'repeatEach', repeatEachModule, 'repeatEach'));
    return out;
  });
}
