/**
 * RM, rank mimicking: Li, Wu, Su, Wang, Yuan, "Knowledge Distillation for Object Detection via
 * Rank Mimicking and Prediction-guided Feature Imitation", AAAI 2022.
 *
 * For each GT j of each image with at least `minPositives` (2) positive anchors A_j (the shared
 * assignment's `positives[j]`, ascending anchor order): s_i, i in A_j, is the score of the GT's
 * class at anchor i, read for the teacher and the student at the SAME anchors in the SAME order
 * (never sorted separately: the correspondence is what the method transfers). Rank
 * distributions R^T = softmax_{i in A_j}(s^T_i / tau), R^S likewise, and
 *   L_cls,j = KL(R^T || R^S) = Sum_i R^T_i (log R^T_i − log R^S_i).
 * The localisation rank does the same with s_i = IoU(decoded box of anchor i, GT j), the box
 * decoded from the model's own edge distributions (GFL integral, `decodeBoxesTensor`); the
 * student's IoU is differentiable, so L_loc trains its box branch.
 *   L_RM = weight · mean over qualifying GTs (all images) of (L_cls,j + L_loc,j); 0 without one.
 *
 * Score space (`scoreSpace`): 'probability' (default) takes s = sigmoid(class logit), as the
 * paper ranks the detector's scores, the ones NMS sorts by; bounded in [0, 1], so with tau 1 the
 * rank distribution is soft (the largest ratio is e) and no logit outlier dominates it.
 * 'logit' ranks the raw logits: a sharper distribution, the choice for logit-scale teachers.
 *
 * Label spaces: the GT class is in the student's label space. `teacherClassIndex[k]` names the
 * teacher channel that holds student class k (e.g. a COCO teacher (80) and a VOC student (20):
 * VOC 'person' 14 → COCO 0); null means both share one label space (same class count).
 *
 * Inputs: clsT [N,H,W,K_T], clsS [N,H,W,K_S] class logits per level; boxT, boxS
 * [N,H,W,4·(regMax+1)] box-distribution logits per level (edges left, top, right, bottom; T and S
 * may use different regMax); one Assignment per image on the grid of these levels.
 * Defaults: weight 4, tau 1, probabilities, minPositives 2, teacherClassIndex null.
 *
 * Computation: dense over all N·A anchor rows, with per-GT segments as a constant 0/1 matrix
 * [J, N·A] (J qualifying GTs) for the per-GT softmax and sums: no tf.gather, whose gradient the
 * wasm backend cannot run. Teacher inputs are wrapped in stopGradient.
 *
 * Maps (withMaps), per qualifying GT: 'rank-cls' and 'rank-loc', `distribution` panels over its
 * positive anchors (bars in anchor order; row 0 R^T, row 1 R^S) with each one's argmax anchor.
 * Terms: 'cls', 'loc' (means over qualifying GTs, before weight).
 */
import * as tf from '@tensorflow/tfjs';
import type { Assignment } from '../detect/assignment';
import { alignedIou } from '../detect/box-tensor';
import { decodeBoxesTensor } from '../detect/gfl-loss';
import { oneHotColumns, oneHotRows } from '../detect/one-hot';
import { binsOf, distributionMap, flattenRows, rowTables, setDistribution, teacherChannels } from './head-outputs';
import { checkAssignments, checkLevelPairs } from './levels';
import { readValues } from './readback';
import { detached, stopGradient, type DistributionPanelMap, type MethodResult, type PanelMap } from './types';

export interface RankMimickingParams {
  weight: number;
  /** Softmax temperature of the rank distributions. */
  tau: number;
  scoreSpace: 'probability' | 'logit';
  /** GTs with fewer positives have no ranking and are skipped. */
  minPositives: number;
  /** Student class k → teacher channel; null: the same label space. */
  teacherClassIndex: readonly number[] | null;
}

export const RANK_MIMICKING_DEFAULTS: Readonly<RankMimickingParams> = {
  weight: 4,
  tau: 1,
  scoreSpace: 'probability',
  minPositives: 2,
  teacherClassIndex: null,
};

export interface RankMimickingInputs {
  clsT: tf.Tensor4D[];
  clsS: tf.Tensor4D[];
  boxT: tf.Tensor4D[];
  boxS: tf.Tensor4D[];
  assignments: Assignment[];
}

/** A GT that takes part: its image, index and positive rows (n·A + anchor, ascending). */
interface Segment {
  image: number;
  gt: number;
  anchors: Int32Array;
  rows: number[];
}

/** Shift that keeps exp finite; entries outside a segment get this much below its max. */
const OUTSIDE = 1e30;

/**
 * Log-softmax of z [R] inside each segment (segments [J,R] 0/1, one segment per row at most);
 * 0 on rows outside every segment (`inside` [R] 0/1).
 */
function segmentLogSoftmax(z: tf.Tensor1D, segments: tf.Tensor2D, inside: tf.Tensor1D): tf.Tensor1D {
  return tf.tidy(() => {
    const [j, r] = segments.shape;
    // Rows outside are zeroed first so exp never sees their (possibly large) values.
    const zIn = tf.mul(z, inside);
    const masked = tf.add(tf.mul(segments, tf.reshape(zIn, [1, r])), tf.mul(tf.sub(segments, 1), OUTSIDE));
    // The max is only a shift: log-softmax does not depend on it, so no gradient through it.
    const max = detached(() => tf.max(masked, 1).reshape([j, 1]));
    const maxRow = tf.reshape(tf.matMul(segments, max, true, false), [r]);
    const e = tf.mul(tf.exp(tf.sub(zIn, maxRow)), inside);
    const lse = tf.add(max, tf.log(tf.matMul(segments, tf.reshape(e, [r, 1]))));
    const lseRow = tf.reshape(tf.matMul(segments, lse, true, false), [r]);
    return tf.mul(tf.sub(zIn, lseRow), inside) as tf.Tensor1D;
  });
}

/** KL(softmax(zT) || softmax(zS)) per segment [J], and both distributions per row [R]. */
function segmentKl(zT: tf.Tensor1D, zS: tf.Tensor1D, segments: tf.Tensor2D, inside: tf.Tensor1D) {
  const r = inside.shape[0];
  const logT = segmentLogSoftmax(zT, segments, inside);
  const logS = segmentLogSoftmax(zS, segments, inside);
  const pT = tf.mul(tf.exp(logT), inside) as tf.Tensor1D;
  const pS = tf.mul(tf.exp(logS), inside) as tf.Tensor1D;
  const perRow = tf.mul(pT, tf.sub(logT, logS));
  const kl = tf.reshape(tf.matMul(segments, tf.reshape(perRow, [r, 1])), [-1]) as tf.Tensor1D;
  return { kl, pT, pS };
}

/** Score of column index[r] of each row (0 where index is −1): [R, K] → [R]. */
function rowScores(logits: tf.Tensor2D, index: Int32Array, space: RankMimickingParams['scoreSpace']): tf.Tensor1D {
  return tf.tidy(() => {
    const values = space === 'probability' ? tf.sigmoid(logits) : logits;
    return tf.sum(tf.mul(values, oneHotRows(index, logits.shape[1])), 1) as tf.Tensor1D;
  });
}

export function rankMimicking(
  inputs: RankMimickingInputs,
  params: Partial<RankMimickingParams> = {},
  options: { withMaps?: boolean } = {},
): MethodResult {
  const p = { ...RANK_MIMICKING_DEFAULTS, ...params };
  const { clsT, clsS, boxT, boxS, assignments } = inputs;
  checkLevelPairs('RM', 'class-logit', clsT, clsS);
  checkLevelPairs('RM', 'box-logit', boxT, boxS);
  checkLevelPairs('RM', 'class/box', clsS, boxS);
  checkAssignments('RM', assignments, clsS);
  if (!(p.tau > 0)) throw new Error(`RM: tau must be positive, got ${p.tau}.`);
  if (!(Number.isInteger(p.minPositives) && p.minPositives >= 2)) {
    throw new Error(`RM: minPositives must be an integer >= 2 (a ranking needs two anchors), got ${p.minPositives}.`);
  }
  const binsT = binsOf('RM', 'teacher', boxT);
  const binsS = binsOf('RM', 'student', boxS);
  const classesS = (clsS[0] as tf.Tensor4D).shape[3];
  const channelT = teacherChannels('RM', p.teacherClassIndex, (clsT[0] as tf.Tensor4D).shape[3], classesS);

  const grid = (assignments[0] as Assignment).grid;
  const n = assignments.length;
  const a = grid.count;
  const rows = n * a;
  const tables = rowTables(grid, n);
  const segmentOfRow = new Int32Array(rows).fill(-1);
  const classOfRow = new Int32Array(rows).fill(-1);
  const channelOfRow = new Int32Array(rows).fill(-1);
  const inside = new Float32Array(rows);
  const gtBoxes = Float32Array.from(tables.boxes); // anchor boxes outside segments keep IoUs finite
  const segments: Segment[] = [];
  assignments.forEach((asg, img) => {
    asg.gts.forEach((gt, g) => {
      if (!(Number.isInteger(gt.classIndex) && gt.classIndex >= 0 && gt.classIndex < classesS)) {
        throw new Error(`RM: image ${img}, GT ${g} has class ${gt.classIndex}, outside the student's ${classesS} classes.`);
      }
      const anchors = asg.positives[g] ?? new Int32Array(0);
      if (anchors.length < p.minPositives) return;
      const s = segments.length;
      const segRows: number[] = [];
      for (const i of anchors) {
        const r = img * a + i;
        if (segmentOfRow[r] !== -1) throw new Error(`RM: image ${img}, anchor ${i} is a positive of two GTs; each anchor has one GT at most.`);
        segmentOfRow[r] = s;
        classOfRow[r] = gt.classIndex;
        channelOfRow[r] = channelT[gt.classIndex] ?? -1;
        inside[r] = 1;
        gtBoxes.set(gt.box, r * 4);
        segRows.push(r);
      }
      segments.push({ image: img, gt: g, anchors, rows: segRows });
    });
  });

  const maps: PanelMap[] = [];
  const out = tf.tidy(() => {
    if (segments.length === 0) {
      // Wire every level of every input into the zero loss, so each gets a gradient of 0 rather
      // than none (the teacher's through stopGradient, as on the normal path).
      const wired = [...clsS, ...boxS, ...clsT.map((t) => stopGradient(t)), ...boxT.map((t) => stopGradient(t))];
      const zero = tf.mul(tf.addN(wired.map((t) => tf.sum(t))), 0) as tf.Scalar;
      return { loss: zero, terms: { cls: zero.clone(), loc: zero.clone() } };
    }
    const j = segments.length;
    // [segments, rows]: 1 where the row is one of the segment's anchors (a broadcast Equal on the
    // device took 20 ms for 11 segments over the 14,196 rows of a batch of 4 at 416 on wasm).
    const segmentMatrix = oneHotColumns(segmentOfRow, j);
    const insideT = tf.tensor1d(inside);

    // Class ranks: the GT class's score at each positive.
    const scoreT = rowScores(flattenRows(clsT.map((t) => stopGradient(t)), grid), channelOfRow, p.scoreSpace);
    const scoreS = rowScores(flattenRows(clsS, grid), classOfRow, p.scoreSpace);
    const cls = segmentKl(tf.div(scoreT, p.tau), tf.div(scoreS, p.tau), segmentMatrix, insideT);

    // Localisation ranks: IoU of each positive's decoded box with its GT.
    const centres = tf.tensor2d(tables.centres, [rows, 2]);
    const strides = tf.tensor1d(tables.strides);
    const gt = tf.tensor2d(gtBoxes, [rows, 4]);
    const iou = (levels: tf.Tensor4D[], bins: number) =>
      alignedIou(decodeBoxesTensor(tf.reshape(flattenRows(levels, grid), [rows, 4, bins]), centres, strides), gt);
    const iouT = iou(boxT.map((t) => stopGradient(t)), binsT);
    const iouS = iou(boxS, binsS);
    const loc = segmentKl(tf.div(iouT, p.tau), tf.div(iouS, p.tau), segmentMatrix, insideT);

    const clsTerm = tf.mean(cls.kl) as tf.Scalar;
    const locTerm = tf.mean(loc.kl) as tf.Scalar;
    if (options.withMaps) {
      const panels = segments.map((s) => {
        // Own copies of the positions: a map's buffers may be transferred to the UI.
        const fields = (name: string) => ({
          name,
          positionKind: 'anchor' as const,
          positions: Int32Array.from(s.anchors),
          image: s.image,
          gt: s.gt,
        });
        return [distributionMap(fields('rank-cls')), distributionMap(fields('rank-loc'))] as const;
      });
      maps.push(...panels.flat());
      // One read of the four [R] rows: R^T, R^S for classes, then for IoUs.
      readValues(tf.stack([cls.pT, cls.pS, loc.pT, loc.pS]), (v) => {
        segments.forEach((s, k) => {
          const pick = (row: number) => s.rows.map((r) => v[row * rows + r] ?? 0);
          const [clsMap, locMap] = panels[k] as readonly [DistributionPanelMap, DistributionPanelMap];
          setDistribution(clsMap, pick(0), pick(1));
          setDistribution(locMap, pick(2), pick(3));
        });
      });
    }
    const loss = tf.mul(tf.add(clsTerm, locTerm), p.weight) as tf.Scalar;
    return { loss, terms: { cls: clsTerm, loc: locTerm } };
  });
  return options.withMaps ? { ...out, maps } : out;
}
