import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { makeAnchorGrid, type AnchorGrid } from '../detect/anchors';
import { rankMimicking, type RankMimickingInputs } from './rank-mimicking';
import { closeArrays, handAssignment, maxAbs } from './test-support';
import { disposeResult, type DistributionPanelMap } from './types';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** One [1,H,W,C] tensor per level from per-anchor rows (grid order). */
function levels(grid: AnchorGrid, rows: number[][]): tf.Tensor4D[] {
  return grid.levels.map((g) => {
    const part = rows.slice(g.offset, g.offset + g.height * g.width);
    return tf.tensor4d(part.flat(), [1, g.height, g.width, part[0]?.length ?? 0]);
  });
}

const ln2 = Math.log(2);
const ln3 = Math.log(3);
// Input 16, one 2x2 level of stride 8: anchor centres (4,4), (12,4), (4,12), (12,12).
const grid = makeAnchorGrid(16, [8], 5);
// GT 0 (class 0, box [0,0,16,16]) has positives 0, 1, 3; anchor 2 is background.
const gt = { box: [0, 0, 16, 16] as [number, number, number, number], classIndex: 0 };
const assignment = handAssignment({ grid, ious: [[0.5, 0.5, 0.5, 0.5]], assignedGt: [0, 0, -1, 0], gts: [gt] });
// Box logits with 2 bins (regMax 1), all equal for T and S so the localisation term is 0.
const flatBoxes = () => levels(grid, [0, 1, 2, 3].map(() => new Array<number>(8).fill(0)));

function run(clsT: number[], clsS: number[], params = {}, withMaps = false) {
  const inputs: RankMimickingInputs = {
    clsT: levels(grid, clsT.map((v) => [v])),
    clsS: levels(grid, clsS.map((v) => [v])),
    boxT: flatBoxes(),
    boxS: flatBoxes(),
    assignments: [assignment],
  };
  const r = rankMimicking(inputs, { scoreSpace: 'logit', ...params }, { withMaps });
  const values = {
    loss: r.loss.dataSync()[0] ?? NaN,
    cls: r.terms['cls']?.dataSync()[0] ?? NaN,
    loc: r.terms['loc']?.dataSync()[0] ?? NaN,
    maps: r.maps,
  };
  disposeResult(r);
  tf.dispose([...inputs.clsT, ...inputs.clsS, ...inputs.boxT, ...inputs.boxS]);
  return values;
}

describe('rankMimicking: class ranks', () => {
  it('is KL(softmax(s_T/tau) || softmax(s_S/tau)) over the GT’s positives, times weight 4', () => {
    // Teacher logits at positives 0, 1, 3: [0, ln2, ln3] -> R^T = [1, 2, 3]/6; anchor 2's 9 is not a positive.
    // Student [0, 0, 0] -> R^S = 1/3 each. KL = 1/6 ln(1/2) + 1/3 ln 1 + 1/2 ln(3/2) = 0.0872080.
    const before = tf.memory().numTensors;
    const r = run([0, ln2, 9, ln3], [0, 0, -5, 0]);
    expect(r.cls).toBeCloseTo(0.087208, 6);
    expect(r.loc).toBeCloseTo(0, 7);
    expect(r.loss).toBeCloseTo(4 * 0.087208, 5);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('uses probabilities by default', () => {
    // Teacher logits 0 -> probabilities 0.5 each -> R^T uniform. Student logits [0, ln3, −ln3]
    // -> probabilities [0.5, 0.75, 0.25]; LSE = ln(e^0.5 + e^0.75 + e^0.25) = 1.6193377;
    // KL(U || R^S) = −ln3 − (1/3)(1.5 − 3·1.6193377) = 0.0207258.
    const r = run([0, 0, 0, 0], [0, ln3, 0, -ln3], { scoreSpace: 'probability' });
    expect(r.cls).toBeCloseTo(0.0207258, 6);
    // The same scores as logits give a different (sharper) student distribution.
    expect(run([0, 0, 0, 0], [0, ln3, 0, -ln3]).cls).not.toBeCloseTo(0.0207258, 3);
  });

  it('compares anchor by anchor: permuting the student’s scores among the positives changes the loss', () => {
    // Student equal to the teacher: 0. Reversed [ln3, ln2, 0]: the same sorted scores, but
    // KL([1,2,3]/6 || [3,2,1]/6) = 1/6 ln(1/3) + 1/2 ln 3 = 0.3662041 (a sorted comparison would give 0).
    expect(run([0, ln2, 0, ln3], [0, ln2, 0, ln3]).cls).toBeCloseTo(0, 7);
    expect(run([0, ln2, 0, ln3], [ln3, ln2, 0, 0]).cls).toBeCloseTo(0.3662041, 6);
  });

  it('tau softens both distributions', () => {
    // tau 1/2 doubles the logits: T [0, 2ln2, 2ln3] -> [1, 4, 9]/14; S uniform.
    // KL = Sum p ln(3p) = 1/14 ln(3/14) + 4/14 ln(12/14) + 9/14 ln(27/14) = 0.2680389.
    const p = [1 / 14, 4 / 14, 9 / 14];
    const want = p.reduce((s, v) => s + v * Math.log(3 * v), 0);
    expect(run([0, ln2, 0, ln3], [0, 0, 0, 0], { tau: 0.5 }).cls).toBeCloseTo(want, 6);
  });

  it('maps each GT’s rank distributions over its positives in anchor order, with the argmax anchors', () => {
    const r = run([0, ln2, 9, ln3], [0, 0, -5, 0], {}, true);
    const maps = (r.maps ?? []) as DistributionPanelMap[];
    expect(maps.map((m) => m.name)).toEqual(['rank-cls', 'rank-loc']);
    const cls = maps[0] as DistributionPanelMap;
    expect(cls.kind).toBe('distribution');
    expect(Array.from(cls.positions)).toEqual([0, 1, 3]);
    expect(cls.shape).toEqual([2, 3]);
    expect(closeArrays(cls.data, [1 / 6, 2 / 6, 3 / 6, 1 / 3, 1 / 3, 1 / 3])).toBeNull();
    // Teacher picks bar 2 (anchor 3); the uniform student picks the first bar.
    expect(cls.argmax).toEqual({ teacher: 2, student: 0 });
    expect([cls.image, cls.gt, cls.positionKind]).toEqual([0, 0, 'anchor']);
  });
});

describe('rankMimicking: several GTs, label spaces, localisation', () => {
  // Two levels: 2x2 stride 8 (anchors 0..3) and 1x1 stride 16 (anchor 4); input 16.
  const grid2 = makeAnchorGrid(16, [8, 16], 5);
  const gts = [
    { box: [0, 0, 16, 16] as [number, number, number, number], classIndex: 0 },
    { box: [0, 8, 16, 16] as [number, number, number, number], classIndex: 1 },
    { box: [2, 2, 6, 6] as [number, number, number, number], classIndex: 0 },
  ];
  // GT0: positives 0, 1, 3; GT1: 2 and 4; GT2: none (skipped).
  const asg = handAssignment({ grid: grid2, ious: [[0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]], assignedGt: [0, 0, 1, 0, 1], gts });
  // Student class logits [class 0, class 1]: all 0. Teacher: class 0 = [0, ln2, 7, ln3, 7] (7s are
  // not GT0's positives), class 1 = [5, 5, 0, 5, ln3] (5s are not GT1's positives).
  const teacherRows = [
    [0, 5],
    [ln2, 5],
    [7, 0],
    [ln3, 5],
    [7, ln3],
  ];
  const boxRows = () => [0, 1, 2, 3, 4].map(() => new Array<number>(8).fill(0));
  const inputsWith = (clsT: number[][]): RankMimickingInputs => ({
    clsT: levels(grid2, clsT),
    clsS: levels(grid2, [0, 1, 2, 3, 4].map(() => [0, 0])),
    boxT: levels(grid2, boxRows()),
    boxS: levels(grid2, boxRows()),
    assignments: [asg],
  });
  const dispose = (i: RankMimickingInputs) => tf.dispose([...i.clsT, ...i.clsS, ...i.boxT, ...i.boxS]);

  it('averages over the GTs with >= 2 positives, each on its own class channel', () => {
    // GT0: KL([1,2,3]/6 || 1/3) = 0.0872080; GT1 (anchors 2, 4): KL([1,3]/4 || 1/2) = 0.1308120.
    // Mean 0.1090100; GT2 has no positive and is skipped.
    const inputs = inputsWith(teacherRows);
    const r = rankMimicking(inputs, { scoreSpace: 'logit' }, { withMaps: true });
    expect(r.terms['cls']?.dataSync()[0]).toBeCloseTo(0.10901, 6);
    expect(r.maps?.map((m) => [m.name, (m as DistributionPanelMap).gt])).toEqual([
      ['rank-cls', 0],
      ['rank-loc', 0],
      ['rank-cls', 1],
      ['rank-loc', 1],
    ]);
    expect(Array.from((r.maps?.[2] as DistributionPanelMap).positions)).toEqual([2, 4]);
    disposeResult(r);
    dispose(inputs);
  });

  it('reads the teacher through teacherClassIndex when the label spaces differ', () => {
    // Teacher with 3 channels: student class 0 -> teacher channel 2, class 1 -> channel 0;
    // channel 1 is noise. Same values as above on the mapped channels: the same loss.
    const inputs = inputsWith(teacherRows.map(([c0 = 0, c1 = 0], i) => [c1, 10 * i - 20, c0]));
    const r = rankMimicking(inputs, { scoreSpace: 'logit', teacherClassIndex: [2, 0] });
    expect(r.terms['cls']?.dataSync()[0]).toBeCloseTo(0.10901, 6);
    disposeResult(r);
    expect(() => rankMimicking(inputs)).toThrow(/teacher has 3 classes and the student 2; pass teacherClassIndex/);
    expect(() => rankMimicking(inputs, { teacherClassIndex: [2] })).toThrow(/1 entries for 2 student classes/);
    expect(() => rankMimicking(inputs, { teacherClassIndex: [2, 3] })).toThrow(/teacherClassIndex\[1\] = 3/);
    dispose(inputs);
  });

  it('ranks the IoUs of the decoded boxes for the localisation term', () => {
    // 3 bins (regMax 2), stride 8, GT0 [0,0,16,16], positives 0 (4,4), 1 (12,4), 3 (12,12).
    // Student logits 0: every edge 1 bin = 8 px, e.g. anchor 0 -> [-4,-4,12,12]; each of the
    // three boxes overlaps the GT in 12x12 = 144: IoU 144/(256+256−144) = 0.3913043 -> R^S uniform.
    // Teacher anchor 0: left/top logits [0,0,−100] (0.5 bin = 4 px), right/bottom [−100,0,0]
    // (1.5 bins = 12 px) -> box [0,0,16,16], IoU 1; anchors 1 and 3 as the student.
    // R^T = softmax([1, 0.3913, 0.3913]) = [0.4788997, 0.2605502, 0.2605502]; KL(R^T || U) = 0.0451566.
    const near = [0, 0, -100];
    const far = [-100, 0, 0];
    const zeros = () => new Array<number>(12).fill(0);
    const tRows = [[...near, ...near, ...far, ...far], zeros(), zeros(), zeros()];
    const inputs: RankMimickingInputs = {
      clsT: levels(grid, [[0], [0], [0], [0]]),
      clsS: levels(grid, [[0], [0], [0], [0]]),
      boxT: levels(grid, tRows),
      boxS: levels(grid, [zeros(), zeros(), zeros(), zeros()]),
      assignments: [assignment],
    };
    const r = rankMimicking(inputs, {}, { withMaps: true });
    expect(r.terms['loc']?.dataSync()[0]).toBeCloseTo(0.0451566, 5);
    expect(r.terms['cls']?.dataSync()[0]).toBeCloseTo(0, 7);
    expect(r.loss.dataSync()[0]).toBeCloseTo(4 * 0.0451566, 4);
    const loc = r.maps?.[1] as DistributionPanelMap;
    expect(closeArrays(loc.data, [0.4788997, 0.2605502, 0.2605502, 1 / 3, 1 / 3, 1 / 3], 1e-5)).toBeNull();
    expect(loc.argmax.teacher).toBe(0);
    disposeResult(r);
    tf.dispose([...inputs.clsT, ...inputs.clsS, ...inputs.boxT, ...inputs.boxS]);
  });

  it('is zero when the student equals the teacher, and without a qualifying GT', () => {
    const clsT = levels(grid2, teacherRows);
    const box = levels(grid2, [0, 1, 2, 3, 4].map((i) => Array.from({ length: 8 }, (_, c) => Math.sin(i + c))));
    const same = rankMimicking({ clsT, clsS: clsT, boxT: box, boxS: box, assignments: [asg] });
    expect(same.loss.dataSync()[0]).toBeCloseTo(0, 6);
    disposeResult(same);
    const none = handAssignment({ grid: grid2, ious: [[0, 0, 0, 0, 0]], assignedGt: [0, -1, -1, -1, -1] });
    const empty = rankMimicking({ clsT, clsS: clsT, boxT: box, boxS: box, assignments: [none] }, {}, { withMaps: true });
    expect(empty.loss.dataSync()[0]).toBe(0);
    expect(empty.maps).toEqual([]);
    disposeResult(empty);
    tf.dispose([...clsT, ...box]);
  });

  it('sends gradient to the student only (GT class channel at qualifying positives, all box logits there); no leaks', () => {
    const vars = (name: string, rows: number[][]) =>
      levels(grid2, rows).map((t, l) => {
        const v = tf.variable(t, true, `rm_test_${name}_${l}`);
        t.dispose();
        return v as unknown as tf.Tensor4D;
      });
    const clsT = vars('cls_t', teacherRows);
    const boxT = vars('box_t', [0, 1, 2, 3, 4].map((i) => Array.from({ length: 8 }, (_, c) => Math.cos(i * 3 + c))));
    const clsS = vars('cls_s', [0, 1, 2, 3, 4].map((i) => [Math.sin(i), Math.cos(i)]));
    const boxS = vars('box_s', [0, 1, 2, 3, 4].map((i) => Array.from({ length: 8 }, (_, c) => Math.sin(i * 2 + c))));
    const before = tf.memory().numTensors;
    const { value, grads } = tf.variableGrads(() => rankMimicking({ clsT, clsS, boxT, boxS, assignments: [asg] }).loss);
    expect(value.dataSync()[0]).toBeGreaterThan(0);
    // The teacher's rows are read off the tape: no gradient reaches it at all.
    for (const t of [...clsT, ...boxT]) expect(grads[(t as unknown as tf.Variable).name]).toBeUndefined();
    // Student class gradient per anchor and channel (anchors 0..3 of level 0, then anchor 4):
    // GT0 (class 0) at anchors 0, 1, 3; GT1 (class 1) at 2 and 4; nothing elsewhere.
    const g0 = (grads[(clsS[0] as unknown as tf.Variable).name] as tf.Tensor).dataSync();
    const g1 = (grads[(clsS[1] as unknown as tf.Variable).name] as tf.Tensor).dataSync();
    const nonzero = [...g0, ...g1].map((v) => v !== 0);
    expect(nonzero).toEqual([true, false, true, false, false, true, true, false, false, true]);
    for (const t of boxS) expect(maxAbs(grads[(t as unknown as tf.Variable).name] as tf.Tensor)).toBeGreaterThan(0);
    tf.dispose([value, ...Object.values(grads)]);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([...clsT, ...boxT, ...clsS, ...boxS]);
  });

  it('without a qualifying GT, its zero loss reaches every level of every input: gradients exist and are 0', () => {
    const vars = (name: string, rows: number[][]) =>
      levels(grid2, rows).map((t, l) => {
        const v = tf.variable(t, true, `rm_none_${name}_${l}`);
        t.dispose();
        return v as unknown as tf.Tensor4D;
      });
    const box = () => [0, 1, 2, 3, 4].map((i) => Array.from({ length: 8 }, (_, c) => Math.sin(i + c)));
    const clsT = vars('cls_t', teacherRows);
    const clsS = vars('cls_s', teacherRows);
    const boxT = vars('box_t', box());
    const boxS = vars('box_s', box());
    const none = handAssignment({ grid: grid2, ious: [[0, 0, 0, 0, 0]], assignedGt: [0, -1, -1, -1, -1] });
    const all = [...clsT, ...clsS, ...boxT, ...boxS] as unknown as tf.Variable[];
    const { value, grads } = tf.variableGrads(() => rankMimicking({ clsT, clsS, boxT, boxS, assignments: [none] }).loss, all);
    expect(value.dataSync()[0]).toBe(0);
    // Two levels x four inputs: eight gradients, none missing (level 1 was missing before), all 0.
    expect(Object.keys(grads).sort()).toEqual(all.map((v) => v.name).sort());
    for (const v of all) expect(maxAbs(grads[v.name] as tf.Tensor)).toBe(0);
    tf.dispose([value, ...Object.values(grads), ...all]);
  });

  it('rejects bad input with a clear message', () => {
    const i = inputsWith(teacherRows);
    const six = i.boxS.map((t) => t.slice([0, 0, 0, 0], [1, t.shape[1], t.shape[2], 6]));
    expect(() => rankMimicking({ ...i, boxS: six })).toThrow(/6 channels; expected 4·\(regMax\+1\)/);
    tf.dispose(six);
    expect(() => rankMimicking(i, { minPositives: 1 })).toThrow(/minPositives must be an integer >= 2/);
    expect(() => rankMimicking({ ...i, assignments: [] })).toThrow(/1 images but 0 assignments/);
    dispose(i);
  });
});
