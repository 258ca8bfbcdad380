import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { beforeAll, describe, expect, it } from 'vitest';
import { clipByNorm, gradientVector, Optimizer } from './optimizer';

describe('Optimizer', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });

  it('SGD with momentum follows PyTorch: buf = m·buf + g + wd·w; w −= lr·buf', () => {
    const w = tf.variable(tf.tensor2d([[1, -2]]), true, 'opt_test_w');
    const opt = new Optimizer('sgd', { momentum: 0.5, weightDecay: 0.1 });
    const g = { opt_test_w: tf.tensor2d([[0.2, 0.4]]) };
    opt.apply([w], g, 0.1);
    // step 1: d = g + 0.1·w = [0.3, 0.2]; buf = d; w = [1 − 0.03, −2 − 0.02] = [0.97, −2.02]
    expect(Array.from(w.dataSync())).toEqual([0.97, -2.02].map(Math.fround));
    opt.apply([w], g, 0.1);
    // step 2: d = [0.2 + 0.097, 0.4 − 0.202] = [0.297, 0.198]; buf = 0.5·[0.3, 0.2] + d = [0.447, 0.298]
    // w = [0.97 − 0.0447, −2.02 − 0.0298] = [0.9253, −2.0498]
    const got = w.dataSync();
    expect(got[0]).toBeCloseTo(0.9253, 6);
    expect(got[1]).toBeCloseTo(-2.0498, 6);
    tf.dispose([w, g.opt_test_w]);
    opt.dispose();
  });

  it('Adam takes a first step of lr·sign(g) and saves and restores its state', async () => {
    const w = tf.variable(tf.tensor1d([1, 1]), true, 'opt_test_a');
    const opt = new Optimizer('adam');
    const g = { opt_test_a: tf.tensor1d([3, -0.5]) };
    const before = tf.memory().numTensors;
    opt.apply([w], g, 0.01);
    // m̂ = g, v̂ = g², so the update is g/|g| (up to ε): w = 1 ∓ 0.01
    const first = w.dataSync();
    expect(first[0]).toBeCloseTo(0.99, 6);
    expect(first[1]).toBeCloseTo(1.01, 6);
    expect(tf.memory().numTensors).toBe(before + 2); // the two slots, created once
    const state = await opt.state();
    expect(state.steps).toBe(1);
    const saved = w.dataSync().slice();
    opt.apply([w], g, 0.01);
    const expected = Array.from(w.dataSync());
    // A new run: the same variable name, restored values and optimizer state, the same step.
    w.dispose();
    const w2 = tf.variable(tf.tensor1d(saved), true, 'opt_test_a');
    const copy = new Optimizer('adam');
    copy.load(state);
    copy.apply([w2], g, 0.01);
    expect(Array.from(w2.dataSync())).toEqual(expected);
    tf.dispose([w2, g.opt_test_a]);
    opt.dispose();
    copy.dispose();
  });

  it('keeps a running average of the weights, swaps it in and out, and saves it with its state', async () => {
    const w = tf.variable(tf.tensor1d([1]), true, 'opt_test_avg');
    const opt = new Optimizer('sgd', { momentum: 0, averageDecay: 0.5 });
    expect(opt.averaging).toBe(true);
    expect(opt.swapAverages([w])).toBe(0); // nothing averaged before the first step
    const g = { opt_test_avg: tf.tensor1d([1]) };
    opt.apply([w], g, 0.1); // w = 0.9; decay min(0.5, 2/11): avg = 2/11·1 + 9/11·0.9
    opt.apply([w], g, 0.1); // w = 0.8; decay min(0.5, 3/12): avg = 0.25·avg + 0.75·0.8
    const avg = 0.25 * ((2 / 11) * 1 + (9 / 11) * 0.9) + 0.75 * 0.8;
    expect(w.dataSync()[0]).toBeCloseTo(0.8, 6);
    const saved = await opt.state();
    expect(opt.swapAverages([w])).toBe(1);
    expect(w.dataSync()[0]).toBeCloseTo(avg, 6);
    opt.swapAverages([w]);
    expect(w.dataSync()[0]).toBeCloseTo(0.8, 6);
    // A restored optimizer (a checkpoint) carries the average on.
    const restored = new Optimizer('sgd', { momentum: 0, averageDecay: 0.5 });
    restored.load(saved);
    restored.swapAverages([w]);
    expect(w.dataSync()[0]).toBeCloseTo(avg, 6);
    restored.swapAverages([w]);
    expect(() => new Optimizer('adam', { averageDecay: 1 })).toThrow(/must lie in \[0, 1\)/);
    const count = tf.memory().numTensors;
    opt.apply([w], g, 0.1);
    expect(tf.memory().numTensors).toBe(count);
    tf.dispose([w, g.opt_test_avg]);
    opt.dispose();
    restored.dispose();
  });

  it('updates variables packed together exactly as one at a time, while the set with gradients changes, and across a checkpoint', async () => {
    for (const kind of ['adam', 'sgd'] as const) {
      const options = { weightDecay: 0.05, averageDecay: 0.9 };
      const shapes = [[2, 3], [3], [1, 1, 2, 2]];
      const values = (k: number, seed: number) => tf.tensor(Array.from({ length: shapes[k]!.reduce((x, y) => x * y) }, (_, i) => Math.sin(seed * 7 + k * 3 + i)), shapes[k]);
      // Together: one optimizer for the three; alone: one optimizer per variable (its own packing of one).
      const together = shapes.map((_, k) => tf.variable(values(k, 0), true, `opt_pack_${kind}_${k}`));
      const alone = shapes.map((_, k) => tf.variable(values(k, 0), true, `opt_pack_${kind}_${k}_alone`));
      let packed = new Optimizer(kind, options);
      const single = shapes.map(() => new Optimizer(kind, options));
      // Which variables have a gradient at each step: all, then the last two, then a new order.
      const plan = [[0, 1, 2], [0, 1, 2], [1, 2], [2, 0, 1], [0, 1, 2]];
      for (let step = 0; step < plan.length; step++) {
        const grads: tf.NamedTensorMap = {};
        const aloneGrads = shapes.map((_, k) => values(k, step + 1));
        for (const k of plan[step]!) grads[together[k]!.name] = values(k, step + 1);
        packed.apply(plan[step]!.map((k) => together[k]!), grads, 0.01);
        single.forEach((o, k) => o.apply(plan[step]!.includes(k) ? [alone[k]!] : [], { [alone[k]!.name]: aloneGrads[k]! }, 0.01));
        tf.dispose([...Object.values(grads), ...aloneGrads]);
        if (step === 1) {
          // A checkpoint: a new optimizer restored from the packed one's state carries on.
          const state = await packed.state();
          packed.dispose();
          packed = new Optimizer(kind, options);
          packed.load(state);
        }
      }
      together.forEach((v, k) => expect(Array.from(v.dataSync())).toEqual(Array.from(alone[k]!.dataSync())));
      expect(packed.swapAverages(together)).toBe(3);
      single.forEach((o, k) => expect(o.swapAverages([alone[k]!])).toBe(1));
      together.forEach((v, k) => expect(Array.from(v.dataSync())).toEqual(Array.from(alone[k]!.dataSync())));
      // The same set again: the packing is kept and no tensor is left behind.
      const grads = Object.fromEntries(together.map((v, k) => [v.name, values(k, 9)]));
      packed.apply(together, grads, 0.01);
      const before = tf.memory().numTensors;
      packed.apply(together, grads, 0.01);
      expect(tf.memory().numTensors).toBe(before);
      tf.dispose([...together, ...alone, ...Object.values(grads)]);
      packed.dispose();
      single.forEach((o) => o.dispose());
    }
  });

  it('on wasm updates in one fused loop, to the bit as the cpu backend runs the same operations', async () => {
    /** Weights, averages and slots after four updates of two variables (1,030 values: not a multiple of 4) on `backend`. */
    const run = async (backend: string, kind: 'adam' | 'sgd') => {
      await tf.setBackend(backend);
      const shapes = [[10, 100], [30]];
      const series = (k: number, seed: number) => tf.tensor(Array.from({ length: shapes[k]!.reduce((x, y) => x * y) }, (_, i) => Math.sin(seed * 7 + k * 3 + i) * (i % 7)), shapes[k]);
      const vars = shapes.map((_, k) => tf.variable(series(k, 0), true, `opt_fused_${kind}_${backend}_${k}`));
      const opt = new Optimizer(kind, { weightDecay: 0.05, averageDecay: 0.9 });
      let names: string[] = [];
      for (let step = 1; step <= 4; step++) {
        const grads = Object.fromEntries(vars.map((v, k) => [v.name, series(k, step)]));
        const info = await tf.profile(() => opt.apply(vars, grads, 0.01));
        names = info.kernelNames;
        tf.dispose(Object.values(grads));
      }
      const weights = vars.map((v) => Array.from(v.dataSync()));
      const state = await opt.state();
      opt.swapAverages(vars);
      const averages = vars.map((v) => Array.from(v.dataSync()));
      tf.dispose(vars);
      opt.dispose();
      return { weights, averages, slots: Object.values(state.slots).map((list) => list.map((x) => Array.from(x.values))), names };
    };
    for (const kind of ['adam', 'sgd'] as const) {
      const cpu = await run('cpu', kind);
      const wasm = await run('wasm', kind);
      expect(wasm.weights).toEqual(cpu.weights);
      expect(wasm.averages).toEqual(cpu.averages);
      expect(wasm.slots).toEqual(cpu.slots);
      // The whole update in one kernel, with the joins and splits around it.
      expect(wasm.names.filter((n) => n === 'LabElementwise')).toHaveLength(1);
      expect(wasm.names.filter((n) => !['LabElementwise', 'Concat', 'SplitV', 'Reshape', 'Identity'].includes(n))).toEqual([]);
    }
    await tf.setBackend('cpu');
  });

  it('clips the joined gradients to a global norm', () => {
    const a = tf.variable(tf.tensor1d([0, 0]), true, 'opt_clip_a');
    const b = tf.variable(tf.tensor2d([[0], [0]]), true, 'opt_clip_b');
    const grads = { opt_clip_a: tf.tensor1d([3, 0]), opt_clip_b: tf.tensor2d([[0], [4]]) }; // norm 5
    const joined = gradientVector([b, a], grads);
    expect(joined.variables).toEqual([b, a]);
    const { vector, norm } = clipByNorm(joined.vector, 1);
    expect(norm.dataSync()[0]).toBeCloseTo(5, 6);
    expect(Array.from(vector.dataSync())).toEqual([0, 0.8, 0.6, 0].map((x) => expect.closeTo(x, 5)));
    tf.dispose([a, b, ...Object.values(grads), joined.vector, vector, norm]);
  });
});
