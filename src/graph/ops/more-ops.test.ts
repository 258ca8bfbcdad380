import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { describe, expect, it } from 'vitest';
import type { TfNodeDef } from '../model-json';
import { OPS } from '.';

const b64 = (s: string) => btoa(s);

interface Case {
  name: string;
  node: TfNodeDef;
  /** Tensor inputs by position (host inputs are given in `host`). */
  tensors: Record<number, { values: number[]; shape: number[]; dtype?: 'float32' | 'int32' }>;
  host?: Record<number, number[]>;
  /** The inputs differentiated. */
  wrt: number[];
  /** The same op from tfjs on the cpu backend, for the forward values. */
  reference: (inputs: tf.Tensor[]) => tf.Tensor;
}

const seq = (n: number, scale = 0.37) => Array.from({ length: n }, (_, i) => Math.sin(1 + i * 1.7) * scale * 3);

const cases: Case[] = [
  {
    name: 'Conv2DBackpropInput (transposed conv, 3x3 stride 2 SAME, 3x3x3 → 5x5x2)',
    node: { name: 't', op: 'Conv2DBackpropInput', attr: { strides: { list: { i: [1, 2, 2, 1] } }, padding: { s: b64('SAME') } } },
    host: { 0: [1, 5, 5, 2] },
    tensors: { 1: { values: seq(54), shape: [3, 3, 2, 3] }, 2: { values: seq(27, 0.5), shape: [1, 3, 3, 3] } },
    wrt: [1, 2],
    reference: ([, f, dy]) => tf.conv2dTranspose(dy as tf.Tensor4D, f as tf.Tensor4D, [1, 5, 5, 2], 2, 'same'),
  },
  {
    name: 'Conv2DBackpropInput (2x2 stride 1 VALID, 3x4x2 → 4x5x3)',
    node: { name: 't', op: 'Conv2DBackpropInput', attr: { strides: { list: { i: [1, 1, 1, 1] } }, padding: { s: b64('VALID') } } },
    host: { 0: [1, 4, 5, 3] },
    tensors: { 1: { values: seq(24), shape: [2, 2, 3, 2] }, 2: { values: seq(24, 0.5), shape: [1, 3, 4, 2] } },
    wrt: [1, 2],
    reference: ([, f, dy]) => tf.conv2dTranspose(dy as tf.Tensor4D, f as tf.Tensor4D, [1, 4, 5, 3], 1, 'valid'),
  },
  {
    name: 'GatherNd (a repeated index: its gradient sums)',
    node: { name: 'g', op: 'GatherNd' },
    tensors: { 0: { values: seq(12), shape: [3, 4] }, 1: { values: [0, 1, 2, 3, 0, 1], shape: [3, 2], dtype: 'int32' } },
    wrt: [0],
    reference: ([x, i]) => tf.gatherND(x!, i!),
  },
  {
    name: 'DepthToSpace (block 2)',
    node: { name: 'd', op: 'DepthToSpace', attr: { block_size: { i: 2 } } },
    tensors: { 0: { values: seq(32), shape: [1, 2, 2, 8] } },
    wrt: [0],
    reference: ([x]) => tf.depthToSpace(x as tf.Tensor4D, 2),
  },
  {
    name: 'SpaceToBatchND (block 2x2, padded)',
    node: { name: 's', op: 'SpaceToBatchND' },
    host: { 1: [2, 2], 2: [0, 0, 1, 1] },
    tensors: { 0: { values: seq(8), shape: [1, 4, 2, 1] } },
    wrt: [0],
    reference: ([x]) => tf.spaceToBatchND(x!, [2, 2], [[0, 0], [1, 1]]),
  },
  {
    name: 'BatchToSpaceND (block 2x2, cropped)',
    node: { name: 'b', op: 'BatchToSpaceND' },
    host: { 1: [2, 2], 2: [0, 0, 1, 1] },
    tensors: { 0: { values: seq(16), shape: [4, 2, 2, 1] } },
    wrt: [0],
    reference: ([x]) => tf.batchToSpaceND(x!, [2, 2], [[0, 0], [1, 1]]),
  },
  {
    name: 'BroadcastTo ([3,1] → [2,3,4])',
    node: { name: 'r', op: 'BroadcastTo' },
    host: { 1: [2, 3, 4] },
    tensors: { 0: { values: seq(3), shape: [3, 1] } },
    wrt: [0],
    reference: ([x]) => tf.broadcastTo(x!, [2, 3, 4]),
  },
  { name: 'Sin', node: { name: 's', op: 'Sin' }, tensors: { 0: { values: seq(5), shape: [5] } }, wrt: [0], reference: ([x]) => tf.sin(x!) },
  { name: 'Cos', node: { name: 'c', op: 'Cos' }, tensors: { 0: { values: seq(5), shape: [5] } }, wrt: [0], reference: ([x]) => tf.cos(x!) },
  {
    name: 'Atan2',
    node: { name: 'a', op: 'Atan2' },
    tensors: { 0: { values: seq(5), shape: [5] }, 1: { values: [0.5, -0.7, 1.2, -1.5, 0.9], shape: [5] } },
    wrt: [0, 1],
    reference: ([y, x]) => tf.atan2(y!, x!),
  },
];

/** Runs the op's kernel with `over` replacing input `k` (for finite differences). */
function runKernel(c: Case, over?: { k: number; values: number[] }): tf.Tensor {
  const count = Math.max(...Object.keys({ ...c.tensors, ...c.host }).map(Number)) + 1;
  const inputs = Array.from({ length: count }, (_, i) => {
    const t = c.tensors[i];
    if (t) return tf.tensor(over?.k === i ? over.values : t.values, t.shape, t.dtype ?? 'float32');
    return tf.tensor(c.host![i]!, [c.host![i]!.length], 'int32');
  });
  const out = OPS[c.node.op]!.kernel(inputs, { node: c.node, values: (i) => c.host?.[i] ?? Array.from(inputs[i]!.dataSync()) });
  return Array.isArray(out) ? out[0]! : out;
}

/** Gradients of Σ r ⊙ op(inputs) w.r.t. the `wrt` inputs, r a fixed weighting. */
function analytic(c: Case, r: number[]): number[][] {
  return tf.tidy(() => {
    const xs = c.wrt.map((k) => tf.tensor(c.tensors[k]!.values, c.tensors[k]!.shape));
    const f = (...vs: tf.Tensor[]) => {
      const count = Math.max(...Object.keys({ ...c.tensors, ...c.host }).map(Number)) + 1;
      const inputs = Array.from({ length: count }, (_, i) => {
        const w = c.wrt.indexOf(i);
        if (w >= 0) return vs[w]!;
        const t = c.tensors[i];
        return t ? tf.tensor(t.values, t.shape, t.dtype ?? 'float32') : tf.tensor(c.host![i]!, [c.host![i]!.length], 'int32');
      });
      const out = OPS[c.node.op]!.kernel(inputs, { node: c.node, values: (i) => c.host?.[i] ?? [] });
      return (Array.isArray(out) ? out[0]! : out).mul(tf.tensor(r, (Array.isArray(out) ? out[0]! : out).shape)).sum();
    };
    return tf.grads(f)(xs).map((g) => Array.from(g.dataSync()));
  });
}

describe('ops added for more graph models: forward against tfjs on cpu, gradient against finite differences on cpu', () => {
  for (const c of cases) {
    it(c.name, async () => {
      await tf.setBackend('cpu');
      const reference = tf.tidy(() => {
        const count = Math.max(...Object.keys({ ...c.tensors, ...c.host }).map(Number)) + 1;
        const inputs = Array.from({ length: count }, (_, i) => {
          const t = c.tensors[i];
          return t ? tf.tensor(t.values, t.shape, t.dtype ?? 'float32') : tf.tensor(c.host![i]!, [c.host![i]!.length], 'int32');
        });
        const y = c.reference(inputs);
        return { shape: y.shape, values: Array.from(y.dataSync()) };
      });
      const r = seq(reference.values.length, 1).map((v, i) => v + 0.1 * i);
      const loss = (over: { k: number; values: number[] }) => tf.tidy(() => runKernel(c, over).mul(tf.tensor(r, reference.shape)).sum().dataSync()[0]!);
      const h = 1e-2;
      const numeric = c.wrt.map((k) =>
        c.tensors[k]!.values.map((_, e) => {
          const at = (s: number) => loss({ k, values: c.tensors[k]!.values.map((v, j) => (j === e ? v + s * h : v)) });
          return (at(1) - at(-1)) / (2 * h);
        }),
      );
      for (const backend of ['cpu', 'wasm']) {
        await tf.setBackend(backend);
        const y = tf.tidy(() => {
          const t = runKernel(c);
          return { shape: t.shape, values: Array.from(t.dataSync()) };
        });
        expect(y.shape, backend).toEqual(reference.shape);
        y.values.forEach((v, i) => expect(Math.abs(v - reference.values[i]!), `${backend} value ${i}`).toBeLessThan(1e-5));
        const g = analytic(c, r);
        g.forEach((gk, w) => gk.forEach((v, e) => expect(Math.abs(v - numeric[w]![e]!), `${backend} d/input${c.wrt[w]}[${e}]`).toBeLessThan(2e-3 * (1 + Math.abs(v)))));
      }
    });
  }

  it('Size: the element count, an int32 scalar with no gradient path', async () => {
    await tf.setBackend('wasm');
    const x = tf.zeros([2, 3, 4]);
    const y = OPS['Size']!.kernel([x], { node: { name: 'n', op: 'Size' }, values: () => [] }) as tf.Tensor;
    expect([y.dtype, y.rank, y.dataSync()[0]]).toEqual(['int32', 0, 24]);
    expect(OPS['Size']!.hostInputs).toEqual([0]);
    tf.dispose([x, y]);
  });
});
