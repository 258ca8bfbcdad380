import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { describe, expect, it } from 'vitest';
import { conv2dForwardGrad } from './ops/conv-grad';
import { explicitPadding, type ConvCase } from './ops/conv-case';
import { accumulateTilesModule, filterGradientUnits, setInPlaceFilterGradients, type AccumulateTiles } from './wasm-filter-grad';

type Case = ConvCase;

const CASES: Case[] = [
  { name: '3x3 stride 1 pad 1', x: [2, 9, 9, 8], k: [3, 3, 8, 16], strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1] },
  { name: '3x3 stride 2, pads after', x: [1, 10, 11, 4], k: [3, 3, 4, 8], strides: [2, 2], pads: [0, 1, 0, 1], dilations: [1, 1] },
  { name: '3x3 dilation 2', x: [2, 9, 9, 4], k: [3, 3, 4, 8], strides: [1, 1], pads: [2, 2, 2, 2], dilations: [2, 2] },
  { name: '1x1', x: [2, 5, 6, 12], k: [1, 1, 12, 16], strides: [1, 1], pads: [0, 0, 0, 0], dilations: [1, 1] },
  { name: '2x2 stride 2', x: [1, 8, 8, 8], k: [2, 2, 8, 8], strides: [2, 2], pads: [0, 0, 0, 0], dilations: [1, 1] },
  { name: '3x3 stride 1 on a wide map (several calls per row block)', x: [1, 6, 150, 4], k: [3, 3, 4, 8], strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1] },
  // An image's 3 channels, and 6: read with zeros after them up to 4 and 8.
  { name: 'a first layer: 3 channels, 3x3 stride 2', x: [2, 17, 16, 3], k: [3, 3, 3, 16], strides: [2, 2], pads: [1, 1, 0, 1], dilations: [1, 1] },
  { name: '6 channels, 3x3 stride 1', x: [1, 7, 7, 6], k: [3, 3, 6, 8], strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1] },
  // A last block of 1 and of 3 input channels.
  { name: '5 channels, 3x3 stride 1', x: [1, 6, 7, 5], k: [3, 3, 5, 8], strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1] },
  { name: '7 channels, 3x3 stride 2', x: [2, 9, 8, 7], k: [3, 3, 7, 16], strides: [2, 2], pads: [1, 1, 1, 1], dilations: [1, 1] },
  // A detection head's 124 outputs: a last block of 4.
  { name: '12 output channels, 1x1', x: [2, 5, 5, 8], k: [1, 1, 8, 12], strides: [1, 1], pads: [0, 0, 0, 0], dilations: [1, 1] },
  { name: '20 output channels, 3x3 stride 2', x: [1, 9, 9, 8], k: [3, 3, 8, 20], strides: [2, 2], pads: [1, 1, 1, 1], dilations: [1, 1] },
];

const rand = (shape: number[], seed: number) => tf.randomUniform(shape, -1, 1, 'float32', seed);

/** The filter gradient of Σ r·conv(x, w), on the current backend. */
function filterGrad(c: Case, xv: number[], wv: number[], rv: number[]) {
  return tf.tidy(() => {
    const [x, w] = [tf.tensor(xv, c.x) as tf.Tensor4D, tf.tensor(wv, c.k) as tf.Tensor4D];
    const y = conv2dForwardGrad(x, w, c.strides, c.pads, c.dilations);
    const r = tf.tensor(rv, y.shape);
    return Array.from(tf.grad((k: tf.Tensor) => conv2dForwardGrad(x, k as tf.Tensor4D, c.strides, c.pads, c.dilations).mul(r).sum())(w).dataSync());
  });
}

describe('filter gradients accumulated in place (wasm)', () => {
  for (const c of CASES) {
    it(`${c.name}: matches the cpu backend's native gradient (undilated) and, bit for bit, the matrix products`, async () => {
      await tf.setBackend('cpu');
      const [x, w] = [rand(c.x, 1), rand(c.k, 2)];
      const y = tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, c.strides, explicitPadding(c.pads), 'NHWC', c.dilations);
      const r = rand(y.shape, 3);
      const [xv, wv, rv] = [x, w, r].map((t) => Array.from(t.dataSync()));
      const padArg = explicitPadding(c.pads);
      // tfjs has no gradient of a dilated convolution: that case is checked against the products
      // only (conv-grad.test.ts checks those against a dilated kernel's gradient).
      const dilated = c.dilations[0] > 1 || c.dilations[1] > 1;
      const ref = dilated ? [] : Array.from(tf.grad((k: tf.Tensor) => tf.conv2d(x as tf.Tensor4D, k as tf.Tensor4D, c.strides, padArg, 'NHWC', c.dilations).mul(r).sum())(w).dataSync());
      tf.dispose([x, w, y, r]);

      await tf.setBackend('wasm');
      const before = tf.memory().numTensors;
      const profiled = await tf.profile(() => tf.tensor(filterGrad(c, xv!, wv!, rv!)));
      const mine = Array.from((profiled.result as tf.Tensor).dataSync());
      tf.dispose(profiled.result as tf.Tensor);
      expect(tf.memory().numTensors).toBe(before);
      expect(profiled.kernelNames).toContain('LabFilterGradient');
      const scale = Math.max(...ref.map(Math.abs));
      if (!dilated) mine.forEach((v, i) => expect(Math.abs(v - ref[i]!) / scale).toBeLessThan(1e-5));

      setInPlaceFilterGradients(false);
      try {
        const products = filterGrad(c, xv!, wv!, rv!);
        // A first layer's products stack its taps (another order of sums): close, not equal.
        if (c.x[3] % 4 === 0) expect(mine).toEqual(products);
        else mine.forEach((v, i) => expect(Math.abs(v - products[i]!) / scale).toBeLessThan(1e-5));
      } finally {
        setInPlaceFilterGradients(true);
      }
    });
  }

  it('leaves output channels that are not a multiple of 4 to the matrix products', async () => {
    await tf.setBackend('wasm');
    const c: Case = { name: '', x: [1, 6, 6, 4], k: [3, 3, 4, 6], strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1] };
    const profiled = await tf.profile(() => tf.tensor(filterGrad(c, Array.from(rand(c.x, 4).dataSync()), Array.from(rand(c.k, 5).dataSync()), Array.from(rand([1, 6, 6, 6], 6).dataSync()))));
    tf.dispose(profiled.result as tf.Tensor);
    expect(profiled.kernelNames).not.toContain('LabFilterGradient');
  });

  it('accumulates 4x8 tiles over rows of positions, for each tap, on a shared and an unshared memory', () => {
    for (const shared of [false, true]) {
      expect(WebAssembly.validate(accumulateTilesModule(shared))).toBe(true);
      const memory = new WebAssembly.Memory(shared ? { initial: 1, maximum: 2, shared: true } : { initial: 1 });
      const accumulate = new WebAssembly.Instance(new WebAssembly.Module(accumulateTilesModule(shared)), { env: { memory } }).exports['accumulate'] as AccumulateTiles;
      const f = new Float32Array(memory.buffer);
      // x: an image of 2 rows of 5 pixels, 8 channels; dy: 2 rows of 3 positions, 8 channels;
      // 2 taps, the second one position to the right of the first.
      const [ci, co, rows, cols, xRowPixels, kw] = [8, 8, 2, 3, 5, 2];
      const [xAt, dyAt, cAt, xPack, dyPack] = [0, 1024, 2048, 4096, 8192];
      for (let i = 0; i < rows * xRowPixels * ci; i++) f[xAt / 4 + i] = (i % 7) - 3;
      for (let i = 0; i < rows * cols * co; i++) f[dyAt / 4 + i] = (i % 5) * 0.5;
      // Column −1 first (padding, left of the image): tap 0 reads zeros at k = 0.
      const xAtPixel = (r: number, col: number, a: number) => (col < 0 ? 0 : f[xAt / 4 + (r * xRowPixels + col) * ci + a]!);
      // Added to the 1s there; then, fresh, in place of them.
      for (const fresh of [0, 1]) {
        f.fill(1, cAt / 4, cAt / 4 + kw * ci * co);
        accumulate(cAt, xAt, dyAt, rows, cols, ci / 4, co / 8, cols * co * 4, co * 4, 1, kw, ci * co * 4, xPack, dyPack, 0, -1, rows, xRowPixels, 1, 1, 1, 1, ci * 4, co * 4, 0, 4, fresh);
        for (let t = 0; t < kw; t++) {
          for (let a = 0; a < ci; a++) {
            for (let b = 0; b < co; b++) {
              let want = 1 - fresh;
              for (let r = 0; r < rows; r++) for (let k = 0; k < cols; k++) want += xAtPixel(r, k + t - 1, a) * f[dyAt / 4 + (r * cols + k) * co + b]!;
              expect(f[cAt / 4 + (t * ci + a) * co + b]).toBe(want);
            }
          }
        }
      }
    }
  });

  it('shares the gradient between threads by units that cover every block once', () => {
    const shape = (ciBlocks: number, coBlocks: number, threads: number) => {
      const units = filterGradientUnits(ciBlocks, coBlocks, threads);
      const seen = new Array<number>(ciBlocks * coBlocks).fill(0);
      for (const u of units) for (let i = u.ciFirst; i < u.ciFirst + u.ciCount; i++) for (let o = u.coFirst; o < u.coFirst + u.coCount; o++) seen[i * coBlocks + o]! += 1;
      expect(seen.every((v) => v === 1)).toBe(true);
      return units.map((u) => `${u.ciCount}x${u.coCount}`).join(' ');
    };
    expect(shape(32, 16, 1)).toBe('32x16');
    expect(shape(32, 16, 2)).toBe(Array(8).fill('4x16').join(' '));
    expect(shape(64, 16, 2)).toBe(Array(8).fill('8x16').join(' '));
    expect(shape(33, 16, 2)).toBe([...Array(6).fill('5x16'), '3x16'].join(' '));
    expect(shape(8, 4, 2)).toBe('4x4 4x4');
    // One block of input channels (an image's 3): the output channels are split.
    expect(shape(1, 9, 2)).toBe('1x4 1x4 1x1');
    expect(shape(1, 1, 4)).toBe('1x1');
  });
});
