import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { describe, expect, it } from 'vitest';
import { copyRunsModule, heapCopier, heapMemory } from './wasm-heap-copy';
import { sliceInPlaceOnWasm } from './wasm-slice';

/** The module on a memory of its own, with bytes 0..255 at offset 0. */
function onOwnMemory(shared: boolean) {
  const memory = new WebAssembly.Memory(shared ? { initial: 1, maximum: 4, shared: true } : { initial: 1 });
  const instance = new WebAssembly.Instance(new WebAssembly.Module(copyRunsModule(shared)), { env: { memory } });
  const bytes = new Uint8Array(memory.buffer);
  for (let i = 0; i < 256; i++) bytes[i] = i;
  return { bytes, copyRuns: instance.exports['copyRuns'] as (...a: number[]) => void };
}

describe('memory.copy on the wasm heap', () => {
  for (const shared of [false, true]) {
    it(`copies strided runs into place on ${shared ? 'a shared' : 'an unshared'} memory, and nothing for a count of 0`, () => {
      expect(WebAssembly.validate(copyRunsModule(shared))).toBe(true);
      const { bytes, copyRuns } = onOwnMemory(shared);
      // Three runs of 3 bytes from 10, 17, 24 to 1000, 1004, 1008.
      copyRuns(1000, 10, 3, 3, 7, 4);
      expect(Array.from(bytes.subarray(1000, 1012))).toEqual([10, 11, 12, 0, 17, 18, 19, 0, 24, 25, 26, 0]);
      copyRuns(2000, 0, 8, 0, 0, 0);
      expect(bytes.subarray(2000, 2008).every((b) => b === 0)).toBe(true);
    });
  }

  it("finds the wasm backend's own memory (not the fallback through a view)", async () => {
    await tf.setBackend('wasm');
    const module = (tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array } }).wasm;
    expect(heapMemory(module)?.buffer).toBe(module.HEAPU8.buffer);
    // Copy through the copier between two tensors' data and read it back through tfjs.
    const a = tf.tensor1d([1, 2, 3, 4, 5, 6]);
    const b = tf.zeros([4]);
    const heap = (t: tf.Tensor) => (tf.backend() as unknown as { typedArrayFromHeap(t: tf.TensorInfo): Float32Array }).typedArrayFromHeap(t).byteOffset;
    heapCopier(module)(heap(b), heap(a) + 4, 8, 2, 12, 8);
    expect(Array.from(await b.data())).toEqual([2, 3, 5, 6]);
    tf.dispose([a, b]);
  });
});

/** Values of `f` on the cpu backend and on wasm with the replaced kernels. */
async function onBoth(f: () => tf.Tensor): Promise<[number[], number[]]> {
  const run = async (backend: string) => {
    await tf.setBackend(backend);
    if (backend === 'wasm') sliceInPlaceOnWasm();
    const out = tf.tidy(f);
    const values = [...out.shape, -1, ...(await out.data())] as number[];
    out.dispose();
    return values;
  };
  return [await run('cpu'), await run('wasm')];
}

describe('Concat on wasm copies with memory.copy', () => {
  it('matches the cpu backend on every axis, uneven parts, empty parts, int32 and bool', async () => {
    const a = () => tf.range(0, 24).reshape([2, 3, 4]);
    const b = () => tf.range(100, 100 + 2 * 3 * 2).reshape([2, 3, 2]);
    const cases: [string, () => tf.Tensor][] = [
      ['last axis', () => tf.concat([a(), b()], 2)],
      ['first axis', () => tf.concat([a(), a().mul(-1)], 0)],
      ['middle axis, three parts', () => tf.concat([a(), a().slice([0, 0, 0], [2, 1, 4]), a()], 1)],
      ['an empty part', () => tf.concat([a(), tf.zeros([2, 3, 0]), b()], 2)],
      ['one part left', () => tf.concat([tf.zeros([2, 0, 4]), a()], 1)],
      ['int32', () => tf.concat([tf.tensor1d([1, 2], 'int32'), tf.tensor1d([3, 4, 5], 'int32')])],
      ['bool', () => tf.concat([tf.tensor2d([[1], [0]], [2, 1], 'bool'), tf.tensor2d([[0, 1], [1, 1]], [2, 2], 'bool')], 1)],
    ];
    for (const [name, f] of cases) {
      const [cpu, wasm] = await onBoth(f);
      expect(wasm, name).toEqual(cpu);
    }
    const [, twoBools] = await onBoth(cases[6]![1]);
    expect(twoBools).toEqual([2, 3, -1, 1, 0, 1, 0, 1, 1]);
  });

  it('keeps the gradient of a concat and the stock path for strings', async () => {
    await tf.setBackend('wasm');
    sliceInPlaceOnWasm();
    const x = tf.tensor2d([[1, 2], [3, 4]]);
    const g = tf.grad((t: tf.Tensor) => tf.sum(tf.concat([t, t.mul(3)], 1).square()))(x);
    expect(Array.from(await g.data())).toEqual([20, 40, 60, 80]);
    const s = tf.concat([tf.tensor1d(['a'], 'string'), tf.tensor1d(['b', 'c'], 'string')]);
    expect(await s.data()).toEqual(['a', 'b', 'c']);
    tf.dispose([x, g, s]);
  });
});
