/**
 * Head mimicking, after MimicDet: Lu, Li, Yan, Liu, Yuan, Ouyang, "MimicDet: Bridging the Gap
 * Between One-Stage and Two-Stage Object Detection", ECCV 2020. MimicDet makes its one-stage
 * head's features mimic its two-stage head's with 1 − cos at sampled positives; here the
 * pretrained teacher's head plays the T-head.
 *
 * Loss: weight · mean over the positive anchors of the assignment (every image, every level;
 * an anchor is positive when `assignedGt >= 0`) of 1 − cos(f_T, adapt(f_S)), the cosine taken
 * over channels at that location. 0 when there is no positive. |f| = sqrt(Sum f² + 1e-12), so
 * an all-zero feature gives cos 0 and a finite gradient.
 *
 * Inputs: headT, headS [N,H,W,C] per level (for NanoDet the 3x3 head conv's output, the
 * `ot_LeakyRelu_*` nodes; NanoDet has one path for classes and boxes); one Assignment per
 * image; adapters per level (1x1 conv S→T, needed only when channels differ).
 * Defaults: weight 1.
 *
 * Maps (per level): 'cosine', the cosine similarity at every location [N,H,W].
 * Terms: 'mimic' (mean 1 − cos before weight).
 */
import * as tf from '@tensorflow/tfjs';
import type { Assignment } from '../detect/assignment';
import { adapt, checkAssignments, checkLevelPairs, heatmap } from './levels';
import { stopGradient, type Connector, type MethodResult, type PanelMap } from './types';

export interface HeadMimicParams {
  weight: number;
}

export const HEAD_MIMIC_DEFAULTS: Readonly<HeadMimicParams> = { weight: 1 };

export interface HeadMimicInputs {
  headT: tf.Tensor4D[];
  headS: tf.Tensor4D[];
  assignments: Assignment[];
  adapters?: (Connector | null)[];
}

const NORM_EPS = 1e-12;

/** Cosine similarity over channels at every location: [N,H,W,C] x2 -> [N,H,W]. */
export function cosineMap(a: tf.Tensor4D, b: tf.Tensor4D): tf.Tensor3D {
  return tf.tidy(() => {
    const dot = tf.sum(tf.mul(a, b), 3);
    const na = tf.sqrt(tf.add(tf.sum(tf.square(a), 3), NORM_EPS));
    const nb = tf.sqrt(tf.add(tf.sum(tf.square(b), 3), NORM_EPS));
    return tf.div(dot, tf.mul(na, nb)) as tf.Tensor3D;
  });
}

export function headMimic(
  inputs: HeadMimicInputs,
  params: Partial<HeadMimicParams> = {},
  options: { withMaps?: boolean } = {},
): MethodResult {
  const p = { ...HEAD_MIMIC_DEFAULTS, ...params };
  const { headT, headS, assignments } = inputs;
  checkLevelPairs('Head mimic', 'head-feature', headT, headS);
  checkAssignments('Head mimic', assignments, headT);
  const count = (assignments[0] as Assignment).grid.count;
  const positives: number[] = [];
  assignments.forEach((a, n) => {
    a.assignedGt.forEach((g, i) => {
      if (g >= 0) positives.push(n * count + i);
    });
  });
  const maps: PanelMap[] = [];
  const out = tf.tidy(() => {
    const n = (headT[0] as tf.Tensor4D).shape[0];
    const cosines = headT.map((t, l) => {
      const ft = stopGradient(t);
      const fs = adapt('Head mimic', l, headS[l] as tf.Tensor4D, ft.shape[3], inputs.adapters?.[l]);
      const cos = cosineMap(ft, fs);
      if (options.withMaps) maps.push(heatmap('cosine', l, cos));
      return cos.reshape([n, -1]);
    });
    let mimic: tf.Scalar;
    if (positives.length === 0) {
      // Keep the student in the graph so a gradient (zero) still exists for it.
      mimic = tf.mul(tf.sum(cosines[0] as tf.Tensor), 0) as tf.Scalar;
    } else {
      // A constant mask instead of tf.gather, whose gradient (UnsortedSegmentSum) wasm lacks.
      const all = tf.concat(cosines, 1).reshape([-1]);
      const mask = new Float32Array(all.size);
      for (const i of positives) mask[i] = 1;
      mimic = tf.div(tf.sum(tf.mul(tf.sub(1, all), tf.tensor1d(mask))), positives.length) as tf.Scalar;
    }
    return { loss: tf.mul(mimic, p.weight) as tf.Scalar, terms: { mimic } };
  });
  return options.withMaps ? { ...out, maps } : out;
}
