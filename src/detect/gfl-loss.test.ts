import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { makeAnchorGrid, type AnchorGrid } from './anchors';
import type { Assignment, GtObject } from './assignment';
import { alignedGiou, alignedIou } from './box-tensor';
import { decodeBoxesTensor, distributionFocalLoss, flattenHeadOutputs, gflLoss, qualityFocalLoss } from './gfl-loss';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const values = (t: tf.Tensor) => Array.from(t.dataSync());

/** An assignment with the given anchor → GT map; gflLoss reads only grid, gts and assignedGt. */
function manualAssignment(grid: AnchorGrid, gts: GtObject[], assigned: Record<number, number>): Assignment {
  const assignedGt = new Int32Array(grid.count).fill(-1);
  for (const [i, g] of Object.entries(assigned)) assignedGt[Number(i)] = g;
  return {
    grid,
    gts,
    assignedGt,
    ious: new Float32Array(gts.length * grid.count),
    thresholds: new Float32Array(gts.length),
    candidates: gts.map(() => new Int32Array(0)),
    positives: gts.map((_, g) => Int32Array.from(Object.keys(assigned).map(Number).filter((i) => assigned[i] === g))),
  };
}

// Tiny head: input 16, one level of stride 8 → 2x2 anchors, centres (4,4) (12,4) (4,12) (12,12).
// One class, regMax 3 (4 bins per edge): 1 + 4·4 = 17 channels.
// Anchor 0: class logit 1, every edge's bins [0,1,2,3]; anchors 1..3: class logits −2, 0, 3, bins 0.
const grid = makeAnchorGrid(16, [8], 5);
const REG_MAX = 3;
function tinyHead(): number[] {
  const rows = [1, -2, 0, 3].map((c, i) => [c, ...(i === 0 ? [0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3] : Array(16).fill(0))]);
  return rows.flat();
}
const gtA: GtObject = { box: [0, 0, 16, 20], classIndex: 0 };
const gtB: GtObject = { box: [8, 4, 20, 24], classIndex: 0 };

// Hand values shared by several tests (sig = sigmoid, sp = softplus, QFL(x, y) = (sp(x) − x·y)·(y − sig(x))²):
// Anchor 0: bins [0,1,2,3]: log-sum-exp lse = ln(1 + e + e² + e³) = 3.440190; expected bin
//   (e + 2e² + 3e³)/e^lse = 2.492653 → 19.941222 px per edge → box [−15.941222, ..., 23.941222]² of
//   area 1590.609320 holding GT A (area 320): IoU = GIoU = 0.201181, 1 − GIoU = 0.798819.
//   DFL targets (4−0)/8 = 0.5, 0.5, (16−4)/8 = 1.5, (20−4)/8 = 2; with linear logits CE(i) = lse − i,
//   so each edge gives lse − d: mean = 3.440190 − 1.125 = 2.315190.
//   QFL(1, 0.201181) = 0.312240.
// Background QFL(x, 0) = sp(x)·sig(x)²: x=−2 0.001804, x=0 0.173287, x=3 2.766280, x=1 0.701869.
const IOU0 = 0.2011808;
const DFL0 = 2.3151897;

describe('QFL, DFL and GIoU building blocks', () => {
  it('QFL on one anchor and one class', () => {
    // x = −1, y = 0.8: sp(−1) = 0.313262, BCE = 0.313262 + 0.8 = 1.113262; sig(−1) = 0.268941,
    //   (0.8 − 0.268941)² = 0.282024 → 0.313966.
    // x = 2, y = 0 (background): sp(2) = 2.126928, sig(2)² = 0.775803 → 1.650078.
    const out = tf.tidy(() => values(qualityFocalLoss(tf.tensor1d([-1, 2]), tf.tensor1d([0.8, 0]))));
    expect(out[0]).toBeCloseTo(0.313966, 5);
    expect(out[1]).toBeCloseTo(1.650078, 5);
    // beta 1: |0.8 − 0.268941| = 0.531059 → 1.113262·0.531059 = 0.591207
    expect(tf.tidy(() => values(qualityFocalLoss(tf.scalar(-1), 0.8, 1)))[0]).toBeCloseTo(0.591207, 5);
  });

  it('DFL for d = 2.3 and logits [0,1,2,1,0]', () => {
    // lse = ln(1 + 2e + e² + 1) = 2.696357; CE(2) = lse − 2 = 0.696357, CE(3) = lse − 1 = 1.696357.
    // DFL = 0.696357·(3 − 2.3) + 1.696357·(2.3 − 2) = 0.487450 + 0.508907 = 0.996357.
    const out = tf.tidy(() => values(distributionFocalLoss(tf.tensor2d([[0, 1, 2, 1, 0]]), [2.3])));
    expect(out[0]).toBeCloseTo(0.996357, 5);
    // d at or beyond regMax is clamped to regMax − 0.1 = 3.9 (mmdet's bbox2distance eps):
    // CE(3)·0.1 + CE(4)·0.9 = 1.696357·0.1 + 2.696357·0.9 = 2.596357.
    expect(tf.tidy(() => values(distributionFocalLoss(tf.tensor2d([[0, 1, 2, 1, 0]]), [7])))[0]).toBeCloseTo(2.596357, 5);
    // 3.95 is past the clamp too (it was inside the old 3.99 one): the same value.
    expect(tf.tidy(() => values(distributionFocalLoss(tf.tensor2d([[0, 1, 2, 1, 0]]), [3.95])))[0]).toBeCloseTo(2.596357, 5);
  });

  it('IoU and GIoU of box pairs, including disjoint boxes', () => {
    const a = tf.tensor2d([[0, 0, 4, 4], [0, 0, 2, 2], [0, 0, 4, 4], [1, 1, 3, 3]]);
    const b = tf.tensor2d([[2, 2, 6, 6], [4, 0, 6, 2], [1, 1, 3, 3], [1, 1, 3, 3]]);
    // 1: inter 2·2 = 4, union 16 + 16 − 4 = 28, IoU 1/7; enclosing 6·6 = 36 → GIoU 1/7 − 8/36 = −0.079365
    // 2: disjoint, inter 0, union 8, enclosing [0,6]x[0,2] = 12 → GIoU 0 − 4/12 = −0.333333
    // 3: b inside a: IoU 4/16 = 0.25, enclosing = a → GIoU 0.25
    // 4: identical → 1
    const iou = tf.tidy(() => values(alignedIou(a, b)));
    const giou = tf.tidy(() => values(alignedGiou(a, b)));
    [1 / 7, 0, 0.25, 1].forEach((v, i) => expect(iou[i]).toBeCloseTo(v, 6));
    [-0.079365, -0.333333, 0.25, 1].forEach((v, i) => expect(giou[i]).toBeCloseTo(v, 6));
    tf.dispose([a, b]);
  });

  it('decodeBoxesTensor: centre −/+ expected bin · stride', () => {
    // Row 0: uniform 4 bins → expected 1.5 → 12 px at stride 8 around (4,4): [−8, −8, 16, 16].
    // Row 1: one-hot-ish bins (logit 50 on bin 2 for left, bin 0 elsewhere) at stride 16 around
    //   (24, 8): left 2·16 = 32, others 0 → [−8, 8, 24, 8].
    const hot = (b: number) => [0, 1, 2, 3].map((i) => (i === b ? 50 : 0));
    const out = tf.tidy(() =>
      values(decodeBoxesTensor(tf.tensor2d([Array(16).fill(0), [...hot(2), ...hot(0), ...hot(0), ...hot(0)]]), tf.tensor2d([[4, 4], [24, 8]]), tf.tensor1d([8, 16]))),
    );
    [-8, -8, 16, 16, -8, 8, 24, 8].forEach((v, i) => expect(out[i]).toBeCloseTo(v, 4));
  });

  it('flattenHeadOutputs orders rows level by level, row-major, and checks shapes', () => {
    const g = makeAnchorGrid(32, [16, 32], 5); // 2x2 then 1x1
    const l0 = tf.tensor4d([0, 1, 2, 3], [1, 2, 2, 1]);
    const l1 = tf.tensor4d([4], [1, 1, 1, 1]);
    expect(tf.tidy(() => values(flattenHeadOutputs([l0, l1], g)))).toEqual([0, 1, 2, 3, 4]);
    expect(() => flattenHeadOutputs([l1, l0], g)).toThrow(/expected \[1,2,2,1\]/);
    tf.dispose([l0, l1]);
  });
});

describe('gflLoss', () => {
  it('one positive: QFL over all anchors, DFL and GIoU of the positive over max(Σw, 1), weighted total', () => {
    // QFL sum = 0.312240 + 0.001804 + 0.173287 + 2.766280 = 3.253610; / max(1 positive, 1).
    // One positive of weight w = sig(1) = 0.731059 < 1: the average factor is clamped at 1, so
    // DFL = 0.731059·2.315190 = 1.692539 and GIoU = 0.731059·0.798819 = 0.583984.
    // Total = 3.253610 + 0.25·1.692539 + 2·0.583984 = 4.844712.
    const head = tf.tensor4d(tinyHead(), [1, 2, 2, 17]);
    const before = tf.memory().numTensors;
    const r = gflLoss({ outputs: [head], assignments: [manualAssignment(grid, [gtA], { 0: 0 })], grid, regMax: REG_MAX });
    expect(r.numPositives).toBe(1);
    expect(r.terms.qfl.dataSync()[0]).toBeCloseTo(3.25361, 4);
    expect(r.terms.dfl.dataSync()[0]).toBeCloseTo(0.731059 * DFL0, 4);
    expect(r.terms.giou.dataSync()[0]).toBeCloseTo(0.731059 * (1 - IOU0), 4);
    expect(r.loss.dataSync()[0]).toBeCloseTo(4.844712, 4);
    tf.dispose([r.loss, r.terms.qfl, r.terms.dfl, r.terms.giou]);
    expect(tf.memory().numTensors).toBe(before);
    head.dispose();
  });

  it('a batch of two: QFL divided by Σ max(positives per image, 1), DFL/GIoU by the sum of score weights (above 1)', () => {
    // Image 1 has the same head output; its anchor 3 (centre (12,12), logit 3) is positive for
    // GT B [8,4,20,24]. Its bins are uniform → 12 px → box [0,0,24,24] (area 576) holding B (240):
    //   IoU = GIoU = 240/576 = 0.416667; DFL of uniform bins = ln 4 = 1.386294 whatever the target.
    //   QFL(3, 0.416667) = (3.048587 − 1.25)·(0.416667 − 0.952574)² = 0.516549;
    //   background of image 1 (x = 1, −2, 0) = 0.701869 + 0.001804 + 0.173287 = 0.876959.
    // QFL = (3.253610 + 0.516549 + 0.876959)/2 = 2.323559.
    // Weights w = sig(1) = 0.731059 and sig(3) = 0.952574, Sum 1.683633:
    //   DFL = (0.731059·2.315190 + 0.952574·1.386294)/1.683633 = 1.789635
    //   GIoU = (0.731059·0.798819 + 0.952574·0.583333)/1.683633 = 0.676901
    // Total = 2.323559 + 0.25·1.789635 + 2·0.676901 = 4.124769.
    const head = tf.tensor4d([...tinyHead(), ...tinyHead()], [2, 2, 2, 17]);
    const assignments = [manualAssignment(grid, [gtA], { 0: 0 }), manualAssignment(grid, [gtB], { 3: 0 })];
    const r = gflLoss({ outputs: [head], assignments, grid, regMax: REG_MAX });
    expect(r.numPositives).toBe(2);
    expect(r.terms.qfl.dataSync()[0]).toBeCloseTo(2.323559, 4);
    expect(r.terms.dfl.dataSync()[0]).toBeCloseTo(1.789635, 4);
    expect(r.terms.giou.dataSync()[0]).toBeCloseTo(0.676901, 4);
    expect(r.loss.dataSync()[0]).toBeCloseTo(4.124769, 4);
    // Custom weights: qfl + 1·dfl + 0·giou.
    const w = gflLoss({ outputs: [head], assignments, grid, regMax: REG_MAX }, { dflWeight: 1, giouWeight: 0 });
    expect(w.loss.dataSync()[0]).toBeCloseTo(2.323559 + 1.789635, 4);
    tf.dispose([head, r.loss, r.terms.qfl, r.terms.dfl, r.terms.giou, w.loss, w.terms.qfl, w.terms.dfl, w.terms.giou]);
  });

  it('an image without positives counts 1 in QFL\'s average factor; zero positives: only the background QFL', () => {
    // Image 0 as in the first test (3.253610) + image 1 with no GT: every anchor background,
    // 0.701869 + 0.001804 + 0.173287 + 2.766280 = 3.643239; the sum 6.896849 is divided by
    // max(1, 1) + max(0, 1) = 2 (mmdet), not by max(1 positive in the batch, 1): 3.448425.
    const head = tf.tensor4d([...tinyHead(), ...tinyHead()], [2, 2, 2, 17]);
    const mixed = gflLoss({ outputs: [head], assignments: [manualAssignment(grid, [gtA], { 0: 0 }), manualAssignment(grid, [], {})], grid, regMax: REG_MAX });
    expect(mixed.terms.qfl.dataSync()[0]).toBeCloseTo(3.448425, 4);
    // No positive anywhere: QFL = 2·3.643239 / (1 + 1) = 3.643239; DFL = GIoU = 0.
    const empty = manualAssignment(grid, [], {});
    const before = tf.memory().numTensors;
    const r = gflLoss({ outputs: [head], assignments: [empty, empty], grid, regMax: REG_MAX });
    expect(r.numPositives).toBe(0);
    expect(r.loss.dataSync()[0]).toBeCloseTo(3.643239, 4);
    expect([r.terms.dfl.dataSync()[0], r.terms.giou.dataSync()[0]]).toEqual([0, 0]);
    tf.dispose([r.loss, r.terms.qfl, r.terms.dfl, r.terms.giou]);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([head, mixed.loss, mixed.terms.qfl, mixed.terms.dfl, mixed.terms.giou]);
  });

  it('rejects mismatched inputs with a message', () => {
    const head = tf.tensor4d(tinyHead(), [1, 2, 2, 17]);
    const one = manualAssignment(grid, [gtA], { 0: 0 });
    expect(() => gflLoss({ outputs: [head], assignments: [one, one], grid, regMax: REG_MAX })).toThrow(/2 assignments for a batch of 1/);
    expect(() => gflLoss({ outputs: [head], assignments: [one], grid, regMax: 4 })).toThrow(/channels/);
    expect(() => gflLoss({ outputs: [head], assignments: [manualAssignment(grid, [{ ...gtA, classIndex: 1 }], { 0: 0 })], grid, regMax: REG_MAX })).toThrow(
      /outside the head's 1 classes/,
    );
    expect(() => gflLoss({ outputs: [head], assignments: [one], grid, regMax: REG_MAX }, { dflWeight: -1 })).toThrow(/dflWeight/);
    const other = makeAnchorGrid(32, [8], 5);
    expect(() => gflLoss({ outputs: [head], assignments: [manualAssignment(other, [gtA], {})], grid, regMax: REG_MAX })).toThrow(/different anchor grid/);
    head.dispose();
  });
});

describe('gflLoss gradients', () => {
  const assignments = [manualAssignment(grid, [gtA], { 0: 0 }), manualAssignment(grid, [gtB], { 3: 0 })];
  const lossOf = (options: Parameters<typeof gflLoss>[1]) => (x: tf.Tensor) => gflLoss({ outputs: [x], assignments, grid, regMax: REG_MAX }, options).loss;
  /** Gradient as [row = image·4 + anchor][channel]. */
  const gradRows = (g: tf.Tensor) => {
    const v = values(g);
    return Array.from({ length: 8 }, (_, r) => v.slice(r * 17, r * 17 + 17));
  };

  it('are finite and reach class and box channels; memory is steady', () => {
    const head = tf.tensor4d([...tinyHead(), ...tinyHead()], [2, 2, 2, 17]);
    const before = tf.memory().numTensors;
    const g = tf.grad(lossOf({}))(head);
    const rows = gradRows(g);
    expect(rows.flat().every(Number.isFinite)).toBe(true);
    // Every class logit gets a QFL gradient; only the positives (row 0 and row 4 + 3) get box gradients.
    expect(rows.every((r) => r[0] !== 0)).toBe(true);
    rows.forEach((r, i) => expect(r.slice(1).some((v) => v !== 0)).toBe(i === 0 || i === 7));
    g.dispose();
    expect(tf.memory().numTensors).toBe(before);
    head.dispose();
  });

  it('send no gradient through the IoU target: QFL alone matches a constant-target reference', () => {
    const head = tf.tensor4d([...tinyHead(), ...tinyHead()], [2, 2, 2, 17]);
    const qflOnly = lossOf({ dflWeight: 0, giouWeight: 0 });
    const rows = gradRows(tf.tidy(() => tf.grad(qflOnly)(head)));
    // The IoU target is the only path from the box bins to QFL: detached, it carries nothing.
    expect(rows.every((r) => r.slice(1).every((v) => v === 0))).toBe(true);

    // Reference: the same QFL with the targets read back and passed as constants.
    const cls = (x: tf.Tensor) => tf.slice(tf.reshape(x, [8, 17]), [0, 0], [8, 1]);
    const reg = (x: tf.Tensor) => tf.slice(tf.reshape(x, [8, 17]), [0, 1], [8, 16]);
    const centres = tf.tensor2d([[4, 4], [12, 12]]);
    const strides = tf.tensor1d([8, 8]);
    const gts = tf.tensor2d([gtA.box as unknown as number[], gtB.box as unknown as number[]]);
    const positiveRegs = (x: tf.Tensor) => tf.concat([tf.slice(reg(x), [0, 0], [1, 16]), tf.slice(reg(x), [7, 0], [1, 16])]);
    const liveIou = (x: tf.Tensor) => alignedIou(decodeBoxesTensor(positiveRegs(x), centres, strides), gts);
    const [iou0, iou7] = tf.tidy(() => values(liveIou(head)));
    expect(iou0).toBeCloseTo(IOU0, 5);
    expect(iou7).toBeCloseTo(240 / 576, 5);
    const constTarget = tf.tensor2d([iou0!, 0, 0, 0, 0, 0, 0, iou7!], [8, 1]);
    const reference = (x: tf.Tensor) => tf.div(tf.sum(qualityFocalLoss(cls(x), constTarget)), 2) as tf.Scalar;
    const refRows = gradRows(tf.tidy(() => tf.grad(reference)(head)));
    rows.forEach((r, i) => expect(r[0]).toBeCloseTo(refRows[i]![0]!, 6));
    expect(tf.tidy(() => values(qflOnly(head)))[0]).toBeCloseTo(tf.tidy(() => values(reference(head)))[0]!, 5);

    // Had the target not been detached, the box bins would get a gradient: the check is sensitive.
    const attached = (x: tf.Tensor) => {
      const live = liveIou(x);
      const target = tf.concat([tf.slice(live, [0], [1]), tf.zeros([6]), tf.slice(live, [1], [1])]).reshape([8, 1]);
      return tf.div(tf.sum(qualityFocalLoss(cls(x), target)), 2) as tf.Scalar;
    };
    const attachedRows = gradRows(tf.tidy(() => tf.grad(attached)(head)));
    expect(attachedRows[0]!.slice(1).some((v) => Math.abs(v) > 1e-4)).toBe(true);
    tf.dispose([head, centres, strides, gts, constTarget]);
  });

  it('send no gradient through the score weights: DFL alone leaves the class logits untouched', () => {
    const head = tf.tensor4d([...tinyHead(), ...tinyHead()], [2, 2, 2, 17]);
    const rows = gradRows(tf.tidy(() => tf.grad(lossOf({ qflWeight: 0, giouWeight: 0 }))(head)));
    expect(rows.every((r) => r[0] === 0)).toBe(true);
    // DFL moves only the positives' bins.
    rows.forEach((r, i) => expect(r.slice(1).some((v) => v !== 0)).toBe(i === 0 || i === 7));
    head.dispose();
  });
});
