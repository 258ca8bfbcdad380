import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { describe, expect, it } from 'vitest';
import { sliceInPlaceOnWasm } from './wasm-slice';

/** Values of `f` on the cpu backend and on wasm with the replaced kernels. */
async function onBoth(f: () => tf.Tensor | tf.Tensor[]): Promise<[number[][], number[][]]> {
  const run = async (backend: string) => {
    await tf.setBackend(backend);
    if (backend === 'wasm') sliceInPlaceOnWasm();
    const out = tf.tidy(f);
    const list = Array.isArray(out) ? out : [out];
    const values = await Promise.all(list.map(async (t) => [...t.shape, -1, ...(await t.data())] as number[]));
    tf.dispose(list);
    return values;
  };
  return [await run('cpu'), await run('wasm')];
}

// A deterministic pseudo-random sequence, so every run tests the same boxes.
function sequence(seed: number) {
  let s = seed;
  return (n: number) => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s % n;
  };
}

/** A shape of `rank` axes of 1 to `maxDim` entries, and a start inside it. */
function randomCorner(next: (n: number) => number, rank: number, maxDim: number) {
  const shape = Array.from({ length: rank }, () => 1 + next(maxDim));
  return { shape, begin: shape.map((d) => next(d)) };
}

describe('Slice and SplitV on wasm read through a view of the heap', () => {
  it('match the cpu backend for boxes of rank 1 to 5, whole axes and edges included', async () => {
    const next = sequence(7);
    for (let trial = 0; trial < 60; trial++) {
      const rank = 1 + (trial % 5);
      const { shape, begin } = randomCorner(next, rank, 5);
      const size = shape.map((d, a) => (next(3) === 0 ? d - begin[a]! : 1 + next(d - begin[a]!)));
      if (trial % 7 === 0) {
        // One whole row of the first axis: a single contiguous run.
        begin.fill(0);
        size.splice(0, rank, ...shape.map((d, a) => (a === 0 ? 1 : d)));
      }
      const n = shape.reduce((a, b) => a * b);
      const [cpu, wasm] = await onBoth(() => tf.slice(tf.range(0, n).reshape(shape), begin, size));
      expect(wasm, `shape ${shape} begin ${begin} size ${size}`).toEqual(cpu);
    }
  });

  it('split along every axis into uneven parts, int32 and a scalar slice included', async () => {
    const x = () => tf.range(0, 2 * 3 * 4).reshape([2, 3, 4]);
    for (const [axis, parts] of [[0, [1, 1]], [1, [2, 1]], [2, [1, 3]], [2, [0, 4]], [-1, 2]] as const) {
      const [cpu, wasm] = await onBoth(() => tf.split(x(), parts as number | number[], axis));
      expect(wasm).toEqual(cpu);
    }
    const [cpu, wasm] = await onBoth(() => [tf.slice(tf.tensor1d([5, 6, 7], 'int32'), [1], [2]), tf.slice(tf.tensor2d([[1, 2]]), [0, 1], [1, 1])]);
    expect(wasm).toEqual(cpu);
    expect(wasm[0]).toEqual([2, -1, 6, 7]);
  });

  it('StridedSlice: matches the cpu backend for stepped boxes of rank 1 to 5, masks included', async () => {
    const next = sequence(11);
    for (let trial = 0; trial < 60; trial++) {
      const rank = 1 + (trial % 5);
      const { shape, begin } = randomCorner(next, rank, 7);
      const end = shape.map((d, a) => begin[a]! + 1 + next(d - begin[a]!));
      const strides = shape.map(() => 1 + next(3));
      const [beginMask, endMask] = [next(1 << rank), next(1 << rank)];
      const n = shape.reduce((a, b) => a * b);
      const [cpu, wasm] = await onBoth(() => tf.stridedSlice(tf.range(0, n).reshape(shape), begin, end, strides, beginMask, endMask));
      expect(wasm, `shape ${shape} begin ${begin} end ${end} strides ${strides} masks ${beginMask} ${endMask}`).toEqual(cpu);
    }
    // A feature map's stride-2 window at tap (1, 2), channels whole: runs of channels.
    const [cpu, wasm] = await onBoth(() => tf.stridedSlice(tf.range(0, 2 * 9 * 9 * 3).reshape([2, 9, 9, 3]), [0, 1, 2, 0], [2, 8, 9, 3], [1, 2, 2, 1]));
    expect(wasm).toEqual(cpu);
    expect(wasm[0]!.slice(0, 9)).toEqual([2, 4, 4, 3, -1, 33, 34, 35, 39]);
    // New and ellipsis axes; a shrunk axis beside a stride of 2 (x[1, 0:6:2] of a 3x6 range).
    const [cpu2, wasm2] = await onBoth(() => tf.stridedSlice(tf.range(0, 24).reshape([2, 3, 4]), [0, 1], [0, 3], [1, 2], 0, 0, 1, 0, 0));
    expect(wasm2).toEqual(cpu2);
    await tf.setBackend('wasm');
    sliceInPlaceOnWasm();
    const shrunk = tf.stridedSlice(tf.range(0, 18).reshape([3, 6]), [1, 0], [2, 6], [1, 2], 0, 0, 0, 0, 1);
    expect([shrunk.shape, Array.from(await shrunk.data())]).toEqual([[3], [6, 8, 10]]);
    // A negative stride keeps the stock kernel.
    const reversed = tf.stridedSlice(tf.range(0, 6), [5], [0], [-2]);
    expect(Array.from(await reversed.data())).toEqual([5, 3, 1]);
    tf.dispose([shrunk, reversed]);
  });

  it('keeps the gradient of a slice and the stock path for strings', async () => {
    await tf.setBackend('wasm');
    sliceInPlaceOnWasm();
    const a = tf.tensor2d([[1, 2, 3], [4, 5, 6]]);
    const g = tf.grad((t: tf.Tensor) => tf.sum(tf.square(tf.slice(t, [0, 1], [2, 2]))))(a);
    expect(Array.from(await g.data())).toEqual([0, 4, 6, 0, 10, 12]);
    const s = tf.slice(tf.tensor1d(['a', 'b', 'c'], 'string'), [1], [2]);
    expect(await s.data()).toEqual(['b', 'c']);
    tf.dispose([a, g, s]);
  });
});
