import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { afterAll, describe, expect, it } from 'vitest';
import { evaluateWithOps, ew, runElementwise, type ElementwiseProgram } from './elementwise-program';
import { elementwiseModule } from './wasm-elementwise';

/** Values that exercise rounding, signs, zeros and a NaN. */
function values(n: number, seed: number): Float32Array {
  const v = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    v[i] = ((s / 2147483648) * 2 - 1) * 3.7;
  }
  v[1] = 0;
  v[2] = -0;
  if (n > 9) v[9] = NaN;
  return v;
}

async function onBackend(backend: string, program: ElementwiseProgram, data: Float32Array[], params: number[]): Promise<Float32Array[]> {
  await tf.setBackend(backend);
  const inputs = data.map((d) => tf.tensor(d, [d.length]));
  const before = tf.memory().numTensors;
  const outs = runElementwise(program, inputs, params);
  expect(tf.memory().numTensors).toBe(before + program.outputs.length);
  const read = await Promise.all(outs.map(async (o) => (await o.data()) as Float32Array));
  tf.dispose([...inputs, ...outs]);
  return read;
}

// Bit patterns, every NaN as one (the sign of a NaN is not specified by either).
const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer.slice(0)), (b, i) => (Number.isNaN(a[i]) ? 'NaN' : b));

describe('elementwise programs', () => {
  afterAll(async () => {
    await tf.setBackend('cpu');
  });

  const { input, param, constant, ref, add, sub, mul, div, min, max, abs, neg, sqrt, select } = ew;
  const programs: [string, ElementwiseProgram][] = [
    ['every operation', {
      inputs: 2,
      params: 1,
      lets: [mul(input(0), param(0))],
      outputs: [
        add(ref(0), input(1)), sub(input(0), input(1)), div(input(0), input(1)), min(input(0), input(1)), max(input(0), input(1)),
        abs(input(0)), neg(input(1)), sqrt(abs(input(0))), select('gt', input(0), constant(0), input(1), mul(input(1), constant(0.1))),
        select('le', input(0), input(1), constant(1), constant(-2)),
      ],
    }],
    // Adam's update as the optimizer writes it: m, v, and the new weight.
    ['an Adam update', {
      inputs: 4,
      params: 7,
      lets: [add(mul(input(2), param(0)), mul(input(0), param(1))), add(mul(input(3), param(2)), mul(mul(input(0), input(0)), param(3)))],
      outputs: [ref(0), ref(1), sub(input(1), mul(div(div(ref(0), param(4)), add(sqrt(div(ref(1), param(5))), constant(1e-8))), param(6)))],
    }],
  ];

  for (const [title, program] of programs) {
    for (const n of [1, 3, 4, 13, 1030]) {
      it(`${title}: the fused wasm loop gives the cpu backend's operations bit for bit (${n} elements)`, async () => {
        const data = Array.from({ length: program.inputs }, (_, k) => {
          const v = values(n, 7 + k);
          return program.params === 7 && k === 3 ? v.map(Math.abs) : v; // Adam's second moment is not negative
        });
        const params = [0.9, 0.1, 0.999, 0.001, 0.19, 0.0029, 1e-3].slice(0, program.params);
        const cpu = await onBackend('cpu', program, data, params);
        const wasm = await onBackend('wasm', program, data, params);
        expect(wasm.map(bits)).toEqual(cpu.map(bits));
      });
    }
  }

  it('writes an output over one of its inputs: each element is read before it is written', async () => {
    await tf.setBackend('wasm');
    const x = tf.tensor1d([1, 2, 3, 4, 5, 6]);
    const program: ElementwiseProgram = { inputs: 1, params: 0, outputs: [mul(input(0), constant(2)), add(input(0), constant(1))] };
    const [a, b] = runElementwise(program, [x]);
    expect(Array.from(await a!.data())).toEqual([2, 4, 6, 8, 10, 12]);
    expect(Array.from(await b!.data())).toEqual([2, 3, 4, 5, 6, 7]);
    tf.dispose([x, a!, b!]);
  });

  it('validates for a shared and an unshared memory', () => {
    for (const [, program] of programs) {
      expect(WebAssembly.validate(elementwiseModule(program, false))).toBe(true);
      expect(WebAssembly.validate(elementwiseModule(program, true))).toBe(true);
    }
  });

  it('refuses inputs of other sizes or dtypes, and a wrong count of parameters', async () => {
    await tf.setBackend('cpu');
    const program: ElementwiseProgram = { inputs: 2, params: 1, outputs: [add(input(0), mul(input(1), param(0)))] };
    const [a, b, i] = [tf.zeros([3]), tf.zeros([4]), tf.zeros([3], 'int32')];
    expect(() => runElementwise(program, [a, b], [1])).toThrow(/differ in size: \[3\] \[4\]/);
    expect(() => runElementwise(program, [a, i], [1])).toThrow(/float32 tensors, not int32/);
    expect(() => evaluateWithOps(program, [a, a], [])).toThrow(/2 inputs and 1 parameters was given 2 and 0/);
    tf.dispose([a, b, i]);
  });
});
