import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { describe, expect, it } from 'vitest';
import { replaceWasmKernel, stockWasmKernel } from './wasm-kernels';

describe('replaced wasm kernels', () => {
  it('ask the latest replacement first, the earlier ones when it declines, the stock kernel last; once per owner', async () => {
    await tf.setBackend('wasm');
    const asked: string[] = [];
    // Abs on wasm: the first owner takes inputs of 2 values, the second of 3; others go to the stock kernel.
    const taking = (owner: string, size: number) => (x: tf.TensorInfo, { backend }: Parameters<tf.KernelFunc>[0]) => {
      asked.push(owner);
      if (tf.util.sizeFromShape(x.shape) !== size) return null;
      const out = (backend as unknown as { makeOutput(s: number[], d: tf.DataType): tf.TensorInfo }).makeOutput([...x.shape], 'float32');
      (tf.backend() as unknown as { typedArrayFromHeap(t: tf.TensorInfo): Float32Array }).typedArrayFromHeap(out).fill(size * 10);
      return out;
    };
    replaceWasmKernel('Abs', taking('first', 2), 'first');
    replaceWasmKernel('Abs', taking('second', 3), 'second');
    replaceWasmKernel('Abs', taking('second again', 3), 'second'); // the same owner: nothing
    expect(stockWasmKernel('Abs')).toBeDefined();

    expect(Array.from(tf.abs(tf.tensor([-1, -2, -3])).dataSync())).toEqual([30, 30, 30]);
    expect(asked).toEqual(['second']);
    asked.length = 0;
    expect(Array.from(tf.abs(tf.tensor([-1, -2])).dataSync())).toEqual([20, 20]);
    expect(asked).toEqual(['second', 'first']);
    asked.length = 0;
    expect(Array.from(tf.abs(tf.tensor([-1, 2, -3, 4])).dataSync())).toEqual([1, 2, 3, 4]);
    expect(asked).toEqual(['second', 'first']);
  });
});
