import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import type { AnchorGrid } from '../detect/anchors';
import { ld, vlrWeights, type LdInputs } from './ld';
import { closeArrays, handAssignment, handGrid, maxAbs } from './test-support';
import { disposeResult, type DistributionPanelMap } from './types';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

function levels(grid: AnchorGrid, rows: number[][]): tf.Tensor4D[] {
  return grid.levels.map((g) => {
    const part = rows.slice(g.offset, g.offset + g.height * g.width);
    return tf.tensor4d(part.flat(), [1, g.height, g.width, part[0]?.length ?? 0]);
  });
}

const ln3 = Math.log(3);
// One 2x2 level (anchors 0..3), 2 bins per edge (regMax 1): 8 box channels.
const grid = handGrid([{ stride: 8, height: 2, width: 2 }]);
// GT 0: positives 0 and 3, ATSS threshold 0.5, anchor IoUs [0.7, 0.3, 0.1, 0.6].
// VLR = IoU in [0.25·0.5, 0.5) = [0.125, 0.5): anchor 1 only (anchor 2's 0.1 is below).
const assignment = handAssignment({ grid, ious: [[0.7, 0.3, 0.1, 0.6]], assignedGt: [0, -1, -1, 0], thresholds: [0.5] });
const edges = (pair: number[]) => [...pair, ...pair, ...pair, ...pair];
// Teacher: anchor 0 edges [0, ln3] -> p = [1/4, 3/4]; anchor 1 [ln3, 0]; anchor 2 [5, 0] (outside
// every region); anchor 3 equal to the student. Student: every edge [0, 0] -> [1/2, 1/2].
const teacherRows = [edges([0, ln3]), edges([ln3, 0]), edges([5, 0]), edges([0, 0])];
const studentRows = [0, 1, 2, 3].map(() => edges([0, 0]));
// Student class logits (one class): w = sigmoid -> anchor 0: 0.5, anchor 3 (ln3): 0.75.
const clsRows = [[0], [2], [-1], [ln3]];

function inputs(t = teacherRows, s = studentRows, cls = clsRows): LdInputs {
  return { boxT: levels(grid, t), boxS: levels(grid, s), clsS: levels(grid, cls), assignments: [assignment] };
}
function dispose(i: LdInputs) {
  tf.dispose([...i.boxT, ...i.boxS, ...i.clsS, ...(i.clsT ?? [])]);
}
function values(i: LdInputs, params = {}) {
  const r = ld(i, params);
  const out = {
    loss: r.loss.dataSync()[0] ?? NaN,
    main: r.terms['main']?.dataSync()[0] ?? NaN,
    vlr: r.terms['vlr']?.dataSync()[0] ?? NaN,
    classKd: r.terms['classKd']?.dataSync()[0],
  };
  disposeResult(r);
  return out;
}

// KL([1/4, 3/4] || [1/2, 1/2]) = 1/4 ln(1/2) + 3/4 ln(3/2) = 0.1308120; at T 1 per edge
// T² · KL / 2 bins = 0.0654060, and the mean over 4 equal edges is the same.
const KL = 0.25 * Math.log(0.5) + 0.75 * Math.log(1.5);
const LD1 = KL / 2;

describe('ld', () => {
  it('weights the positives by the student’s top class score and the VLR by IoU (weight-sum normalisation)', () => {
    const i = inputs();
    const before = tf.memory().numTensors;
    const r = values(i, { temperature: 1 });
    // main = (0.5 · 0.065406 + 0.75 · 0) / (0.5 + 0.75) = 0.0261624.
    expect(r.main).toBeCloseTo((0.5 * LD1) / 1.25, 6);
    // vlr = 0.3 · 0.065406 / 0.3 = 0.065406 (anchor 2 is outside both regions).
    expect(r.vlr).toBeCloseTo(LD1, 6);
    expect(r.loss).toBeCloseTo(0.25 * r.main + 0.25 * r.vlr, 6);
    expect(r.classKd).toBeUndefined();
    expect(tf.memory().numTensors).toBe(before);
    dispose(i);
  });

  it('follows the official reductions with normalize "sum"', () => {
    const i = inputs();
    const r = values(i, { temperature: 1, normalize: 'sum' });
    // main = Sum w·ld = 0.5 · 0.065406 = 0.032703; vlr = Sum v·ld / 4 = 0.3 · 0.065406 / 4 = 0.0049055.
    expect(r.main).toBeCloseTo(0.5 * LD1, 6);
    expect(r.vlr).toBeCloseTo((0.3 * LD1) / 4, 6);
    // Uniform VLR weights: 1 · 0.065406 / 4.
    expect(values(i, { temperature: 1, normalize: 'sum', vlrWeighting: 'uniform' }).vlr).toBeCloseTo(LD1 / 4, 6);
    dispose(i);
  });

  it('uses T² · KL / bins at temperature 10 by default', () => {
    // softmax([0, ln3]/10) = [0.4725623, 0.5274377]; KL vs 1/2 = 0.0015064; · 100 / 2 = 0.0753207.
    const i = inputs();
    const r = values(i);
    expect(r.vlr).toBeCloseTo(0.0753207, 5);
    expect(r.main).toBeCloseTo((0.5 * 0.0753207) / 1.25, 5);
    dispose(i);
  });

  it('is zero when the student equals the teacher, and with empty regions', () => {
    const same = inputs(teacherRows, teacherRows);
    expect(values(same).loss).toBeCloseTo(0, 7);
    dispose(same);
    const i = inputs();
    const r = ld({ ...i, assignments: [handAssignment({ grid, ious: [[0, 0, 0, 0]] })] });
    expect(r.loss.dataSync()[0]).toBe(0);
    disposeResult(r);
    dispose(i);
  });

  it('compares anchor by anchor: moving the student’s distributions between positives changes the loss', () => {
    // Matched: student anchor 0 [0, ln3] and anchor 3 [0, 0], as the teacher -> main 0.
    // Swapped between the two positives: both anchors now differ from the teacher.
    const matched = inputs(teacherRows, [edges([0, ln3]), edges([0, 0]), edges([0, 0]), edges([0, 0])]);
    const swapped = inputs(teacherRows, [edges([0, 0]), edges([0, 0]), edges([0, 0]), edges([0, ln3])]);
    const a = values(matched, { temperature: 1 }).main;
    const b = values(swapped, { temperature: 1 }).main;
    expect(a).toBeCloseTo(0, 7);
    // Anchor 0: KL([1/4,3/4] || 1/2) = 0.1308120, w 0.5; anchor 3: KL([1/2,1/2] || [1/4,3/4]) =
    // 1/2 ln 2 + 1/2 ln(2/3) = 0.1438410, w 0.75; each / 2 bins: (0.0327030 + 0.0539404) / 1.25 = 0.0693147.
    const reverse = 0.5 * Math.log(2) + 0.5 * Math.log(2 / 3);
    expect(b).toBeCloseTo((0.5 * (KL / 2) + 0.75 * (reverse / 2)) / 1.25, 6);
    dispose(matched);
    dispose(swapped);
  });

  it('adds the optional class KD at the positives, through teacherClassIndex', () => {
    // Two student classes, both 0 everywhere; teacher channels [noise, class 1, class 0] with
    // class 0 = 0 and class 1 = 2·ln3: at Tc 2, softmax([0, ln3]) = [1/4, 3/4] vs 1/2 each:
    // KL 0.1308120, mean over 2 classes · Tc² = 0.2616241, averaged over the 2 positives.
    const i = inputs(teacherRows, studentRows, clsRows);
    const clsS = levels(grid, [0, 1, 2, 3].map(() => [0, 0]));
    const clsT = levels(grid, [0, 1, 2, 3].map((a) => [7 * a, 2 * ln3, 0]));
    const withKd = { ...i, clsS, clsT };
    const r = values(withKd, { classKd: true, teacherClassIndex: [2, 1] });
    expect(r.classKd).toBeCloseTo((KL / 2) * 4, 6);
    expect(r.loss).toBeCloseTo(0.25 * r.main + 0.25 * r.vlr + 10 * (r.classKd ?? NaN), 5);
    expect(() => ld(withKd, { classKd: true })).toThrow(/pass teacherClassIndex/);
    expect(() => ld(i, { classKd: true })).toThrow(/classKd needs the teacher class logits clsT/);
    tf.dispose([...clsS, ...clsT]);
    dispose(i);
  });

  it('averages the class KD per level over its positives and sums the levels, as the official LD head', () => {
    // Level 0 (2x2, anchors 0..3) and level 1 (1x1, anchor 4); positives 0, 3 and 4. Student class
    // logits 0; teacher [0, 2·ln3] at level 0 and [2·ln3, 0] at level 1: every positive row gives
    // Tc² · KL([1/4, 3/4] || 1/2) / 2 classes = 0.2616241 (the KL is the same either way round).
    // Official: (0.2616241 + 0.2616241) / 2 + 0.2616241 / 1 = 0.5232481; over all three
    // positives it would be 0.2616241.
    const g2 = handGrid([
      { stride: 8, height: 2, width: 2 },
      { stride: 16, height: 1, width: 1 },
    ]);
    const rowsOf = (f: (a: number) => number[]) => levels(g2, [0, 1, 2, 3, 4].map(f));
    const two = {
      boxT: rowsOf(() => edges([0, 0])),
      boxS: rowsOf(() => edges([0, 0])),
      clsS: rowsOf(() => [0, 0]),
      clsT: rowsOf((a) => (a < 4 ? [0, 2 * ln3] : [2 * ln3, 0])),
      assignments: [handAssignment({ grid: g2, ious: [[0.7, 0.3, 0.1, 0.6, 0.8]], assignedGt: [0, -1, -1, 0, 0], thresholds: [0.5] })],
    };
    const perRow = (KL / 2) * 4;
    expect(values(two, { classKd: true }).classKd).toBeCloseTo(2 * perRow, 6);
    // Only level 0 has positives: level 1 adds 0, and level 0's mean is the same row value.
    const levelZeroOnly = { ...two, assignments: [handAssignment({ grid: g2, ious: [[0.7, 0.3, 0.1, 0.6, 0.8]], assignedGt: [0, -1, -1, 0, -1], thresholds: [0.5] })] };
    expect(values(levelZeroOnly, { classKd: true }).classKd).toBeCloseTo(perRow, 6);
    tf.dispose([...two.boxT, ...two.boxS, ...two.clsS, ...two.clsT]);
  });

  it('maps the main and VLR regions per level and the chosen GT’s edges at its best positive', () => {
    const i = inputs();
    const r = ld(i, {}, { withMaps: true });
    const maps = r.maps ?? [];
    expect(maps.map((m) => m.name)).toEqual(['main', 'vlr', 'edge-left', 'edge-top', 'edge-right', 'edge-bottom']);
    expect(Array.from(maps[0]?.data ?? [])).toEqual([1, 0, 0, 1]);
    expect(Array.from(maps[1]?.data ?? [])).toEqual([0, 1, 0, 0]);
    // Best positive of GT 0: anchor 0 (IoU 0.7 > 0.6). Temperature-1 distributions there.
    const left = maps[2] as DistributionPanelMap;
    expect([left.kind, left.anchor, left.level, left.positionKind]).toEqual(['distribution', 0, 0, 'bin']);
    expect(Array.from(left.positions)).toEqual([0, 1]);
    expect(closeArrays(left.data, [0.25, 0.75, 0.5, 0.5])).toBeNull();
    expect(left.argmax).toEqual({ teacher: 1, student: 0 });
    disposeResult(r);
    // A GT without positives: region maps only.
    const none = ld(i, { mapGt: 3 }, { withMaps: true });
    expect(none.maps?.map((m) => m.name)).toEqual(['main', 'vlr']);
    disposeResult(none);
    dispose(i);
  });

  it('sends gradient only to the student’s box logits at main and VLR anchors; none through w_i; no leaks', () => {
    const v = (name: string, rows: number[][]) => {
      const [t] = levels(grid, rows);
      const out = tf.variable(t as tf.Tensor4D, true, `ld_test_${name}`);
      t?.dispose();
      return out as unknown as tf.Tensor4D;
    };
    const boxT = v('box_t', teacherRows);
    const boxS = v('box_s', [0, 1, 2, 3].map((a) => Array.from({ length: 8 }, (_, c) => Math.sin(a * 5 + c))));
    const clsS = v('cls_s', clsRows);
    const before = tf.memory().numTensors;
    const { value, grads } = tf.variableGrads(() => ld({ boxT: [boxT], boxS: [boxS], clsS: [clsS], assignments: [assignment] }).loss);
    expect(value.dataSync()[0]).toBeGreaterThan(0);
    const name = (t: tf.Tensor4D) => (t as unknown as tf.Variable).name;
    // The teacher reaches the loss through stopGradient: a gradient of exactly 0. The student's
    // class logits feed only w_i, computed off the tape: no gradient at all.
    expect(maxAbs(grads[name(boxT)] as tf.Tensor)).toBe(0);
    expect(grads[name(clsS)]).toBeUndefined();
    const perAnchor = tf.tidy(() => Array.from((grads[name(boxS)] as tf.Tensor).reshape([4, 8]).abs().sum(1).dataSync()));
    expect(perAnchor.map((x) => x > 0)).toEqual([true, true, false, true]);
    tf.dispose([value, ...Object.values(grads)]);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([boxT, boxS, clsS]);
  });

  it('rejects mismatched bins and bad parameters', () => {
    const i = inputs();
    const wide = levels(grid, [0, 1, 2, 3].map(() => new Array<number>(12).fill(0)));
    expect(() => ld({ ...i, boxT: wide })).toThrow(/teacher has 3 bins per edge and the student 2/);
    expect(() => ld(i, { alphaVlr: 2 })).toThrow(/alphaVlr must lie in \[0, 1\]/);
    tf.dispose(wide);
    dispose(i);
  });
});

describe('vlrWeights', () => {
  it('keeps the largest IoU among the GTs whose [alpha·thr, thr) holds it', () => {
    // GT0 thr 0.4 -> [0.1, 0.4); GT1 thr 0.8 -> [0.2, 0.8).
    // Anchor 0: 0.3 (GT0), 0.5 (GT1) -> 0.5. Anchor 1: 0.45 (no: >= 0.4), 0.1 (no) -> 0.
    // Anchor 2: 0.05, 0.25 -> 0.25. Anchor 3: 0.39 (GT0), 0.9 (no) -> 0.39.
    const a = handAssignment({
      grid,
      ious: [
        [0.3, 0.45, 0.05, 0.39],
        [0.5, 0.1, 0.25, 0.9],
      ],
      thresholds: [0.4, 0.8],
    });
    expect(closeArrays(vlrWeights(a, 0.25, 'iou'), [0.5, 0, 0.25, 0.39])).toBeNull();
    expect(Array.from(vlrWeights(a, 0.25, 'uniform'))).toEqual([1, 0, 1, 1]);
  });
});
