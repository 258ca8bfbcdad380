import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { conv1x1Connector } from './connectors';
import { fgd, fgdAttention, fgdMasks, type FgdLevelConnectors, type FgdParams } from './fgd';
import { joinableLevels } from './fgd-joined';
import { createGcBlock } from './gc-block';
import { closeArrays, expectSameLossTermsAndGradients, maxAbs } from './test-support';
import { disposeResult } from './types';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('fgdMasks', () => {
  it('paints 1/(h·w) with floor/ceil inclusive corners, the smaller box winning, bg normalised', () => {
    // inputSize 16 on a 4x4 grid: one cell per 4 px.
    // A [0,0,8,8] -> cols/rows floor(0)=0 .. ceil(2)=2: 3x3 cells, 1/9.
    // B [5,5,7,7] -> floor(1.25)=1 .. ceil(1.75)=2: 2x2 cells, 1/4 (wins over 1/9).
    const { fg, bg } = fgdMasks(
      [
        [0, 0, 8, 8],
        [5, 5, 7, 7],
      ],
      16,
      4,
      4,
    );
    const n = 1 / 9;
    const q = 1 / 4;
    expect(closeArrays(fg, [n, n, n, 0, n, q, q, 0, n, q, q, 0, 0, 0, 0, 0])).toBeNull();
    // 7 background cells, 1/7 each.
    const s = 1 / 7;
    expect(closeArrays(bg, [0, 0, 0, s, 0, 0, 0, s, 0, 0, 0, s, s, s, s, s])).toBeNull();
  });
  it('counts unclipped cells in the area but paints inside the grid only', () => {
    // [12,0,16,4] -> cols 3..ceil(4)=4, rows 0..1: area 1/(2·2) = 1/4, painted at col 3, rows 0 and 1.
    const { fg } = fgdMasks([[12, 0, 16, 4]], 16, 4, 4);
    expect(closeArrays(fg, [0, 0, 0, 0.25, 0, 0, 0, 0.25, 0, 0, 0, 0, 0, 0, 0, 0])).toBeNull();
  });
  it('rejects an empty box', () => {
    expect(() => fgdMasks([[4, 4, 4, 8]], 16, 4, 4)).toThrow(/is empty/);
  });
  it('puts an edge lying exactly on a cell boundary on that cell (x · W / inputSize, multiplied first)', () => {
    // [120, 8, 216, 40] at 416 on the 52x52 stride-8 level: 120·52/416 = 15, 8·52/416 = 1,
    // 216·52/416 = 27, 40·52/416 = 5 exactly → columns 15..27, rows 1..5: 13·5 = 65 cells of 1/65.
    // Dividing first gives 14.999999999999998 and 27.000000000000004: columns 14..28, 1/75.
    const { fg, bg } = fgdMasks([[120, 8, 216, 40]], 416, 52, 52);
    const painted = [...fg.keys()].filter((i) => fg[i]! > 0);
    expect(painted).toHaveLength(65);
    expect(painted.map((i) => [Math.floor(i / 52), i % 52])).toEqual(Array.from({ length: 65 }, (_, k) => [1 + Math.floor(k / 13), 15 + (k % 13)]));
    expect(fg[52 + 15]).toBeCloseTo(1 / 65, 9);
    expect(bg[0]).toBeCloseTo(1 / (52 * 52 - 65), 9);
  });
});

describe('fgdAttention', () => {
  it('is H·W·softmax(mean_c|F|/temp) and C·softmax(mean_HW|F|/temp)', () => {
    // F [1,1,2,2]: location 0 = [1, −1], location 1 = [3, 5].
    // spatial: mean_c |F| = 1, 4 -> /0.5 = 2, 8 -> 2·softmax = 2·[1, e^6]/(1 + e^6).
    // channel: mean_HW |F| = 2, 3 -> /0.5 = 4, 6 -> 2·[1, e^2]/(1 + e^2).
    const f = tf.tensor4d([1, -1, 3, 5], [1, 1, 2, 2]);
    const { spatial, channel } = fgdAttention(f, 0.5);
    const e6 = Math.exp(6);
    const e2 = Math.exp(2);
    expect(spatial.shape).toEqual([1, 1, 2, 1]);
    expect(channel.shape).toEqual([1, 1, 1, 2]);
    expect(closeArrays(spatial.dataSync(), [2 / (1 + e6), (2 * e6) / (1 + e6)])).toBeNull();
    expect(closeArrays(channel.dataSync(), [2 / (1 + e2), (2 * e2) / (1 + e2)])).toBeNull();
    tf.dispose([f, spatial, channel]);
  });
});

function gcPair(channels: number, seed = 0): FgdLevelConnectors {
  return {
    gcS: createGcBlock({ name: 'test_gc_s', channels, seed }),
    gcT: createGcBlock({ name: 'test_gc_t', channels, seed: seed + 50 }),
  };
}
const disposeConnectors = (c: FgdLevelConnectors) => [c.align, c.gcS, c.gcT].forEach((x) => x?.dispose());

describe('fgd', () => {
  // 4x4 grid, input 16, one box [0,0,4,4] -> cells rows/cols 0..1, M_fg = 1/4 there; 12 bg cells, 1/12.
  const boxes: [number, number, number, number][][] = [[[0, 0, 4, 4]]];
  // Teacher: 1 everywhere (2 channels) -> both attentions are 1 everywhere.
  // Student: the teacher but [3,3] at cell (0,0) (inside the box) and [0,0] at cell (3,3) (bg).
  const studentValues = () => {
    const v = new Array<number>(32).fill(1);
    v[0] = 3;
    v[1] = 3;
    v[30] = 0;
    v[31] = 0;
    return v;
  };

  it('matches the hand-computed focal, attention and global terms', () => {
    const t = tf.ones([1, 4, 4, 2]) as tf.Tensor4D;
    const s = tf.tensor4d(studentValues(), [1, 4, 4, 2]);
    const conn = gcPair(2);
    const before = tf.memory().numTensors;
    const r = fgd({ featT: [t], featS: [s], gtBoxes: boxes, inputSize: 16, connectors: [conn] }, {}, { withMaps: true });
    // diff² summed over channels: (3−1)²·2 = 8 at (0,0); (0−1)²·2 = 2 at (3,3).
    // L_fg = 1/4 · 8 = 2; L_bg = 1/12 · 2 = 1/6 (teacher attention is all ones, N = 1).
    // Student spatial logits mean_c|F_S|/0.5: 6 at (0,0), 0 at (3,3), 2 at the other 14 cells;
    // channel means are equal (17/16 each), so only the spatial attention differs from 1.
    const z = Math.exp(6) + 1 + 14 * Math.exp(2);
    const at = Math.abs((16 * Math.exp(6)) / z - 1) + Math.abs(16 / z - 1) + 14 * Math.abs((16 * Math.exp(2)) / z - 1);
    // Fresh GcBlocks have W2 = 0 (identity), so L_gl = Sum (F_S − F_T)² = 8 + 2 = 10.
    const terms = Object.fromEntries(Object.entries(r.terms).map(([k, v]) => [k, v.dataSync()[0]]));
    expect(terms['fg']).toBeCloseTo(2, 5);
    expect(terms['bg']).toBeCloseTo(1 / 6, 6);
    expect(terms['attention']).toBeCloseTo(at, 4);
    expect(terms['global']).toBeCloseTo(10, 5);
    expect(r.loss.dataSync()[0]).toBeCloseTo(1e-3 * 2 + 5e-4 / 6 + 5e-4 * at + 5e-6 * 10, 7);
    const names = r.maps?.map((m) => `${m.kind}:${m.name}`);
    expect(names).toEqual([
      'heatmap:fg_mask',
      'heatmap:bg_mask',
      'heatmap:spatial_attention_T',
      'heatmap:spatial_attention_S',
      'bars:channel_attention_T',
      'bars:channel_attention_S',
    ]);
    const fgMap = r.maps?.[0];
    expect(fgMap?.shape).toEqual([1, 4, 4]);
    expect(fgMap?.data[0]).toBeCloseTo(0.25, 7);
    expect(fgMap?.data[5]).toBeCloseTo(0.25, 7);
    expect(fgMap?.data[15]).toBe(0);
    expect(r.maps?.[4]?.shape).toEqual([1, 2]);
    expect(closeArrays(r.maps?.[4]?.data ?? [], [1, 1])).toBeNull();
    disposeResult(r);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([t, s]);
    disposeConnectors(conn);
  });

  it('divides by the batch size N (sum, not mean)', () => {
    // The same image twice: every term equals the one-image value.
    const t = tf.ones([2, 4, 4, 2]) as tf.Tensor4D;
    const s = tf.tensor4d([...studentValues(), ...studentValues()], [2, 4, 4, 2]);
    const conn = gcPair(2);
    const r = fgd({ featT: [t], featS: [s], gtBoxes: [boxes[0] ?? [], boxes[0] ?? []], inputSize: 16, connectors: [conn] });
    expect(r.terms['fg']?.dataSync()[0]).toBeCloseTo(2, 5);
    expect(r.terms['global']?.dataSync()[0]).toBeCloseTo(10, 5);
    disposeResult(r);
    tf.dispose([t, s]);
    disposeConnectors(conn);
  });

  it('is zero when the student equals the teacher (and sums over levels otherwise)', () => {
    const t0 = tf.randomNormal([1, 4, 4, 3], 0, 1, 'float32', 4) as tf.Tensor4D;
    const t1 = tf.randomNormal([1, 2, 2, 3], 0, 1, 'float32', 5) as tf.Tensor4D;
    const conns = [gcPair(3, 1), gcPair(3, 2)];
    const r = fgd({ featT: [t0, t1], featS: [t0, t1], gtBoxes: boxes, inputSize: 16, connectors: conns });
    expect(r.loss.dataSync()[0]).toBeCloseTo(0, 9);
    disposeResult(r);
    tf.dispose([t0, t1]);
    conns.forEach(disposeConnectors);
  });

  it('trains student, align and both GcBlocks; the teacher gets no gradient; no leak in a step', () => {
    // 4 teacher channels: with 2 the GcBlock's LayerNorm would normalise a single value to 0.
    const teacher = tf.variable(tf.randomNormal([1, 4, 4, 4], 0, 1, 'float32', 7), true, 'fgd_test_teacher');
    const student = tf.variable(tf.randomNormal([1, 4, 4, 3], 0, 1, 'float32', 8), true, 'fgd_test_student');
    const conn: FgdLevelConnectors = { ...gcPair(4, 3), align: conv1x1Connector(3, 4, { init: 'uniform', seed: 1 }) };
    const before = tf.memory().numTensors;
    const { value, grads } = tf.variableGrads(
      () =>
        fgd({
          featT: [teacher as tf.Tensor4D],
          featS: [student as tf.Tensor4D],
          gtBoxes: boxes,
          inputSize: 16,
          connectors: [conn],
        }).loss,
    );
    expect(value.dataSync()[0]).toBeGreaterThan(0);
    const gradOf = (v: tf.Variable) => grads[v.name];
    expect(maxAbs(gradOf(student) as tf.Tensor)).toBeGreaterThan(0);
    for (const v of conn.align?.variables ?? []) expect(maxAbs(gradOf(v) as tf.Tensor)).toBeGreaterThan(0);
    // With W2 = 0 at the start only W2 and its bias of each GcBlock receive gradient (the others
    // sit behind W2); the teacher's GcBlock trains too.
    for (const gc of [conn.gcS, conn.gcT]) {
      const w2 = gc?.variables[6] as tf.Variable;
      expect(w2.name).toContain('w2');
      expect(maxAbs(gradOf(w2) as tf.Tensor)).toBeGreaterThan(0);
    }
    const gTeacher = gradOf(teacher);
    if (gTeacher) expect(maxAbs(gTeacher)).toBe(0);
    tf.dispose([value, ...Object.values(grads)]);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([teacher, student]);
    disposeConnectors(conn);
  });

  it('skips the GcBlocks when lambda is 0 and explains what is missing otherwise', () => {
    const t = tf.ones([1, 4, 4, 2]) as tf.Tensor4D;
    const r = fgd({ featT: [t], featS: [t], gtBoxes: boxes, inputSize: 16, connectors: [{}] }, { lambda: 0 });
    expect(r.terms['global']?.dataSync()[0]).toBe(0);
    disposeResult(r);
    expect(() => fgd({ featT: [t], featS: [t], gtBoxes: boxes, inputSize: 16, connectors: [{}] })).toThrow(/no GcBlocks/);
    expect(() => fgd({ featT: [t], featS: [t], gtBoxes: [], inputSize: 16, connectors: [{}] })).toThrow(/one list per image/);
    t.dispose();
  });
});

describe('fgd over every level at once (the training path)', () => {
  // Three levels of an input of 32: 8x8, 4x4 and 2x2, two images, 6 teacher channels; the
  // student has 4 channels on level 1 (aligned by a 1x1 conv) and 6 elsewhere.
  const sides = [8, 4, 2];
  const boxes: [number, number, number, number][][] = [
    [[2, 3, 20, 22]],
    [
      [12, 10, 31, 30],
      [0, 0, 5, 6],
    ],
  ];
  function setup(teacherScale: number[] = [1, 1, 1]) {
    const teacher = sides.map((s, l) => tf.randomNormal([2, s, s, 6], 0, teacherScale[l], 'float32', 20 + l) as tf.Tensor4D);
    const student = sides.map((s, l) => tf.variable(tf.randomNormal([2, s, s, l === 1 ? 4 : 6], 0, 1, 'float32', 30 + l), true, `fgd_joined_s${l}`));
    const connectors = sides.map((_, l): FgdLevelConnectors => ({
      ...gcPair(6, 40 + l),
      align: l === 1 ? conv1x1Connector(4, 6, { init: 'uniform', seed: 2 }) : null,
    }));
    // W2 away from zero, so every GcBlock weight reaches the loss.
    for (const c of connectors) for (const gc of [c.gcS, c.gcT]) gc?.variables[6]?.assign(tf.randomNormal([3, 6], 0, 0.5, 'float32', 5));
    const watched = [...student, ...connectors.flatMap((c) => [c.align, c.gcS, c.gcT].flatMap((x) => x?.variables ?? []))];
    const run = (path: 'joined' | 'fused' | 'levels', params: Partial<FgdParams> = {}) => {
      let terms: Record<string, number> = {};
      const { value, grads } = tf.variableGrads(() => {
        const r = fgd({ featT: teacher, featS: student as unknown as tf.Tensor4D[], gtBoxes: boxes, inputSize: 32, connectors }, params, { joined: path === 'joined', fused: path === 'fused' });
        terms = Object.fromEntries(Object.entries(r.terms).map(([k, v]) => [k, v.dataSync()[0] ?? NaN]));
        return r.loss;
      }, watched);
      const out = { loss: value.dataSync()[0] ?? NaN, terms, grads: Object.fromEntries(Object.entries(grads).map(([k, g]) => [k, g.dataSync()])) };
      tf.dispose([value, ...Object.values(grads)]);
      return out;
    };
    const dispose = () => {
      tf.dispose([...teacher, ...student]);
      connectors.forEach(disposeConnectors);
    };
    return { run, connectors, dispose };
  }

  // Every level at once, and each level as one op.
  it.each(['joined', 'fused'] as const)('%s: the level-by-level loss, terms and gradients of student, align and GcBlocks', (path) => {
    const { run, dispose } = setup();
    const before = tf.memory().numTensors;
    const result = run(path);
    expect(tf.memory().numTensors).toBe(before);
    const levels = run('levels');
    // 3 student levels, 1 align (kernel, bias), 6 GcBlocks of 8 weights each.
    expect(Object.keys(levels.grads)).toHaveLength(3 + 2 + 48);
    expectSameLossTermsAndGradients(result, levels);
    dispose();
  });

  it('each level as one op, with a teacher level 500 times larger (attention logits far apart)', () => {
    const { run, dispose } = setup([500, 1, 1]);
    expectSameLossTermsAndGradients(run('fused'), run('levels'));
    dispose();
  });

  it('each level as one op without the global term (lambda 0): no GcBlock gradients, the same student ones', () => {
    const { run, dispose } = setup();
    const fused = run('fused', { lambda: 0 });
    const levels = run('levels', { lambda: 0 });
    expect(fused.terms.global).toBe(0);
    // 3 student levels and the align's kernel and bias: the GcBlocks take no part.
    expect(Object.keys(levels.grads)).toHaveLength(5);
    expectSameLossTermsAndGradients(fused, levels, ['fg', 'bg', 'attention']);
    dispose();
  });

  it('takes each level\'s softmax on its own scale (levels whose attention logits are 100s apart)', () => {
    // Level 0 of the teacher is 500 times larger: a shared shift would underflow the others' exp.
    const { run, dispose } = setup([500, 1, 1]);
    const joined = run('joined');
    const levels = run('levels');
    for (const k of ['fg', 'bg', 'attention']) {
      expect(Number.isFinite(joined.terms[k]), k).toBe(true);
      expect(Math.abs((joined.terms[k] ?? NaN) - (levels.terms[k] ?? NaN)) / (levels.terms[k] ?? 1), k).toBeLessThan(1e-5);
    }
    dispose();
  });

  it('runs only where it computes the same loss', () => {
    const gc = () => gcPair(4);
    const two = [gc(), gc()];
    expect(joinableLevels([4, 4], two, 5e-6)?.gc).toHaveLength(2);
    expect(joinableLevels([4, 4], [{}, {}], 0)).toEqual({});
    // One level, channel counts that differ, a missing GcBlock, or one not made by createGcBlock.
    expect(joinableLevels([4], [two[0] ?? {}], 5e-6)).toBeNull();
    expect(joinableLevels([4, 8], two, 0)).toBeNull();
    expect(joinableLevels([4, 4], [two[0] ?? {}, {}], 5e-6)).toBeNull();
    const plain = conv1x1Connector(4, 4, { init: 'uniform', seed: 1 });
    expect(joinableLevels([4, 4], [two[0] ?? {}, { gcS: plain, gcT: plain }], 5e-6)).toBeNull();
    // GcBlocks built for other channels than the levels carry.
    expect(joinableLevels([6, 6], two, 5e-6)).toBeNull();
    plain.dispose();
    two.forEach(disposeConnectors);
  });
});
