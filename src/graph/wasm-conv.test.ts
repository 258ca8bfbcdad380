import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { describe, expect, it } from 'vitest';
import { convInputGradientOnWasm, convolutionsBySimdOnWasm, convOnWasm, packFilterModule, wasmConvolutionRuns, type ConvActivation, type PackFilter } from './wasm-conv';
import { leakyReluBySimdOnWasm } from './wasm-leaky-relu';
import { forwardAxis, inputGradientAxis } from './wasm-conv-geometry';
import { explicitPadding, type ConvCase } from './ops/conv-case';

const CASES: ConvCase[] = [
  { name: '3x3 stride 1 pad 1', x: [2, 9, 9, 8], k: [3, 3, 8, 16], strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1] },
  { name: '3x3 stride 2, pads after', x: [1, 10, 11, 8], k: [3, 3, 8, 8], strides: [2, 2], pads: [0, 1, 0, 1], dilations: [1, 1] },
  { name: '3x3 stride 2, pad 1 (odd map)', x: [2, 13, 13, 16], k: [3, 3, 16, 8], strides: [2, 2], pads: [1, 1, 1, 1], dilations: [1, 1] },
  { name: '3x3 dilation 2', x: [2, 9, 9, 8], k: [3, 3, 8, 8], strides: [1, 1], pads: [2, 2, 2, 2], dilations: [2, 2] },
  { name: '1x1', x: [2, 5, 6, 24], k: [1, 1, 24, 16], strides: [1, 1], pads: [0, 0, 0, 0], dilations: [1, 1] },
  { name: '2x2 stride 2', x: [1, 8, 8, 8], k: [2, 2, 8, 8], strides: [2, 2], pads: [0, 0, 0, 0], dilations: [1, 1] },
  { name: '5x5 stride 1, asymmetric pads', x: [1, 7, 9, 8], k: [5, 5, 8, 8], strides: [1, 1], pads: [1, 3, 2, 2], dilations: [1, 1] },
  { name: 'a wide map (several calls per image)', x: [1, 5, 150, 8], k: [3, 3, 8, 8], strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1] },
  { name: 'maps narrower than a tile (3 and 1 positions)', x: [3, 1, 3, 8], k: [1, 3, 8, 8], strides: [1, 1], pads: [0, 0, 1, 1], dilations: [1, 1] },
  { name: 'stride 2 on a map smaller than the kernel', x: [1, 2, 2, 8], k: [3, 3, 8, 8], strides: [2, 2], pads: [1, 1, 1, 1], dilations: [1, 1] },
  { name: 'an image: 3 channels, 3x3 stride 2', x: [2, 17, 16, 3], k: [3, 3, 3, 16], strides: [2, 2], pads: [1, 1, 0, 1], dilations: [1, 1] },
];

const rand = (shape: number[], seed: number) => tf.randomUniform(shape, -1, 1, 'float32', seed);

function expectClose(mine: ArrayLike<number>, ref: ArrayLike<number>, tolerance = 1e-5) {
  expect(mine.length).toBe(ref.length);
  const scale = Math.max(1e-6, ...Array.from(ref, Math.abs));
  let worst = 0;
  for (let i = 0; i < ref.length; i++) worst = Math.max(worst, Math.abs(mine[i]! - ref[i]!) / scale);
  expect(worst).toBeLessThan(tolerance);
}

describe('the convolution tables', () => {
  it('read input o·s + t·d − pad at tap t, −1 in the padding', () => {
    // 5 outputs of a 3-tap, stride-2 axis over 10 inputs with pad 1 before.
    expect(forwardAxis(5, 10, 3, 2, 1, 1).reads).toEqual([-1, 0, 1, 1, 2, 3, 3, 4, 5, 5, 6, 7, 7, 8, 9]);
    // Dilation 2, pad 2.
    expect(forwardAxis(3, 3, 3, 1, 2, 2).reads).toEqual([-1, 0, 2, -1, 1, -1, 0, 2, -1]);
  });

  it("split a stride-2 input gradient into the phases of the input's rows, each with its own taps", () => {
    // 3 taps, stride 2, pad 1: input row i = o·2 + t − 1 ⇒ even rows take tap 1, odd rows taps 0 and 2.
    const [even, odd] = inputGradientAxis(5, 3, 3, 2, 1, 1);
    expect(even).toEqual({ out: [0, 2, 4], taps: [1], reads: [0, 1, 2] });
    // Row 1: tap 0 reads dy row 1, tap 2 dy row 0; row 3: dy rows 2 and 1.
    expect(odd).toEqual({ out: [1, 3], taps: [0, 2], reads: [1, 0, 2, 1] });
  });
});

describe('convolution with the filter read in place (wasm)', () => {
  for (const c of CASES) {
    it(`${c.name}: forward with bias and each activation, and the input gradient, match the cpu backend`, async () => {
      await tf.setBackend('cpu');
      const [x, w, b] = [rand(c.x, 1), rand(c.k, 2), rand([c.k[3]], 3)];
      const conv = tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, c.strides, explicitPadding(c.pads), 'NHWC', c.dilations);
      const dy = rand(conv.shape, 4);
      const [xv, wv, bv, dyv] = [x, w, b, dy].map((t) => t.dataSync().slice());
      const withBias = conv.add(b);
      const refs: Record<ConvActivation, ArrayLike<number>> = {
        linear: withBias.dataSync().slice(),
        relu: tf.relu(withBias).dataSync().slice(),
        leakyrelu: tf.leakyRelu(withBias, 0.1).dataSync().slice(),
      };
      // tfjs has no gradient of a dilated convolution: its input gradient is the undilated case's check only.
      const dilated = c.dilations[0] > 1 || c.dilations[1] > 1;
      const dxRef = dilated ? null : tf.conv2dTranspose(dy as tf.Tensor4D, w as tf.Tensor4D, c.x, c.strides, explicitPadding(c.pads)).dataSync().slice();
      tf.dispose([x, w, b, conv, dy, withBias]);

      await tf.setBackend('wasm');
      const before = tf.memory().numTensors;
      const [xw, ww, bw, dyw] = [tf.tensor(xv!, c.x), tf.tensor(wv!, c.k), tf.tensor(bv!), tf.tensor4d(dyv!, dy.shape as [number, number, number, number])] as tf.Tensor4D[];
      for (const activation of ['linear', 'relu', 'leakyrelu'] as const) {
        const profiled = await tf.profile(() => convOnWasm(xw!, ww!, bw!, c.strides, c.pads, c.dilations, activation, 0.1)!);
        const y = profiled.result as tf.Tensor;
        expect(profiled.kernelNames).toEqual(['LabConv2D']);
        expect(y.shape).toEqual(dy.shape);
        expectClose(y.dataSync(), refs[activation]);
        y.dispose();
      }
      if (c.x[3] % 8 === 0) {
        const dx = convInputGradientOnWasm(dyw!, ww!, c.x, c.strides, c.pads, c.dilations)!;
        expect(dx.shape).toEqual(c.x);
        if (dxRef) expectClose(dx.dataSync(), dxRef);
        dx.dispose();
      } else {
        expect(convInputGradientOnWasm(dyw!, ww!, c.x, c.strides, c.pads, c.dilations)).toBeNull();
      }
      tf.dispose([xw!, ww!, bw!, dyw!]);
      expect(tf.memory().numTensors).toBe(before);
    });
  }

  it('packs a filter by blocks of 8 output channels, as stored and transposed (4 rows at a time, then the last 1–3)', () => {
    const memory = new WebAssembly.Memory({ initial: 1 });
    const pack = new WebAssembly.Instance(new WebAssembly.Module(packFilterModule(false)), { env: { memory } }).exports['pack'] as PackFilter;
    const f = new Float32Array(memory.buffer);
    for (const rows of [1, 3, 4, 5, 8, 13]) {
      for (const blocks of [1, 2]) {
        // [rows][8·blocks] as stored, or transposed: [8·blocks][rows]; the blocks 4096 bytes apart.
        const [src, dst, dstBlockBytes] = [0, 8192, 4096];
        for (let i = 0; i < rows * 8 * blocks; i++) f[src / 4 + i] = i + 1;
        for (const transposed of [0, 1]) {
          f.fill(-1, dst / 4, dst / 4 + 2 * dstBlockBytes);
          const srcRowBytes = 4 * (transposed ? rows : 8 * blocks);
          pack(dst, src, rows, blocks, srcRowBytes, dstBlockBytes, transposed);
          for (let b = 0; b < blocks; b++) {
            for (let k = 0; k < rows; k++) {
              const want = Array.from({ length: 8 }, (_, l) => f[src / 4 + (transposed ? (8 * b + l) * rows + k : k * 8 * blocks + 8 * b + l)]!);
              expect(Array.from(f.subarray((dst + b * dstBlockBytes) / 4 + 8 * k, (dst + b * dstBlockBytes) / 4 + 8 * k + 8))).toEqual(want);
            }
            // Nothing written past the block's rows.
            expect(f[(dst + b * dstBlockBytes) / 4 + 8 * rows]).toBe(-1);
          }
        }
      }
    }
  });

  it('gives the dilated input gradient of the stride-1 correlation it spells (checked by a dot product)', async () => {
    // ⟨dy, conv(x)⟩ = ⟨dx, x⟩ for the linear map x ↦ conv(x): its adjoint at dy is the input gradient.
    await tf.setBackend('wasm');
    const c = CASES.find((k) => k.dilations[0] === 2)!;
    const [x, w] = [rand(c.x, 5), rand(c.k, 6)] as tf.Tensor4D[];
    const y = tf.conv2d(x!, w!, 1, explicitPadding(c.pads), 'NHWC', c.dilations);
    const dy = rand(y.shape, 7);
    const dx = convInputGradientOnWasm(dy as tf.Tensor4D, w!, c.x, c.strides, c.pads, c.dilations)!;
    const lhs = tf.sum(tf.mul(dy, y)).dataSync()[0]!;
    const rhs = tf.sum(tf.mul(dx, x!)).dataSync()[0]!;
    expect(Math.abs(lhs - rhs) / Math.abs(lhs)).toBeLessThan(1e-5);
    tf.dispose([x!, w!, y, dy, dx]);
  });

  it('leaves other cases to the stock kernels: output channels off the tile, other dtypes, other backends', async () => {
    await tf.setBackend('wasm');
    const x = rand([1, 4, 4, 8], 8) as tf.Tensor4D;
    expect(convOnWasm(x, rand([3, 3, 8, 12], 9) as tf.Tensor4D, null, [1, 1], [1, 1, 1, 1], [1, 1])).toBeNull();
    expect(convOnWasm(x.toInt(), tf.zeros([1, 1, 8, 8]).toInt() as tf.Tensor4D, null, [1, 1], [0, 0, 0, 0], [1, 1])).toBeNull();
    await tf.setBackend('cpu');
    expect(convOnWasm(tf.zeros([1, 4, 4, 8]), tf.zeros([1, 1, 8, 8]), null, [1, 1], [0, 0, 0, 0], [1, 1])).toBeNull();
  });
});

describe("tfjs's Conv2D and FusedConv2D on wasm, through this kernel", () => {
  type Call = { name: string; x: number[]; k: number[]; strides: number | [number, number]; pad: 'same' | 'valid' | number; dilations: number; activation: 'linear' | 'relu' | 'leakyrelu'; taken: boolean };
  const calls: Call[] = [
    { name: "3x3 'same' stride 2 (a row of padding below only), leaky ReLU", x: [2, 10, 9, 8], k: [3, 3, 8, 16], strides: 2, pad: 'same', dilations: 1, activation: 'leakyrelu', taken: true },
    { name: "3x3 'valid' stride 1, ReLU", x: [1, 7, 6, 16], k: [3, 3, 16, 8], strides: 1, pad: 'valid', dilations: 1, activation: 'relu', taken: true },
    { name: '5x5 numeric pad 2, dilation 2', x: [1, 11, 11, 8], k: [5, 5, 8, 8], strides: 1, pad: 2, dilations: 2, activation: 'linear', taken: true },
    { name: '1x1 with strides (2, 1)', x: [2, 6, 5, 24], k: [1, 1, 24, 8], strides: [2, 1], pad: 'valid', dilations: 1, activation: 'linear', taken: true },
    { name: "an image's 3 channels (tfjs's own)", x: [1, 8, 8, 3], k: [3, 3, 3, 8], strides: 2, pad: 'same', dilations: 1, activation: 'relu', taken: false },
    { name: '12 outputs (computed as 16, the last 4 dropped)', x: [1, 5, 5, 8], k: [3, 3, 8, 12], strides: 1, pad: 'same', dilations: 1, activation: 'linear', taken: true },
    { name: "1x1, 124 outputs (a detection head's 80 + 4·11), stride 2, leaky ReLU", x: [2, 9, 7, 16], k: [1, 1, 16, 124], strides: 2, pad: 'same', dilations: 1, activation: 'leakyrelu', taken: true },
  ];
  for (const c of calls) {
    it(`${c.name}: the cpu backend's values`, async () => {
      const run = () =>
        tf.tidy(() => {
          const [x, w, b] = [rand(c.x, 11), rand(c.k, 12), rand([c.k[3]!], 13)] as [tf.Tensor4D, tf.Tensor4D, tf.Tensor1D];
          const plain = tf.conv2d(x, w, c.strides, c.pad, 'NHWC', c.dilations);
          const fused = tf.fused.conv2d({ x, filter: w, bias: b, strides: c.strides, pad: c.pad, dilations: c.dilations, activation: c.activation, leakyreluAlpha: 0.1 });
          return [plain.dataSync().slice(), fused.dataSync().slice()];
        });
      await tf.setBackend('cpu');
      const ref = run();
      await tf.setBackend('wasm');
      leakyReluBySimdOnWasm();
      convolutionsBySimdOnWasm();
      const before = wasmConvolutionRuns();
      const mine = run();
      // Both calls (Conv2D and FusedConv2D) through this kernel, or neither.
      expect(wasmConvolutionRuns() - before).toBe(c.taken ? 2 : 0);
      expectClose(mine[0]!, ref[0]!);
      expectClose(mine[1]!, ref[1]!);
    });
  }
});
