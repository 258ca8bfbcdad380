import * as tf from '@tensorflow/tfjs';
import type { AnchorGrid } from './anchors';
import type { Assignment } from './assignment';
import { alignedGiou, alignedIou } from './box-tensor';
import { oneHotRows } from './one-hot';
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

/** Per-row label tables of a batch (R = N·A rows), built on the CPU from the assignments. */
interface BatchTargets {
  numPositives: number;
  /** Sum over images of max(positives of the image, 1): QFL's average factor. */
  qflAvgFactor: number;
  /** [R] GT class of positive rows, −1 elsewhere. */
  classOfRow: Int32Array;
  /** [R] 1 on positive rows. */
  positive: Float32Array;
  /** [R·4] assigned GT box; the anchor's own box on negative rows, so every IoU stays finite. */
  gtBoxes: Float32Array;
  /** [R·4·bins] DFL two-hot weights, zero on negative rows. */
  twoHot: Float32Array;
  /** [R·2] anchor centres and [R] strides. */
  centres: Float32Array;
  strides: Float32Array;
}

function buildTargets(assignments: readonly Assignment[], grid: AnchorGrid, numClasses: number, regMax: number): BatchTargets {
  const a = grid.count;
  const bins = regMax + 1;
  const rows = assignments.length * a;
  const out: BatchTargets = {
    numPositives: 0,
    qflAvgFactor: 0,
    classOfRow: new Int32Array(rows).fill(-1),
    positive: new Float32Array(rows),
    gtBoxes: new Float32Array(rows * 4),
    twoHot: new Float32Array(rows * 4 * bins),
    centres: new Float32Array(rows * 2),
    strides: new Float32Array(rows),
  };
  const anchorStride = new Float32Array(a);
  for (const level of grid.levels) anchorStride.fill(level.stride, level.offset, level.offset + level.height * level.width);

  assignments.forEach((asg, n) => {
    if (asg.grid.count !== a || asg.assignedGt.length !== a || asg.grid.levels.some((l, i) => l.stride !== grid.levels[i]?.stride)) {
      throw new Error(`Assignment ${n} was made on a different anchor grid (${asg.grid.count} anchors) than the loss's (${a}): assign on the grid of the head outputs.`);
    }
    asg.gts.forEach((gt, k) => {
      if (!(Number.isInteger(gt.classIndex) && gt.classIndex >= 0 && gt.classIndex < numClasses)) {
        throw new Error(`Image ${n}, GT ${k}: class index ${gt.classIndex} is outside the head's ${numClasses} classes.`);
      }
    });
    out.centres.set(grid.centres, n * a * 2);
    out.strides.set(anchorStride, n * a);
    out.gtBoxes.set(grid.boxes, n * a * 4);
    const positivesBefore = out.numPositives;
    for (let i = 0; i < a; i++) {
      const g = asg.assignedGt[i]!;
      if (g < 0) continue;
      const gt = asg.gts[g];
      if (!gt) throw new Error(`Image ${n}: anchor ${i} is assigned to GT ${g}, but the assignment has ${asg.gts.length} GTs.`);
      const r = n * a + i;
      out.numPositives++;
      out.classOfRow[r] = gt.classIndex;
      out.positive[r] = 1;
      out.gtBoxes.set(gt.box, r * 4);
      const cx = grid.centres[2 * i]!;
      const cy = grid.centres[2 * i + 1]!;
      const s = anchorStride[i]!;
      const [x1, y1, x2, y2] = gt.box;
      [(cx - x1) / s, (cy - y1) / s, (x2 - cx) / s, (y2 - cy) / s].forEach((d, e) => writeTwoHot(out.twoHot, (r * 4 + e) * bins, d, regMax));
    }
    out.qflAvgFactor += Math.max(out.numPositives - positivesBefore, 1);
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
  // Every term is computed densely over all N·A rows and masked, instead of gathering the
  // positives: tf.gather's gradient needs UnsortedSegmentSum, which the wasm backend lacks.
  // The extra work (one softmax over N·A·44 logits) is small next to the network.
  const result = tf.tidy(() => {
    const flat = tf.reshape(flattenHeadOutputs(outputs, grid), [rows, channels]);
    const cls = tf.slice(flat, [0, 0], [rows, numClasses]);
    if (t.numPositives === 0) {
      const qfl = tf.div(tf.sum(qualityFocalLoss(cls, 0, qflBeta)), t.qflAvgFactor) as tf.Scalar;
      return { loss: tf.mul(qfl, qflWeight) as tf.Scalar, qfl, dfl: tf.scalar(0), giou: tf.scalar(0) };
    }
    const reg = tf.reshape(tf.slice(flat, [0, numClasses], [rows, 4 * bins]), [rows, 4, bins]);
    const positive = tf.tensor1d(t.positive);
    const gtBoxes = tf.tensor2d(t.gtBoxes, [rows, 4]);
    const pred = decodeBoxesTensor(reg, tf.tensor2d(t.centres, [rows, 2]), tf.tensor1d(t.strides));

    // Soft QFL target: the IoU at the GT class of positive rows, a constant for the gradient.
    const quality = detached(() => tf.mul(alignedIou(pred, gtBoxes), positive));
    const classMask = oneHotRows(t.classOfRow, numClasses);
    const target = tf.mul(classMask, tf.reshape(quality, [rows, 1]));
    const qfl = tf.div(tf.sum(qualityFocalLoss(cls, target, qflBeta)), t.qflAvgFactor) as tf.Scalar;

    // NanoDet's per-positive weight: the highest class score, detached.
    const weight = detached(() => tf.mul(tf.max(tf.sigmoid(cls), 1), positive));
    const weightSum = tf.maximum(tf.sum(weight), 1); // mmdet: avg_factor.clamp_(min=1)
    const dflPerRow = tf.mean(tf.neg(tf.sum(tf.mul(tf.tensor3d(t.twoHot, [rows, 4, bins]), tf.logSoftmax(reg)), -1)), 1);
    const dfl = tf.div(tf.sum(tf.mul(weight, dflPerRow)), weightSum) as tf.Scalar;
    const giouPerRow = tf.sub(1, alignedGiou(pred, gtBoxes));
    const giou = tf.div(tf.sum(tf.mul(weight, giouPerRow)), weightSum) as tf.Scalar;

    const loss = tf.addN([tf.mul(qfl, qflWeight), tf.mul(dfl, dflWeight), tf.mul(giou, giouWeight)]) as tf.Scalar;
    return { loss, qfl, dfl, giou };
  });
  return { loss: result.loss, terms: { qfl: result.qfl, dfl: result.dfl, giou: result.giou }, numPositives: t.numPositives };
}
