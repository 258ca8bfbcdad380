import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { describe, expect, it } from 'vitest';
import { leakyReluBySimdOnWasm } from './wasm-leaky-relu';
import { stockWasmKernel } from './wasm-kernels';

/** `kernel` run by the engine (the lab's) and by the stock wasm kernel, as value arrays, with the engine's kernel names. */
async function bothWays(kernel: string, inputs: Record<string, tf.Tensor>, attrs: Record<string, unknown>) {
  const profiled = await tf.profile(() => tf.engine().runKernel(kernel, inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor);
  const mine = profiled.result as tf.Tensor;
  const info = stockWasmKernel(kernel)!({ inputs, backend: tf.backend(), attrs: attrs as unknown as tf.NamedAttrMap }) as tf.TensorInfo;
  const stock = tf.engine().makeTensorFromTensorInfo(info);
  const out = { mine: Array.from(mine.dataSync()), stock: Array.from(stock.dataSync()), names: profiled.kernelNames };
  tf.dispose([mine, stock]);
  return out;
}

describe('leaky ReLU on wasm as one SIMD loop', () => {
  it("LeakyRelu gives the stock kernel's values bit for bit: SIMD steps and a tail, zeros of both signs, NaN and infinities", async () => {
    await tf.setBackend('wasm');
    leakyReluBySimdOnWasm();
    const x = tf.concat([tf.tensor1d([0, -0, NaN, Infinity, -Infinity, -3, 3]), tf.randomNormal([1024], 0, 2, 'float32', 5)]);
    const before = tf.memory().numTensors;
    const { mine, stock, names } = await bothWays('LeakyRelu', { x }, { alpha: 0.1 });
    expect(tf.memory().numTensors).toBe(before);
    expect(names).toEqual(['LeakyRelu']);
    expect(mine.filter((v) => v < 0).length).toBeGreaterThan(400);
    expect(mine).toEqual(stock);
    expect(Object.is(mine[1], -0)).toBe(true);
    x.dispose();
  });

  it("a fused convolution's leaky ReLU gives the stock kernel's values bit for bit, regular and depthwise, in one kernel", async () => {
    await tf.setBackend('wasm');
    leakyReluBySimdOnWasm();
    for (const depthwise of [false, true]) {
      const x = tf.randomUniform([2, 9, 11, 6], -1, 1, 'float32', 31);
      const filter = tf.randomUniform(depthwise ? [3, 3, 6, 2] : [3, 3, 6, 5], -1, 1, 'float32', 32);
      const bias = tf.randomUniform([depthwise ? 12 : 5], -1, 1, 'float32', 33);
      const attrs = { strides: [1, 1], pad: [[0, 0], [1, 1], [1, 1], [0, 0]], dataFormat: 'NHWC', dilations: [1, 1], activation: 'leakyrelu', leakyreluAlpha: 0.1 };
      const kernel = depthwise ? 'FusedDepthwiseConv2D' : 'FusedConv2D';
      const { mine, stock, names } = await bothWays(kernel, { x, filter, bias }, attrs);
      expect(names).toEqual([kernel]);
      expect(mine.filter((v) => v < 0).length).toBeGreaterThan(mine.length / 4);
      expect(mine).toEqual(stock);
      // Other activations are the stock kernel's own.
      const relu = await bothWays(kernel, { x, filter, bias }, { ...attrs, activation: 'relu' });
      expect(relu.mine).toEqual(relu.stock);
      tf.dispose([x, filter, bias]);
    }
  });
});
