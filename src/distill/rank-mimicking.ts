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
 * Computation: on the qualifying GTs' positive rows only (P, a few dozen of the N·A anchor rows),
 * gathered segment by segment (the student's with a gradient scattered back to their places,
 * `gatherRows`), with per-GT segments as a constant 0/1 matrix [J, P] (J qualifying GTs) for the
 * per-GT softmax and sums. The teacher's rows are read off the tape.
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
import { gatherRows } from '../graph/ops/gather';
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

/** A GT that takes part: its image, index, and positive rows (n·A + anchor, ascending) from `start` in the gathered rows. */
interface Segment {
  image: number;
  gt: number;
  anchors: Int32Array;
  start: number;
}

/** Shift that keeps exp finite; entries outside a segment get this much below its max. */
const OUTSIDE = 1e30;

/** Log-softmax of z [P] inside each segment (segments [J,P] 0/1, every row in exactly one segment). */
function segmentLogSoftmax(z: tf.Tensor1D, segments: tf.Tensor2D): tf.Tensor1D {
  return tf.tidy(() => {
    const [j, p] = segments.shape;
    const masked = tf.add(tf.mul(segments, tf.reshape(z, [1, p])), tf.mul(tf.sub(segments, 1), OUTSIDE));
    // The max is only a shift: log-softmax does not depend on it, so no gradient through it.
    const max = detached(() => tf.max(masked, 1).reshape([j, 1]));
    const maxRow = tf.reshape(tf.matMul(segments, max, true, false), [p]);
    const e = tf.exp(tf.sub(z, maxRow));
    const lse = tf.add(max, tf.log(tf.matMul(segments, tf.reshape(e, [p, 1]))));
    const lseRow = tf.reshape(tf.matMul(segments, lse, true, false), [p]);
    return tf.sub(z, lseRow) as tf.Tensor1D;
  });
}

/** KL(softmax(zT) || softmax(zS)) per segment [J], and both distributions per row [P]. */
function segmentKl(zT: tf.Tensor1D, zS: tf.Tensor1D, segments: tf.Tensor2D) {
  const p = zT.shape[0];
  const logT = segmentLogSoftmax(zT, segments);
  const logS = segmentLogSoftmax(zS, segments);
  const pT = tf.exp(logT) as tf.Tensor1D;
  const pS = tf.exp(logS) as tf.Tensor1D;
  const perRow = tf.mul(pT, tf.sub(logT, logS));
  const kl = tf.reshape(tf.matMul(segments, tf.reshape(perRow, [p, 1])), [-1]) as tf.Tensor1D;
  return { kl, pT, pS };
}

/** Score of column index[r] of each row: [P, K] → [P]. */
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
  const a = grid.count;
  const tables = rowTables(grid, assignments.length);
  const segments: Segment[] = [];
  // Per positive row of a qualifying GT, in segment order: its row, segment, classes and GT box.
  const rows: number[] = [];
  const segmentOf: number[] = [];
  const classOf: number[] = [];
  const channelOf: number[] = [];
  const gtBoxes: number[] = [];
  const taken = new Set<number>();
  assignments.forEach((asg, img) => {
    asg.gts.forEach((gt, g) => {
      if (!(Number.isInteger(gt.classIndex) && gt.classIndex >= 0 && gt.classIndex < classesS)) {
        throw new Error(`RM: image ${img}, GT ${g} has class ${gt.classIndex}, outside the student's ${classesS} classes.`);
      }
      const anchors = asg.positives[g] ?? new Int32Array(0);
      if (anchors.length < p.minPositives) return;
      segments.push({ image: img, gt: g, anchors, start: rows.length });
      for (const i of anchors) {
        const r = img * a + i;
        if (taken.has(r)) throw new Error(`RM: image ${img}, anchor ${i} is a positive of two GTs; each anchor has one GT at most.`);
        taken.add(r);
        rows.push(r);
        segmentOf.push(segments.length - 1);
        classOf.push(gt.classIndex);
        channelOf.push(channelT[gt.classIndex] ?? -1);
        gtBoxes.push(...gt.box);
      }
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
    const positives = rows.length;
    const rowIndex = Int32Array.from(rows);
    // [segments, positives]: 1 where the row is one of the segment's anchors.
    const segmentMatrix = oneHotColumns(Int32Array.from(segmentOf), j);
    const studentRows = (levels: tf.Tensor4D[]) => gatherRows(flattenRows(levels, grid), rowIndex);
    const teacherRows = (levels: tf.Tensor4D[]) => detached(() => tf.gather(flattenRows(levels, grid), rowIndex));

    // Class ranks: the GT class's score at each positive.
    const scoreT = rowScores(teacherRows(clsT), Int32Array.from(channelOf), p.scoreSpace);
    const scoreS = rowScores(studentRows(clsS), Int32Array.from(classOf), p.scoreSpace);
    const cls = segmentKl(tf.div(scoreT, p.tau), tf.div(scoreS, p.tau), segmentMatrix);

    // Localisation ranks: IoU of each positive's decoded box with its GT.
    const centres = tf.tensor2d(Float32Array.from(rows.flatMap((r) => [tables.centres[2 * r]!, tables.centres[2 * r + 1]!])), [positives, 2]);
    const strides = tf.tensor1d(Float32Array.from(rows, (r) => tables.strides[r]!));
    const gt = tf.tensor2d(gtBoxes, [positives, 4]);
    const iou = (box: tf.Tensor2D, bins: number) => alignedIou(decodeBoxesTensor(tf.reshape(box, [positives, 4, bins]), centres, strides), gt);
    const iouT = detached(() => iou(teacherRows(boxT), binsT));
    const iouS = iou(studentRows(boxS), binsS);
    const loc = segmentKl(tf.div(iouT, p.tau), tf.div(iouS, p.tau), segmentMatrix);

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
          const pick = (row: number) => Array.from(s.anchors, (_, i) => v[row * positives + s.start + i] ?? 0);
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
