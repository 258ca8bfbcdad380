import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { beforeAll, describe, expect, it } from 'vitest';
import { stridedSlice, type StridedSliceSpec } from './strided-slice';

const spec = (s: Partial<StridedSliceSpec> & Pick<StridedSliceSpec, 'begin' | 'end' | 'strides'>): StridedSliceSpec => ({
  beginMask: 0,
  endMask: 0,
  ellipsisMask: 0,
  newAxisMask: 0,
  shrinkAxisMask: 0,
  ...s,
});

// Each case with NumPy's result on x = 0, 1, 2, … of that shape.
const cases: [string, number[], StridedSliceSpec, unknown][] = [
  ['x[1:4:2, 0:5:2]', [4, 5], spec({ begin: [1, 0], end: [4, 5], strides: [2, 2] }), [[5, 7, 9], [15, 17, 19]]],
  [
    'x[:, ::-2, 1:] (negative stride, begin and end masks)',
    [3, 5, 4],
    spec({ begin: [0, 0, 1], end: [0, 0, 0], strides: [1, -2, 1], beginMask: 3, endMask: 7 }),
    [
      [[17, 18, 19], [9, 10, 11], [1, 2, 3]],
      [[37, 38, 39], [29, 30, 31], [21, 22, 23]],
      [[57, 58, 59], [49, 50, 51], [41, 42, 43]],
    ],
  ],
  ['x[2, 4:0:-3] (shrink, negative stride)', [3, 6], spec({ begin: [2, 4], end: [3, 0], strides: [1, -3], shrinkAxisMask: 1 }), [16, 13]],
  ['x[1, 0:6:2] (shrink next to a stride 2: tfjs 4.22 gets this wrong)', [3, 6], spec({ begin: [1, 0], end: [2, 6], strides: [1, 2], shrinkAxisMask: 1 }), [6, 8, 10]],
  ['x[..., 1:3] (ellipsis)', [2, 3, 4], spec({ begin: [0, 1], end: [0, 3], strides: [1, 1], ellipsisMask: 1 }), [[[1, 2], [5, 6], [9, 10]], [[13, 14], [17, 18], [21, 22]]]],
  [
    'x[1, newaxis, :, ::2] (new axis and shrink)',
    [3, 2, 5],
    spec({ begin: [1, 0, 0, 0], end: [2, 0, 0, 5], strides: [1, 1, 1, 2], newAxisMask: 2, shrinkAxisMask: 1, endMask: 4 }),
    [[[10, 12, 14], [15, 17, 19]]],
  ],
  ['x[-10:10, -1] (out-of-range begin and end are clamped)', [4, 3], spec({ begin: [-10, -1], end: [10, 0], strides: [1, 1], shrinkAxisMask: 2 }), [2, 5, 8, 11]],
  ['x[3:1] (empty)', [4, 2], spec({ begin: [3], end: [1], strides: [1] }), []],
];

/** L(x) = Σ r ⊙ stridedSlice(x), with r a fixed weighting of the slice. */
function lossOf(s: StridedSliceSpec, r: tf.Tensor) {
  return (x: tf.Tensor) => stridedSlice(x, s).mul(r).sum();
}

const r = (rs: { values: Float32Array; shape: number[] }) => tf.tensor(rs.values, rs.shape);

async function analytic(backend: string, shape: number[], s: StridedSliceSpec, xs: Float32Array, rs: { values: Float32Array; shape: number[] }) {
  await tf.setBackend(backend);
  return tf.tidy(() => Array.from(tf.grad(lossOf(s, r(rs)))(tf.tensor(xs, shape)).dataSync()));
}
describe('StridedSlice gradient', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });

  it('scatters dy into zeros at the positions read (x[1:4:2, 0:5:2] of a 4x5)', async () => {
    await tf.setBackend('cpu');
    const x = tf.zeros([4, 5]);
    const dy = tf.tensor2d([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    const g = tf.grad((a: tf.Tensor) => stridedSlice(a, cases[0]![2]).mul(dy).sum())(x);
    expect(g.arraySync()).toEqual([
      [0, 0, 0, 0, 0],
      [1, 0, 2, 0, 3],
      [0, 0, 0, 0, 0],
      [4, 0, 5, 0, 6],
    ]);
    tf.dispose([x, dy, g]);
  });

  for (const [name, shape, s, expected] of cases) {
    it(`${name}: NumPy's values, on cpu and wasm`, async () => {
      for (const backend of ['cpu', 'wasm']) {
        await tf.setBackend(backend);
        const y = tf.tidy(() => stridedSlice(tf.range(0, shape.reduce((a, b) => a * b, 1)).reshape(shape), s).arraySync());
        expect(y, backend).toEqual(expected);
      }
    });

    it(`${name}: gradient equals the cpu backend's central finite differences, on cpu and wasm`, async () => {
      await tf.setBackend('cpu');
      const x = tf.randomNormal(shape, 0, 1, 'float32', 1);
      const y = stridedSlice(x, s);
      const rs = { values: tf.randomNormal(y.shape, 0, 1, 'float32', 2).dataSync() as Float32Array, shape: y.shape };
      const loss = lossOf(s, r(rs));
      const xs = x.dataSync() as Float32Array;
      // The loss is linear in x, so a large step is exact up to float32 rounding.
      const h = 0.5;
      const numeric = Array.from(xs, (_, i) => {
        const at = (sign: number) => {
          const v = Float32Array.from(xs);
          v[i]! += sign * h;
          return tf.tidy(() => loss(tf.tensor(v, shape)).dataSync()[0]!);
        };
        return (at(1) - at(-1)) / (2 * h);
      });
      tf.dispose([x, y]);
      for (const backend of ['cpu', 'wasm']) {
        const g = await analytic(backend, shape, s, xs, rs);
        expect(g.length).toBe(numeric.length);
        g.forEach((v, i) => expect(Math.abs(v - numeric[i]!), `${backend} element ${i}`).toBeLessThan(1e-5));
      }
      // Each position is read at most once, so exactly as many entries as the slice has are non-zero.
      expect(numeric.filter((v) => Math.abs(v) > 1e-6).length).toBe(rs.values.length);
    });
  }
});
