import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { describe, expect, it } from 'vitest';
import { conflictFreeRows, conv2dForwardGrad, convBiasActivationGrad, depthwiseConv2dForwardGrad, transposeConflicts, type OutputSlopeActivation, type Pads } from './conv-grad';

type Case = { name: string; x: number[]; k: number[]; strides: [number, number]; pads: Pads; dilations: [number, number] };

const convCases: Case[] = [
  { name: '3x3 stride 1 pad 1', x: [2, 6, 7, 3], k: [3, 3, 3, 4], strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1] },
  { name: '3x3 stride 2 pad 1', x: [1, 7, 8, 2], k: [3, 3, 2, 3], strides: [2, 2], pads: [1, 1, 1, 1], dilations: [1, 1] },
  { name: '3x3 stride 2 asymmetric same-pad', x: [2, 8, 8, 3], k: [3, 3, 3, 2], strides: [2, 2], pads: [0, 1, 0, 1], dilations: [1, 1] },
  { name: '1x1 stride 1', x: [1, 4, 5, 6], k: [1, 1, 6, 3], strides: [1, 1], pads: [0, 0, 0, 0], dilations: [1, 1] },
  { name: '3x3 dilation 2', x: [1, 9, 9, 2], k: [3, 3, 2, 2], strides: [1, 1], pads: [2, 2, 2, 2], dilations: [2, 2] },
  { name: '5x3 stride (2,1) valid', x: [1, 11, 7, 2], k: [5, 3, 2, 3], strides: [2, 1], pads: [0, 0, 0, 0], dilations: [1, 1] },
  // The paths added for speed: a 1x1 convolution's filter gradient as one matrix product, a
  // strided 1x1, rows the stride never reads, pads beyond the kernel's reach, explicit pads.
  { name: '1x1 stride 1 batch 3 (one matrix product)', x: [3, 5, 4, 7], k: [1, 1, 7, 5], strides: [1, 1], pads: [0, 0, 0, 0], dilations: [1, 1] },
  { name: '1x1 stride 2', x: [2, 7, 7, 3], k: [1, 1, 3, 4], strides: [2, 2], pads: [0, 0, 0, 0], dilations: [1, 1] },
  { name: '3x3 stride 2 valid, last rows unread', x: [2, 8, 9, 3], k: [3, 3, 3, 2], strides: [2, 2], pads: [0, 0, 0, 0], dilations: [1, 1] },
  { name: '3x3 explicit pads beyond the kernel reach', x: [1, 5, 6, 2], k: [3, 3, 2, 3], strides: [1, 1], pads: [3, 0, 0, 3], dilations: [1, 1] },
  { name: '2x2 stride 2 explicit asymmetric pads', x: [1, 6, 6, 4], k: [2, 2, 4, 5], strides: [2, 2], pads: [1, 0, 0, 1], dilations: [1, 1] },
  { name: '3x3 stride 2 SAME on odd size', x: [2, 9, 7, 3], k: [3, 3, 3, 4], strides: [2, 2], pads: [1, 1, 1, 1], dilations: [1, 1] },
  // Stride phases: a stride larger than the kernel leaves phases with no tap; mixed strides.
  { name: '5x5 stride 3 asymmetric pads', x: [1, 11, 10, 3], k: [5, 5, 3, 2], strides: [3, 3], pads: [2, 1, 0, 2], dilations: [1, 1] },
  { name: '2x2 stride 3 (phases without a tap)', x: [2, 8, 7, 2], k: [2, 2, 2, 3], strides: [3, 3], pads: [0, 0, 1, 0], dilations: [1, 1] },
  { name: '3x3 stride (1,2) pad 1', x: [2, 7, 8, 2], k: [3, 3, 2, 3], strides: [1, 2], pads: [1, 1, 1, 1], dilations: [1, 1] },
  { name: '3x2 dilation (2,3) asymmetric pads', x: [1, 9, 10, 2], k: [3, 2, 2, 3], strides: [1, 1], pads: [2, 1, 0, 3], dilations: [2, 3] },
  // 1024 positions with more than 8 input channels: transposes with cache conflicts. At stride 1
  // the padded input (32x32) gets a column of zeros that no window reads; otherwise the
  // filter-gradient products run over more positions, zeros in both operands.
  { name: '3x3 stride 1, padded input 32x32 (grown by a column)', x: [1, 30, 30, 16], k: [3, 3, 16, 4], strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1] },
  { name: '3x3 dilation 2, padded input 32x32 (grown by a column)', x: [1, 28, 28, 12], k: [3, 3, 12, 3], strides: [1, 1], pads: [2, 2, 2, 2], dilations: [2, 2] },
  { name: '3x3 stride 1 valid on 2x32x32 (grown by a column)', x: [2, 32, 32, 12], k: [3, 3, 12, 2], strides: [1, 1], pads: [0, 0, 0, 0], dilations: [1, 1] },
  { name: '1x1 on 2x16x32 (zero rows)', x: [2, 16, 32, 12], k: [1, 1, 12, 5], strides: [1, 1], pads: [0, 0, 0, 0], dilations: [1, 1] },
  { name: '3x3 stride 2 to 32x32 (zero rows per tap)', x: [1, 64, 64, 12], k: [3, 3, 12, 3], strides: [2, 2], pads: [0, 1, 0, 1], dilations: [1, 1] },
  { name: '3x3 stride 2 on 3 channels to 32x32 (stacked taps, zero rows)', x: [1, 64, 64, 3], k: [3, 3, 3, 4], strides: [2, 2], pads: [0, 1, 0, 1], dilations: [1, 1] },
];

function dilateKernel(w: tf.Tensor4D, [dh, dw]: [number, number]): tf.Tensor4D {
  if (dh === 1 && dw === 1) return w;
  const [kh, kw, ci, co] = w.shape;
  const spread = tf.pad(w.reshape([kh, 1, kw, 1, ci, co]), [[0, 0], [0, dh - 1], [0, 0], [0, dw - 1], [0, 0], [0, 0]]);
  return spread.reshape([kh * dh, kw * dw, ci, co]).slice([0, 0, 0, 0], [(kh - 1) * dh + 1, (kw - 1) * dw + 1, ci, co]) as tf.Tensor4D;
}

function rand(shape: number[], seed: number) {
  return tf.randomNormal(shape, 0, 1, 'float32', seed);
}

/** Gradients of Σ r·conv(x, w) w.r.t. x and w, with r a fixed random weighting of the output. */
function grads(conv: (x: tf.Tensor4D, w: tf.Tensor4D) => tf.Tensor4D, x: tf.Tensor4D, w: tf.Tensor4D) {
  return tf.tidy(() => {
    const y0 = conv(x, w);
    const r = rand(y0.shape, 7);
    const g = tf.grads((a: tf.Tensor, b: tf.Tensor) => conv(a as tf.Tensor4D, b as tf.Tensor4D).mul(r).sum())([x, w]);
    return { y: y0.arraySync(), dx: g[0]!.arraySync(), dw: g[1]!.arraySync() };
  });
}

function maxRelDiff(a: unknown, b: unknown): number {
  const fa = (a as number[]).flat(4) as number[];
  const fb = (b as number[]).flat(4) as number[];
  expect(fa.length).toBe(fb.length);
  const scale = Math.max(1e-6, ...fb.map(Math.abs));
  return Math.max(...fa.map((v, i) => Math.abs(v - fb[i]!))) / scale;
}

describe('row counts whose transpose conflicts in the cache', () => {
  it('flags the [rows, columns] transposes measured slow on wasm and not the fast ones', () => {
    // Measured (ns per value): [2048,128] 8.3, [6400,128] 3.8, [25600,32] 3.5, [8192,32] 3.6,
    // [1280,128] 3.3, [6400,64] 1.9 against [2112,128] 1.2, [8448,32] 1.2, [6336,128] 1.0,
    // [10816,128] 1.0, [1600,128] 1.0, [43264,32] 1.2, [6400,32] 0.9–1.5, [5184,64] 1.1, [1040,128] 1.0.
    for (const [r, c] of [[2048, 128], [6400, 128], [25600, 32], [8192, 32], [1280, 128], [6400, 64]]) expect(transposeConflicts(r!, c!), `[${r},${c}]`).toBe(true);
    for (const [r, c] of [[2112, 128], [8448, 32], [6336, 128], [10816, 128], [1600, 128], [43264, 32], [6400, 32], [5184, 64], [1040, 128], [2048, 8]]) {
      expect(transposeConflicts(r!, c!), `[${r},${c}]`).toBe(false);
    }
  });

  it('moves a conflicting count to the next free one, 16 rows at a time', () => {
    expect(conflictFreeRows(2048, 128)).toBe(2064);
    expect(conflictFreeRows(6400, 128)).toBe(6416);
    expect(conflictFreeRows(10816, 128)).toBe(10816);
    expect(transposeConflicts(conflictFreeRows(173056, 27), 27)).toBe(false);
    // Past 8 ways · 64 sets of columns no row count helps: the count stays as it is.
    expect(conflictFreeRows(2048, 1024)).toBe(2048);
  });
});

describe('conv2d gradients through forward convolutions', () => {
  for (const c of convCases) {
    it(`${c.name}: matches the cpu backend's native gradients, on cpu and on wasm`, async () => {
      await tf.setBackend('cpu');
      const x = rand(c.x, 1) as tf.Tensor4D;
      const w = rand(c.k, 2) as tf.Tensor4D;
      const padArg = [[0, 0], [c.pads[0], c.pads[1]], [c.pads[2], c.pads[3]], [0, 0]] as [[number, number], [number, number], [number, number], [number, number]];
      // tfjs has no gradient for dilated convolutions; the reference spells the dilation out as a
      // kernel with zeros inserted, which a plain convolution differentiates natively.
      const ref = grads((a, b) => tf.conv2d(a, dilateKernel(b, c.dilations), c.strides, padArg, 'NHWC', 1), x, w);
      const mineCpu = grads((a, b) => conv2dForwardGrad(a, b, c.strides, c.pads, c.dilations), x, w);
      const xv = x.arraySync();
      const wv = w.arraySync();
      tf.dispose([x, w]);
      expect(maxRelDiff(mineCpu.y, ref.y)).toBeLessThan(1e-5);
      expect(maxRelDiff(mineCpu.dx, ref.dx)).toBeLessThan(1e-5);
      expect(maxRelDiff(mineCpu.dw, ref.dw)).toBeLessThan(1e-5);

      await tf.setBackend('wasm');
      const xw = tf.tensor(xv) as tf.Tensor4D;
      const ww = tf.tensor(wv) as tf.Tensor4D;
      const before = tf.memory().numTensors;
      const mineWasm = grads((a, b) => conv2dForwardGrad(a, b, c.strides, c.pads, c.dilations), xw, ww);
      expect(tf.memory().numTensors).toBe(before);
      tf.dispose([xw, ww]);
      expect(maxRelDiff(mineWasm.dx, ref.dx)).toBeLessThan(1e-5);
      expect(maxRelDiff(mineWasm.dw, ref.dw)).toBeLessThan(1e-5);
    });
  }
});

const dwCases: Case[] = [
  { name: '3x3 stride 1 pad 1 multiplier 1', x: [2, 6, 6, 3], k: [3, 3, 3, 1], strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1] },
  { name: '3x3 stride 2 same-pad multiplier 1', x: [2, 8, 7, 4], k: [3, 3, 4, 1], strides: [2, 2], pads: [0, 1, 1, 1], dilations: [1, 1] },
  { name: '5x5 stride 2 multiplier 2', x: [1, 9, 9, 2], k: [5, 5, 2, 2], strides: [2, 2], pads: [2, 2, 2, 2], dilations: [1, 1] },
  { name: '3x3 dilation 2 multiplier 1', x: [2, 9, 8, 3], k: [3, 3, 3, 1], strides: [1, 1], pads: [2, 2, 2, 2], dilations: [2, 2] },
  { name: '3x3 stride 2 valid multiplier 3', x: [1, 8, 9, 2], k: [3, 3, 2, 3], strides: [2, 2], pads: [0, 0, 0, 0], dilations: [1, 1] },
  { name: '2x2 explicit pads beyond the reach', x: [1, 5, 5, 2], k: [2, 2, 2, 1], strides: [1, 1], pads: [2, 0, 0, 2], dilations: [1, 1] },
];

describe('depthwise conv gradients through forward convolutions', () => {
  for (const c of dwCases) {
    it(`${c.name}: matches the cpu backend's native gradients, on cpu and on wasm`, async () => {
      await tf.setBackend('cpu');
      const x = rand(c.x, 3) as tf.Tensor4D;
      const w = rand(c.k, 4) as tf.Tensor4D;
      const padArg = [[0, 0], [c.pads[0], c.pads[1]], [c.pads[2], c.pads[3]], [0, 0]] as [[number, number], [number, number], [number, number], [number, number]];
      // tfjs has no depthwise gradient for dilations > 1: the reference spells the dilation out.
      const ref = grads((a, b) => tf.depthwiseConv2d(a, dilateKernel(b, c.dilations), c.strides, padArg, 'NHWC', 1), x, w);
      const mine = grads((a, b) => depthwiseConv2dForwardGrad(a, b, c.strides, c.pads, c.dilations), x, w);
      const xv = x.arraySync();
      const wv = w.arraySync();
      tf.dispose([x, w]);
      expect(maxRelDiff(mine.y, ref.y)).toBeLessThan(1e-5);
      expect(maxRelDiff(mine.dx, ref.dx)).toBeLessThan(1e-5);
      expect(maxRelDiff(mine.dw, ref.dw)).toBeLessThan(1e-5);

      await tf.setBackend('wasm');
      const xw = tf.tensor(xv) as tf.Tensor4D;
      const ww = tf.tensor(wv) as tf.Tensor4D;
      const mineWasm = grads((a, b) => depthwiseConv2dForwardGrad(a, b, c.strides, c.pads, c.dilations), xw, ww);
      tf.dispose([xw, ww]);
      expect(maxRelDiff(mineWasm.dx, ref.dx)).toBeLessThan(1e-5);
      expect(maxRelDiff(mineWasm.dw, ref.dw)).toBeLessThan(1e-5);
    });
  }
});

type FusedCase = Case & { depthwise: boolean; activation: OutputSlopeActivation };

const fusedCases: FusedCase[] = [
  { name: 'conv 3x3 stride 1 pad 1, leaky ReLU 0.1', x: [2, 6, 7, 3], k: [3, 3, 3, 4], strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1], depthwise: false, activation: { name: 'leakyrelu', alpha: 0.1 } },
  { name: 'conv 3x3 stride 2 valid, ReLU', x: [2, 9, 8, 3], k: [3, 3, 3, 5], strides: [2, 2], pads: [0, 0, 0, 0], dilations: [1, 1], depthwise: false, activation: { name: 'relu', alpha: 0 } },
  { name: 'conv 1x1, no activation', x: [3, 5, 4, 6], k: [1, 1, 6, 4], strides: [1, 1], pads: [0, 0, 0, 0], dilations: [1, 1], depthwise: false, activation: { name: 'linear', alpha: 0 } },
  { name: 'conv 3x3 dilation 2, leaky ReLU 0.2', x: [1, 9, 9, 2], k: [3, 3, 2, 3], strides: [1, 1], pads: [2, 2, 2, 2], dilations: [2, 2], depthwise: false, activation: { name: 'leakyrelu', alpha: 0.2 } },
  { name: 'depthwise 3x3 stride 2 same-pad, ReLU', x: [2, 8, 7, 4], k: [3, 3, 4, 1], strides: [2, 2], pads: [0, 1, 1, 1], dilations: [1, 1], depthwise: true, activation: { name: 'relu', alpha: 0 } },
  { name: 'depthwise 3x3 multiplier 2, leaky ReLU 0.1', x: [1, 6, 6, 3], k: [3, 3, 3, 2], strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1], depthwise: true, activation: { name: 'leakyrelu', alpha: 0.1 } },
];

/** Gradients of Σ r·f(x, w, b) w.r.t. x, w and b, with r a fixed random weighting of the output. */
function gradsWithBias(f: (x: tf.Tensor4D, w: tf.Tensor4D, b: tf.Tensor1D) => tf.Tensor, x: tf.Tensor4D, w: tf.Tensor4D, b: tf.Tensor1D) {
  return tf.tidy(() => {
    const y0 = f(x, w, b);
    const r = rand(y0.shape, 9);
    const g = tf.grads((a: tf.Tensor, c: tf.Tensor, d: tf.Tensor) => f(a as tf.Tensor4D, c as tf.Tensor4D, d as tf.Tensor1D).mul(r).sum())([x, w, b]);
    return { y: y0.arraySync(), dx: g[0]!.arraySync(), dw: g[1]!.arraySync(), db: g[2]!.arraySync() };
  });
}

describe('convolution, bias and activation as one fused kernel, trained', () => {
  for (const c of fusedCases) {
    it(`${c.name}: values and the gradients of x, filter and bias match the unfused ops' native gradients (forward-kernel gradients on wasm, backprop kernels on cpu)`, async () => {
      await tf.setBackend('cpu');
      const x = rand(c.x, 21) as tf.Tensor4D;
      const w = rand(c.k, 22) as tf.Tensor4D;
      const channels = c.depthwise ? c.k[2]! * c.k[3]! : c.k[3]!;
      const b = rand([channels], 23) as tf.Tensor1D;
      const padArg = [[0, 0], [c.pads[0], c.pads[1]], [c.pads[2], c.pads[3]], [0, 0]] as [[number, number], [number, number], [number, number], [number, number]];
      const activate = (z: tf.Tensor) => (c.activation.name === 'relu' ? tf.relu(z) : c.activation.name === 'leakyrelu' ? tf.leakyRelu(z, c.activation.alpha) : z);
      const ref = gradsWithBias((a, k, d) => {
        const kernel = dilateKernel(k, c.dilations);
        return activate(tf.add(c.depthwise ? tf.depthwiseConv2d(a, kernel, c.strides, padArg, 'NHWC', 1) : tf.conv2d(a, kernel, c.strides, padArg, 'NHWC', 1), d));
      }, x, w, b);
      const geometry = { strides: c.strides, pads: c.pads, dilations: c.dilations, depthwise: c.depthwise };
      if (c.dilations[0] === 1 && c.dilations[1] === 1) {
        // The same fused op with the backend's own backprop kernels (cpu here; WebGPU in the lab).
        const native = gradsWithBias((a, k, d) => convBiasActivationGrad(a, k, d, c.activation, geometry, 'native'), x, w, b);
        for (const key of ['y', 'dx', 'dw', 'db'] as const) expect(maxRelDiff(native[key], ref[key]), key).toBeLessThan(1e-5);
      }
      const [xv, wv, bv] = [x.arraySync(), w.arraySync(), b.arraySync()];
      tf.dispose([x, w, b]);

      await tf.setBackend('wasm');
      const [xw, ww, bw] = [tf.tensor(xv) as tf.Tensor4D, tf.tensor(wv) as tf.Tensor4D, tf.tensor(bv) as tf.Tensor1D];
      const before = tf.memory().numTensors;
      const fused = (a: tf.Tensor4D, k: tf.Tensor4D, d: tf.Tensor1D) => convBiasActivationGrad(a, k, d, c.activation, geometry);
      const mine = gradsWithBias(fused, xw, ww, bw);
      expect(tf.memory().numTensors).toBe(before);
      // The forward is one fused kernel (besides a view of its output and the custom ops' unnamed
      // scopes): no Add, no activation kernel.
      const forward = await tf.profile(() => fused(xw, ww, bw));
      tf.dispose(forward.result as tf.Tensor);
      expect(forward.kernels.map((k) => k.name).filter((n) => n !== 'Reshape' && n !== '')).toEqual([c.depthwise ? 'FusedDepthwiseConv2D' : 'FusedConv2D']);
      tf.dispose([xw, ww, bw]);
      expect(maxRelDiff(mine.y, ref.y)).toBeLessThan(1e-5);
      expect(maxRelDiff(mine.dx, ref.dx)).toBeLessThan(1e-5);
      expect(maxRelDiff(mine.dw, ref.dw)).toBeLessThan(1e-5);
      expect(maxRelDiff(mine.db, ref.db)).toBeLessThan(1e-5);
    });
  }
});

describe('gradients computed only where backprop needs them', () => {
  it('differentiating only the filter never computes the input gradient (and matches cpu)', async () => {
    await tf.setBackend('wasm');
    const x = rand([2, 6, 6, 3], 11) as tf.Tensor4D;
    const w = rand([3, 3, 3, 4], 12) as tf.Tensor4D;
    const r = rand([2, 6, 6, 4], 13);
    const seen: string[] = [];
    const profiled = await tf.profile(() => {
      const g = tf.grad((b: tf.Tensor) => conv2dForwardGrad(x, b as tf.Tensor4D, [1, 1], [1, 1, 1, 1], [1, 1]).mul(r).sum())(w);
      return g;
    });
    for (const k of profiled.kernels) seen.push(k.name);
    const dw = (profiled.result as tf.Tensor).arraySync();
    // The input gradient is a convolution of dy; the forward runs the only Conv2D.
    expect(seen.filter((n) => n === 'Conv2D')).toHaveLength(1);
    await tf.setBackend('cpu');
    const [xc, wc, rc] = [tf.tensor(x.arraySync()), tf.tensor(w.arraySync()), tf.tensor(r.arraySync())];
    const ref = tf.grad((b: tf.Tensor) => tf.conv2d(xc as tf.Tensor4D, b as tf.Tensor4D, 1, 'same').mul(rc).sum())(wc);
    expect(maxRelDiff(dw, ref.arraySync())).toBeLessThan(1e-5);
    tf.dispose([x, w, r, xc, wc, rc, ref, profiled.result as tf.Tensor]);
  });
});
