import * as tf from '@tensorflow/tfjs';
import type { AnchorGrid } from './anchors';
import type { Assignment, GtObject } from './assignment';
import { alignedGiou, alignedIou } from './box-tensor';
import { gatherRows } from '../graph/ops/gather';
import { qualityFocalLossSum } from './quality-focal-loss';
import { detached } from './stop-gradient';

/**
 * The GFL detection loss of NanoDet (Li et al., "Generalized Focal Loss", NeurIPS 2020), on
 * tfjs-core ops so it is differentiable in the student's raw head outputs.
 *
 * Input: one tensor per level, [N,H,W,numClasses + 4·(regMax+1)] NHWC logits (the class logits,
 * then the left, top, right, bottom bin logits), levels in AnchorGrid order, and one ATSS
 * Assignment per image. The reductions are mmdetection's GFLHead (the reference code), for one
 * process holding the whole batch:
 * - QFL (beta 2, weight 1): Sum over all anchors and classes of BCE(x, y)·|y − sigmoid(x)|^beta,
 *   y = IoU(decoded predicted box, assigned GT box) at the positive's GT class and 0 elsewhere,
 *   divided by Sum over images of max(P_i, 1), P_i the positives of image i (mmdet's sampling
 *   result counts each image's positives as at least 1).
 * - DFL (weight 0.25): per positive and edge, with d = GT edge distance / stride clamped to
 *   [0, regMax − 0.1] (bbox2distance's eps 0.1), CE(floor d)·(floor d + 1 − d) +
 *   CE(floor d + 1)·(d − floor d), averaged over the 4 edges.
 * - GIoU (weight 2): 1 − GIoU(decoded predicted box, GT box) per positive.
 * DFL and GIoU are weighted per positive by w = max_c sigmoid(class logit) and divided by
 * max(Sum w over the batch, 1): mmdet clamps that average factor at 1, so while the scores are
 * low (w ≈ 0.17 at initialisation) the terms are not inflated. The IoU target y and the weights w
 * are constants for the gradient (detached), computed on the device without reading values
 * back. `terms` are the unweighted losses: loss = qflWeight·qfl + dflWeight·dfl + giouWeight·giou.
 * With no positive in the batch, QFL pushes every score towards 0 (divided by the number of
 * images) and dfl = giou = 0, as in mmdet.
 */
export interface GflLossOptions {
  /** QFL focusing exponent; 2. */
  qflBeta?: number;
  qflWeight?: number;
  dflWeight?: number;
  giouWeight?: number;
}

export const DEFAULT_GFL_LOSS_OPTIONS: Required<GflLossOptions> = { qflBeta: 2, qflWeight: 1, dflWeight: 0.25, giouWeight: 2 };

export interface GflLossInput {
  /** Per level [N,H,W,numClasses + 4·(regMax+1)], NHWC logits, in the grid's level order. */
  outputs: readonly tf.Tensor[];
  /** One per image of the batch, from the same grid; GT classes come from `gts[k].classIndex`. */
  assignments: readonly Assignment[];
  grid: AnchorGrid;
  regMax: number;
}

export interface GflLossResult {
  loss: tf.Scalar;
  /** Unweighted terms; the caller disposes them with `loss`. */
  terms: { qfl: tf.Scalar; dfl: tf.Scalar; giou: tf.Scalar };
  /** Positive anchors over the whole batch. */
  numPositives: number;
}

/**
 * Per-level head outputs [N,H_l,W_l,C] → [N, A, C], A = grid.count, rows in AnchorGrid order
 * (level by level, row-major inside a level). Checks every level's size against the grid.
 */
export function flattenHeadOutputs(outputs: readonly tf.Tensor[], grid: AnchorGrid): tf.Tensor3D {
  const [n, c] = checkHeadOutputs(outputs, grid);
  return tf.tidy(() => tf.concat(outputs.map((t) => tf.reshape(t, [n, -1, c])), 1) as tf.Tensor3D);
}

/** Checks one [N,H,W,C] tensor per grid level, all with the same N and C; returns [N, C]. */
function checkHeadOutputs(outputs: readonly tf.Tensor[], grid: AnchorGrid): [number, number] {
  if (outputs.length !== grid.levels.length) {
    throw new Error(`Got ${outputs.length} head outputs for a grid of ${grid.levels.length} levels (strides ${grid.levels.map((l) => l.stride).join(', ')}).`);
  }
  const [n = 0, , , c = 0] = outputs[0]!.shape;
  outputs.forEach((t, l) => {
    const level = grid.levels[l]!;
    const [tn, th, tw, tc] = t.shape;
    if (t.rank !== 4 || tn !== n || th !== level.height || tw !== level.width || tc !== c) {
      throw new Error(
        `Head output ${l} has shape [${t.shape.join(',')}], expected [${n},${level.height},${level.width},${c}] (NHWC) for stride ${level.stride} at input ${grid.inputSize}.`,
      );
    }
  });
  return [n, c];
}

/**
 * Expected bin index of each edge distribution: softmax over the last axis, then
 * Sum_i i·p_i. [..., bins] → [...]; in units of the stride.
 */
export function expectedDistances(binLogits: tf.Tensor): tf.Tensor {
  const bins = binLogits.shape[binLogits.rank - 1]!;
  return tf.tidy(() => tf.sum(tf.mul(tf.softmax(binLogits), tf.range(0, bins, 1, 'float32')), -1));
}

/**
 * GFL box decoding on tensors, differentiable: edge distributions → expected distances (bins)
 * → pixels (· stride) → box around the anchor centre.
 * binLogits [P, 4·bins] or [P, 4, bins] (edges left, top, right, bottom), centres [P,2]
 * (x, y in input pixels), strides [P] → boxes [P,4] x1, y1, x2, y2 in input pixels, not clipped:
 * (cx − l·s, cy − t·s, cx + r·s, cy + b·s). Shared by the detection loss and distillation (LD, RM).
 */
export function decodeBoxesTensor(binLogits: tf.Tensor, centres: tf.Tensor2D, strides: tf.Tensor1D): tf.Tensor2D {
  const p = binLogits.shape[0]!;
  const lastSize = binLogits.shape[binLogits.rank - 1]!;
  const bins = binLogits.rank === 3 ? lastSize : lastSize / 4;
  if (!((binLogits.rank === 2 || (binLogits.rank === 3 && binLogits.shape[1] === 4)) && Number.isInteger(bins) && bins >= 2)) {
    throw new Error(`decodeBoxesTensor needs bin logits of shape [P, 4·bins] or [P, 4, bins], got [${binLogits.shape.join(',')}].`);
  }
  if (centres.shape[0] !== p || centres.shape[1] !== 2 || strides.shape[0] !== p) {
    throw new Error(
      `decodeBoxesTensor: ${p} rows of bin logits need centres [${p},2] and strides [${p}], got [${centres.shape.join(',')}] and [${strides.shape.join(',')}].`,
    );
  }
  return tf.tidy(() => {
    const distances = tf.mul(expectedDistances(tf.reshape(binLogits, [p, 4, bins])), tf.reshape(strides, [p, 1]));
    const sign = tf.tensor2d([-1, -1, 1, 1], [1, 4]);
    return tf.add(tf.concat([centres, centres], 1), tf.mul(distances, sign)) as tf.Tensor2D;
  });
}

/**
 * Quality Focal Loss, elementwise: BCE-with-logits(x, y)·|y − sigmoid(x)|^beta, with
 * BCE = softplus(x) − x·y (stable for large |x|). `target` y in [0,1] broadcasts against
 * `logits`; pass a constant (or stopGradient'd) target. Same shape as the broadcast out.
 */
export function qualityFocalLoss(logits: tf.Tensor, target: tf.Tensor | number, beta = 2): tf.Tensor {
  return tf.tidy(() => {
    const bce = tf.sub(tf.softplus(logits), tf.mul(logits, target));
    const gap = tf.sub(target, tf.sigmoid(logits));
    // square has a clean gradient at 0; the general power goes through |gap|.
    const modulator = beta === 2 ? tf.square(gap) : tf.pow(tf.abs(gap), beta);
    return tf.mul(bce, modulator);
  });
}

/** mmdet's bbox2distance clamps target distances at max_dis − eps, eps = 0.1. */
const DISTANCE_EPS = 0.1;

/**
 * Writes the DFL "two-hot" weights of target distance d (in bins) into out[offset .. offset+bins):
 * d is clamped to [0, regMax − 0.1]; bin floor(d) gets floor(d) + 1 − d, bin floor(d) + 1 gets
 * d − floor(d). Returns the clamped d.
 */
function writeTwoHot(out: Float32Array, offset: number, d: number, regMax: number): number {
  const clamped = Math.min(Math.max(d, 0), regMax - DISTANCE_EPS);
  const left = Math.floor(clamped);
  out[offset + left] = left + 1 - clamped;
  out[offset + left + 1] = clamped - left;
  return clamped;
}

/**
 * Distribution Focal Loss per edge: binLogits [..., bins] and target distances (in bins, row-major
 * over the leading axes, clamped to [0, regMax − 0.1], regMax = bins − 1) → [...]:
 * −[(l + 1 − d)·log p_l + (d − l)·log p_{l+1}], l = floor(d), p = softmax over the bins.
 */
export function distributionFocalLoss(binLogits: tf.Tensor, targets: ArrayLike<number>): tf.Tensor {
  const bins = binLogits.shape[binLogits.rank - 1]!;
  const rows = binLogits.size / bins;
  if (targets.length !== rows) {
    throw new Error(`distributionFocalLoss: ${rows} distributions of ${bins} bins need ${rows} target distances, got ${targets.length}.`);
  }
  const twoHot = new Float32Array(binLogits.size);
  for (let i = 0; i < rows; i++) writeTwoHot(twoHot, i * bins, targets[i]!, bins - 1);
  return tf.tidy(() => tf.neg(tf.sum(tf.mul(tf.tensor(twoHot, binLogits.shape), tf.logSoftmax(binLogits)), -1)));
}

/** Label tables of a batch (R = N·A rows), built on the CPU from the assignments: per positive row, in row order. */
interface BatchTargets {
  numPositives: number;
  /** Sum over images of max(positives of the image, 1): QFL's average factor. */
  qflAvgFactor: number;
  /** [P] the positive rows (image · A + anchor). */
  rows: Int32Array;
  /** [P·2] each positive's row and GT class: where its IoU target goes in the [R, classes] block. */
  rowAndClass: Int32Array;
  /** [P·4] assigned GT box. */
  gtBoxes: Float32Array;
  /** [P·4·bins] DFL two-hot weights. */
  twoHot: Float32Array;
  /** [P·2] anchor centres and [P] strides. */
  centres: Float32Array;
  strides: Float32Array;
}

function buildTargets(assignments: readonly Assignment[], grid: AnchorGrid, numClasses: number, regMax: number): BatchTargets {
  const a = grid.count;
  const bins = regMax + 1;
  const anchorStride = new Float32Array(a);
  for (const level of grid.levels) anchorStride.fill(level.stride, level.offset, level.offset + level.height * level.width);

  const positives: { row: number; anchor: number; gt: GtObject }[] = [];
  let qflAvgFactor = 0;
  assignments.forEach((asg, n) => {
    if (asg.grid.count !== a || asg.assignedGt.length !== a || asg.grid.levels.some((l, i) => l.stride !== grid.levels[i]?.stride)) {
      throw new Error(`Assignment ${n} was made on a different anchor grid (${asg.grid.count} anchors) than the loss's (${a}): assign on the grid of the head outputs.`);
    }
    asg.gts.forEach((gt, k) => {
      if (!(Number.isInteger(gt.classIndex) && gt.classIndex >= 0 && gt.classIndex < numClasses)) {
        throw new Error(`Image ${n}, GT ${k}: class index ${gt.classIndex} is outside the head's ${numClasses} classes.`);
      }
    });
    const positivesBefore = positives.length;
    for (let i = 0; i < a; i++) {
      const g = asg.assignedGt[i]!;
      if (g < 0) continue;
      const gt = asg.gts[g];
      if (!gt) throw new Error(`Image ${n}: anchor ${i} is assigned to GT ${g}, but the assignment has ${asg.gts.length} GTs.`);
      positives.push({ row: n * a + i, anchor: i, gt });
    }
    qflAvgFactor += Math.max(positives.length - positivesBefore, 1);
  });

  const p = positives.length;
  const out: BatchTargets = {
    numPositives: p,
    qflAvgFactor,
    rows: new Int32Array(p),
    rowAndClass: new Int32Array(p * 2),
    gtBoxes: new Float32Array(p * 4),
    twoHot: new Float32Array(p * 4 * bins),
    centres: new Float32Array(p * 2),
    strides: new Float32Array(p),
  };
  positives.forEach(({ row, anchor, gt }, k) => {
    out.rows[k] = row;
    out.rowAndClass.set([row, gt.classIndex], k * 2);
    out.gtBoxes.set(gt.box, k * 4);
    const cx = grid.centres[2 * anchor]!;
    const cy = grid.centres[2 * anchor + 1]!;
    const s = anchorStride[anchor]!;
    out.centres.set([cx, cy], k * 2);
    out.strides[k] = s;
    const [x1, y1, x2, y2] = gt.box;
    [(cx - x1) / s, (cy - y1) / s, (x2 - cx) / s, (y2 - cy) / s].forEach((d, e) => writeTwoHot(out.twoHot, (k * 4 + e) * bins, d, regMax));
  });
  return out;
}

/** The GFL loss of a batch; see the module comment. The caller disposes `loss` and `terms`. */
export function gflLoss(input: GflLossInput, options: GflLossOptions = {}): GflLossResult {
  const { outputs, assignments, grid, regMax } = input;
  const { qflBeta, qflWeight, dflWeight, giouWeight } = { ...DEFAULT_GFL_LOSS_OPTIONS, ...options };
  if (!Number.isInteger(regMax) || regMax < 1) throw new Error(`regMax must be a positive integer (NanoDet: 10), got ${regMax}.`);
  const bins = regMax + 1;
  const [n, channels] = checkHeadOutputs(outputs, grid);
  const numClasses = channels - 4 * bins;
  if (numClasses < 1) {
    throw new Error(`Head outputs have ${channels} channels, too few for 4 edges x ${bins} bins plus at least one class: check regMax (${regMax}).`);
  }
  if (assignments.length !== n) throw new Error(`Got ${assignments.length} assignments for a batch of ${n} images: pass one per image.`);
  for (const [name, v] of Object.entries({ qflBeta, qflWeight, dflWeight, giouWeight })) {
    if (!(Number.isFinite(v) && v >= 0)) throw new Error(`GFL loss option ${name} must be a finite number >= 0, got ${v}.`);
  }

  const t = buildTargets(assignments, grid, numClasses, regMax);
  const rows = n * grid.count;
  const p = t.numPositives;
  // QFL is dense over all N·A rows and classes (the background pushes every score down); the
  // box terms need only the positive rows, gathered first (a few dozen of the 3,549 rows an image
  // has at 416), with a gradient scattered back to their places.
  const result = tf.tidy(() => {
    const flat = tf.reshape(flattenHeadOutputs(outputs, grid), [rows, channels]) as tf.Tensor2D;
    const cls = tf.slice(flat, [0, 0], [rows, numClasses]);
    const qflOf = (target: tf.Tensor) => tf.div(qflBeta === 2 ? qualityFocalLossSum(cls, target) : tf.sum(qualityFocalLoss(cls, target, qflBeta)), t.qflAvgFactor) as tf.Scalar;
    if (p === 0) {
      const qfl = qflOf(tf.zerosLike(cls));
      return { loss: tf.mul(qfl, qflWeight) as tf.Scalar, qfl, dfl: tf.scalar(0), giou: tf.scalar(0) };
    }
    const positive = gatherRows(flat, t.rows);
    const reg = tf.reshape(tf.slice(positive, [0, numClasses], [p, 4 * bins]), [p, 4, bins]);
    const gtBoxes = tf.tensor2d(t.gtBoxes, [p, 4]);
    const pred = decodeBoxesTensor(reg, tf.tensor2d(t.centres, [p, 2]), tf.tensor1d(t.strides));

    // Soft QFL target: the IoU at each positive's row and GT class, 0 elsewhere; a constant for the gradient.
    const target = detached(() => tf.scatterND(tf.tensor2d(t.rowAndClass, [p, 2], 'int32'), alignedIou(pred, gtBoxes), [rows, numClasses]));
    const qfl = qflOf(target);

    // NanoDet's per-positive weight: the highest class score, detached.
    const weight = detached(() => tf.max(tf.sigmoid(tf.slice(positive, [0, 0], [p, numClasses])), 1));
    const weightSum = tf.maximum(tf.sum(weight), 1); // mmdet: avg_factor.clamp_(min=1)
    const dflPerRow = tf.mean(tf.neg(tf.sum(tf.mul(tf.tensor3d(t.twoHot, [p, 4, bins]), tf.logSoftmax(reg)), -1)), 1);
    const dfl = tf.div(tf.sum(tf.mul(weight, dflPerRow)), weightSum) as tf.Scalar;
    const giouPerRow = tf.sub(1, alignedGiou(pred, gtBoxes));
    const giou = tf.div(tf.sum(tf.mul(weight, giouPerRow)), weightSum) as tf.Scalar;

    const loss = tf.addN([tf.mul(qfl, qflWeight), tf.mul(dfl, dflWeight), tf.mul(giou, giouWeight)]) as tf.Scalar;
    return { loss, qfl, dfl, giou };
  });
  return { loss: result.loss, terms: { qfl: result.qfl, dfl: result.dfl, giou: result.giou }, numPositives: t.numPositives };
}
