/**
 * FGFI, fine-grained feature imitation: Wang, Yuan, Zhang, Feng, "Distilling Object Detectors
 * with Fine-grained Feature Imitation", CVPR 2019.
 *
 * Imitation mask: for each GT k of an image, the IoU of every anchor box with it (the
 * assignment's `ious`), F_k = psi · max IoU (max over all levels by default; `maxOver:
 * 'per-level'` takes it per level); a location is on for GT k where its anchor IoU > F_k, and
 * the mask I is the OR over GTs. The official code builds the same mask from its 9 anchors per
 * location; NanoDet has one anchor box (side 5·stride) per location.
 *
 * Loss: lambda · Sum_{levels,n,i,j,c} I_nij · (F_T − adapt(F_S))² / (2 · N_p), N_p = number of
 * locations where I is on, over all levels and images (0 when N_p = 0). adapt: a 3x3 conv
 * S→T channels + ReLU per level (a connector, trained with the student, not exported), run
 * only at the masked locations: exact for the loss and its gradients, and the mask holds a few
 * percent of a level's locations.
 *
 * Inputs: featT, featS [N,H,W,C] per level (the neck outputs), one Assignment per image,
 * adapters per level (null/absent: identity, channels must agree).
 * Defaults: lambda 0.01 (the paper's Faster R-CNN value), psi 0.5, max over all levels.
 * lambda 0.01 is kept for NanoDet: the loss is a per-location sum over channels (128), so with
 * unit-scale feature differences it is about 0.01 · 128 / 2 ≈ 0.6, the order of the GFL loss.
 * Note: NanoDet's neck outputs are signed (no activation after the PAN additions), so a ReLU
 * adapter cannot reproduce negative teacher values; `adapterRelu: false` drops it.
 *
 * Maps (per level): 'mask' (I, [N,H,W]) and 'error' (Sum_c (F_T − adapt F_S)² · I, [N,H,W]).
 * Terms: 'imitation' (the loss before lambda).
 */
import * as tf from '@tensorflow/tfjs';
import type { Assignment } from '../detect/assignment';
import { gatherRows } from '../graph/ops/gather';
import { adapt, checkAssignments, checkLevelPairs, heatmap, levelMasksFromAnchors } from './levels';
import { stopGradient, type Connector, type MethodResult, type PanelMap } from './types';

export interface FgfiParams {
  lambda: number;
  psi: number;
  /** Where the max IoU of a GT is taken: over every anchor of every level, or per level. */
  maxOver: 'all-levels' | 'per-level';
  /** Whether the adapters the registry creates end with a ReLU (the paper's adapter does). */
  adapterRelu: boolean;
}

export const FGFI_DEFAULTS: Readonly<FgfiParams> = { lambda: 0.01, psi: 0.5, maxOver: 'all-levels', adapterRelu: true };

export interface FgfiInputs {
  featT: tf.Tensor4D[];
  featS: tf.Tensor4D[];
  assignments: Assignment[];
  /** One per level; null or absent: identity. */
  adapters?: (Connector | null)[];
}

/** The imitation mask of one image as one 0/1 flag per anchor (grid order). */
export function fgfiAnchorMask(assignment: Assignment, psi: number, maxOver: FgfiParams['maxOver']): Uint8Array {
  const { grid, gts, ious } = assignment;
  const mask = new Uint8Array(grid.count);
  const ranges = maxOver === 'per-level' ? grid.levels.map((l) => [l.offset, l.offset + l.height * l.width]) : [[0, grid.count]];
  for (let k = 0; k < gts.length; k++) {
    const row = k * grid.count;
    for (const [start = 0, end = 0] of ranges) {
      let max = 0;
      for (let i = start; i < end; i++) max = Math.max(max, ious[row + i] ?? 0);
      const threshold = psi * max;
      for (let i = start; i < end; i++) if ((ious[row + i] ?? 0) > threshold) mask[i] = 1;
    }
  }
  return mask;
}

export function fgfi(inputs: FgfiInputs, params: Partial<FgfiParams> = {}, options: { withMaps?: boolean } = {}): MethodResult {
  const p = { ...FGFI_DEFAULTS, ...params };
  const { featT, featS, assignments } = inputs;
  checkLevelPairs('FGFI', 'feature', featT, featS);
  checkAssignments('FGFI', assignments, featT);
  if (!(p.psi >= 0 && p.psi <= 1)) throw new Error(`FGFI: psi must lie in [0, 1], got ${p.psi}.`);
  const anchorMasks = assignments.map((a) => fgfiAnchorMask(a, p.psi, p.maxOver));
  let positives = 0;
  for (const m of anchorMasks) for (const v of m) positives += v;
  const maps: PanelMap[] = [];
  const out = tf.tidy(() => {
    const masks = levelMasksFromAnchors(assignments, anchorMasks);
    const sums = featT.map((t, l) => {
      const ft = stopGradient(t);
      const adapter = inputs.adapters?.[l];
      const mask = masks[l] as tf.Tensor4D;
      if (adapter?.applyAt) {
        const error = maskedError(l, ft, featS[l] as tf.Tensor4D, adapter, maskedLocations(assignments, anchorMasks, l), !!options.withMaps);
        if (error.map) maps.push(heatmap('mask', l, mask), heatmap('error', l, error.map));
        return error.sum;
      }
      const fs = adapt('FGFI', l, featS[l] as tf.Tensor4D, ft.shape[3], adapter);
      const error = tf.sum(tf.squaredDifference(ft, fs), 3, true).mul(mask);
      if (options.withMaps) maps.push(heatmap('mask', l, mask), heatmap('error', l, error));
      return tf.sum(error);
    });
    const imitation = tf.div(tf.addN(sums), 2 * Math.max(positives, 1)) as tf.Scalar;
    return { loss: tf.mul(imitation, p.lambda) as tf.Scalar, terms: { imitation } };
  });
  return options.withMaps ? { ...out, maps } : out;
}

/** The flat locations n·H·W + i·W + j of level `l` where the imitation mask is on, image by image. */
function maskedLocations(assignments: Assignment[], anchorMasks: Uint8Array[], l: number): Int32Array {
  const g = assignments[0]!.grid.levels[l]!;
  const hw = g.height * g.width;
  const locations: number[] = [];
  anchorMasks.forEach((m, n) => {
    for (let i = 0; i < hw; i++) if (m[g.offset + i]) locations.push(n * hw + i);
  });
  return Int32Array.from(locations);
}

/**
 * Sum_{masked} Sum_c (F_T − adapt F_S)² with the adapter run at the masked locations only (a 3x3
 * adapter over a whole level costs about as much as the rest of the method; the mask holds a few
 * percent of the locations). Exact: outside the mask the loss is zero, and so is its gradient.
 * A level with nothing masked still reads the adapter at one location, at weight 0, so its
 * variables get a zero gradient as with the full map (the optimiser's moments keep moving).
 */
function maskedError(level: number, ft: tf.Tensor4D, fs: tf.Tensor4D, adapter: Connector, locations: Int32Array, withMap: boolean): { sum: tf.Scalar; map?: tf.Tensor4D } {
  const [n, h, w, ct] = ft.shape;
  const read = locations.length > 0 ? locations : Int32Array.of(0);
  const out = adapter.applyAt!(fs, read);
  if (out.shape[1] !== ct) {
    throw new Error(`FGFI: the level ${level} adapter '${adapter.name}' gives ${out.shape[1]} channels but the teacher has ${ct}.`);
  }
  if (locations.length === 0) return { sum: tf.mul(tf.sum(out), 0) as tf.Scalar, ...(withMap ? { map: tf.zeros([n, h, w, 1]) as tf.Tensor4D } : {}) };
  const teacherRows = gatherRows(ft.reshape([n * h * w, ct]), locations);
  const perLocation = tf.sum(tf.squaredDifference(teacherRows, out), 1);
  const sum = tf.sum(perLocation) as tf.Scalar;
  if (!withMap) return { sum };
  const map = tf.scatterND(tf.tensor2d(locations, [locations.length, 1], 'int32'), stopGradient(perLocation), [n * h * w]).reshape([n, h, w, 1]) as tf.Tensor4D;
  return { sum, map };
}
